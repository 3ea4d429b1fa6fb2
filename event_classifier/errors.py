"""The one exception type the package raises for problems a user can fix."""


class EventClassifierError(Exception):
    """A user-facing error: the message names the file or value and says how to fix it.

    Command lines print it as one line on stderr and exit with `exit_code` (2).
    """

    exit_code = 2


class SkippedInput(EventClassifierError):
    """One input among many could not be read (a URL that failed, a page with no article): it is reported and
    skipped, the others are predicted, and the command exits with `exit_code` (3) at the end."""

    exit_code = 3
