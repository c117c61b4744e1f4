rule synthesize:
    """Target: the synthesize stage for every data set (built in its own issue)."""
    input:
        [],
