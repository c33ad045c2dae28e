"""Exceptions raised by smartdownsample.

Every error the package raises on purpose derives from
:class:`SmartDownsampleError`, so callers can catch one class.  Messages name
the offending value or file and say how to fix it.
"""

from __future__ import annotations

__all__ = [
    "CacheError",
    "CacheWarning",
    "DetectionFileError",
    "ImageLoadError",
    "InvalidArgumentError",
    "MissingExtraError",
    "OutputError",
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


class OutputError(SmartDownsampleError):
    """An output could not be written, or an interrupted run's outputs not recovered.

    The message is one line naming the path and the fix. Importable from
    :mod:`smartdownsample.outputs` as well.
    """


class CacheError(SmartDownsampleError):
    """The feature cache could not be used (reported as a warning, never fatal)."""


class DetectionFileError(SmartDownsampleError):
    """A detector-output or annotation file (MegaDetector, COCO Camera Traps) cannot be used.

    The message is one line naming the file, the image entry and the field,
    and how to fix it.

    Attributes
    ----------
    path : str
        The JSON file (or the frame, for errors cutting a crop).
    image : str or None
        The image entry as the file names it (``file`` or ``file_name``).
    field : str or None
        The offending field, e.g. ``"detections[2].conf"``.
    reason : str
        What is wrong.

    Examples
    --------
    >>> print(DetectionFileError("md.json", "missing", image="a.jpg", field="detections[0].conf",
    ...                          fix="give it a confidence"))
    'md.json': image 'a.jpg', field 'detections[0].conf': missing (give it a confidence)
    """

    def __init__(
        self,
        path: str,
        reason: str,
        *,
        image: str | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.path = path
        self.image = image
        self.field = field
        self.reason = reason
        where = []
        if image is not None:
            where.append(f"image {image!r}")
        if field is not None:
            where.append(f"field {field!r}")
        message = f"{path!r}: " + (", ".join(where) + ": " if where else "") + reason
        if fix:
            message += f" ({fix})"
        super().__init__(message.replace("\n", " ").replace("\r", " "))


class CacheWarning(UserWarning):
    """The feature cache could not be used or written; the run goes on without it."""
