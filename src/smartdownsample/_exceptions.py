"""Exceptions raised by smartdownsample.

Every error the package raises on purpose derives from
:class:`SmartDownsampleError`, so callers can catch one class.  Messages name
the offending value or file and say how to fix it.
"""

from __future__ import annotations

__all__ = [
    "CacheError",
    "ImageLoadError",
    "InvalidArgumentError",
    "MissingExtraError",
    "SmartDownsampleError",
]


class SmartDownsampleError(Exception):
    """Base class of every error raised by smartdownsample."""


class InvalidArgumentError(SmartDownsampleError, ValueError):
    """An argument has a value the function cannot use.

    Also a :class:`ValueError`, so code written against 1.x keeps working.
    """


class ImageLoadError(SmartDownsampleError):
    """An image could not be read or decoded.

    Attributes
    ----------
    path : str
        The file that failed.
    reason : str
        A short description of what went wrong.
    """

    def __init__(self, path: str, reason: str, *, hint: str | None = None) -> None:
        self.path = path
        self.reason = reason
        message = f"cannot read image {path!r}: {reason}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class MissingExtraError(SmartDownsampleError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, feature: str, extra: str, package: str) -> None:
        super().__init__(
            f"{feature} needs the optional package {package!r}, which is not installed; "
            f'install it with: pip install "smartdownsample[{extra}]"'
        )


class CacheError(SmartDownsampleError):
    """The feature cache could not be used (reported as a warning, never fatal)."""
