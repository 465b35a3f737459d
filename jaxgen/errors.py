"""The one exception type for user mistakes: the CLI prints its message on one line, no traceback."""


class UserError(Exception):
    """A mistake the user can fix (bad flag, bad value, missing file); the message names the fix."""
