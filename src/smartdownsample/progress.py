"""The one progress bar: tqdm on stderr when wanted, else nothing.

Used by the library (``show_progress=True``) and by the command line, so both
draw the same bar and a disabled bar costs nothing (tqdm is not imported).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import TracebackType

    from tqdm import tqdm

__all__ = ["ProgressBar"]


class ProgressBar:
    """A counting bar on stderr, or nothing when ``enabled`` is false.

    Examples
    --------
    >>> with ProgressBar(False, 10, "Computing features") as bar:
    ...     bar.add(4)
    ...     bar.set(10)
    >>> bar.count
    10
    """

    def __init__(self, enabled: bool, total: int | None, desc: str, *, unit: str = "img") -> None:
        self.count = 0
        self._bar: tqdm[Any] | None = None
        if enabled and total != 0:
            from tqdm.auto import tqdm as make_bar

            self._bar = make_bar(total=total, desc=desc, unit=unit, dynamic_ncols=True)

    def add(self, count: int) -> None:
        """Count ``count`` more items done."""
        self.count += count
        if self._bar is not None:
            self._bar.update(count)

    def set(self, count: int) -> None:
        """Set the number of items done."""
        self.add(count - self.count)

    def offset(self, done: int) -> Callable[[int], None]:
        """A callback that sets the bar to ``done`` plus the count it is given."""

        def update(count: int) -> None:
            self.set(done + count)

        return update

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
