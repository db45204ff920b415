"""The one exception type that means "the user's problem": tools print it as one line."""


class AllvmError(Exception):
    """An error the user can act on; shown as `<tool>: <message>`, exit status 1."""
