"""Errors a user can fix (bad argument, missing or unusable file), reported without a traceback.

The exit status tells a calling tool what kind of problem it was, as the other subcommands do:
2 for invalid input, 3 for something that is not there. A bug is an uncaught exception (status 1,
with its traceback).
"""


class UserError(Exception):
    exit_status = 2


class InvalidInput(UserError):
    exit_status = 2


class NotFound(UserError):
    exit_status = 3


class CheckpointError(InvalidInput):
    """A checkpoint file that cannot be loaded into the requested architecture."""
