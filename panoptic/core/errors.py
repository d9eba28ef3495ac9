"""The base of every failure whose message alone tells the user what is wrong and what to do."""


class PanopticError(Exception):
    """An expected failure: the command line prints its message as one line, no traceback."""
