"""Errors a user can fix (bad argument, missing or unusable file), reported without a traceback.

The exit status tells a calling tool what kind of problem it was, as the other subcommands do:
2 for invalid input, 3 for something that is not there, and for errors of the operating system
the statuses of docs/cli.md: 8 for I/O, 10 for a permission refused, and 12 for a write that did
not fit (full disk, quota, RLIMIT_FSIZE), which the C++ side reads as `no_space`
(pipeline/src/python_pipeline.cpp). A bug is an uncaught exception (status 1, with its traceback).
"""

import errno

EXIT_IO, EXIT_PERMISSION, EXIT_NO_SPACE = 8, 10, 12


def os_error_status(error: OSError) -> int:
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return EXIT_NO_SPACE
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return EXIT_PERMISSION
    if error.errno in (errno.ENOENT, errno.ENOTDIR):
        return NotFound.exit_status
    return EXIT_IO


class UserError(Exception):
    exit_status = 2


class InvalidInput(UserError):
    exit_status = 2


class NotFound(UserError):
    exit_status = 3


class CheckpointError(InvalidInput):
    """A checkpoint file that cannot be loaded into the requested architecture."""
