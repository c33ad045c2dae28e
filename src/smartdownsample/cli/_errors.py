"""Exit codes of the command and its own error."""

from __future__ import annotations

from .._exceptions import SmartDownsampleError

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "CommandError"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
"""128 + SIGINT, what shells report for a command stopped by Ctrl-C."""


class CommandError(SmartDownsampleError):
    """The command could not do its job (exit code 1); the message says why and what to do."""
