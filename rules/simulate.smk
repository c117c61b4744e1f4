rule simulate:
    """Target: the simulate stage for every data set (built in its own issue)."""
    input:
        [],
