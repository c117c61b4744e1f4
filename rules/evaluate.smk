rule evaluate:
    """Target: the evaluate stage for every data set (built in its own issue)."""
    input:
        [],
