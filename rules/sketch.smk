rule sketch:
    """Target: the sketch stage for every data set (built in its own issue)."""
    input:
        [],
