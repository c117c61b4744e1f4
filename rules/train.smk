rule train:
    """Target: the train stage for every data set (built in its own issue)."""
    input:
        [],
