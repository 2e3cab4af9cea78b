"""Errors that mean "the user asked for something we cannot do".

The CLI turns a :class:`UserError` into a one-line message and exit code 2,
without a traceback. Anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in the user's input: bad spec, unknown device, wrong file..."""


class SpecError(UserError, ValueError):
    """An op spec that cannot be measured as written."""


class TableError(UserError):
    """A table file that is missing, unreadable or of an unknown schema."""


class DeviceError(UserError):
    """A device that is unknown, unreachable or lacks the runtime."""
