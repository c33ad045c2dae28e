"""Running the library with the command's settings.

The Dask session of a run, one selection, the ``--strict`` check and what a
folder that cannot be listed does.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..api import downsample
from ..listing import FolderErrorCallback
from ..report import count_noun, shortfall
from ._errors import CommandError
from ._settings import show_progress

if TYPE_CHECKING:
    from ..formats import ItemTable
    from ..result import SelectionResult

__all__ = ["DaskSession", "check_strict", "folder_errors", "select_images"]

logger = logging.getLogger(__name__)


class DaskSession:
    """The Dask client of ``--scheduler``: connected at first use, shared by every selection.

    Without ``--backend dask --scheduler`` there is no client (``None``: the
    library runs locally, or starts a local Dask cluster itself). Leaving the
    ``with`` block closes the client.

    Examples
    --------
    >>> with DaskSession("local", None) as dask:
    ...     dask.client() is None
    True
    """

    def __init__(self, backend: str, scheduler: str | None) -> None:
        self.backend = backend
        self.scheduler = scheduler
        self._client: Any = None
        self._connected = False

    def client(self) -> Any:
        """The ``distributed.Client`` of the scheduler (connecting once), or ``None``."""
        if not self._connected:
            if self.backend == "dask" and self.scheduler:
                self._client = _connect(self.scheduler)
            self._connected = True
        return self._client

    def close(self) -> None:
        """Close the client, if one was connected."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def __enter__(self) -> DaskSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _connect(scheduler: str) -> Any:
    from ..extraction.dask import require_distributed

    distributed = require_distributed()
    try:
        client_class: Any = distributed.Client
        return client_class(scheduler)
    except OSError as exc:
        raise CommandError(
            f"cannot connect to the Dask scheduler at {scheduler!r} ({exc}); check the "
            "address (e.g. tcp://host:8786) and that the scheduler is running"
        ) from exc


def select_images(
    args: argparse.Namespace, paths: Sequence[str] | ItemTable, target: int, dask: DaskSession
) -> SelectionResult:
    """Select ``target`` of ``paths`` (or of a detector file's items) with the run's flags
    (``args.cache_path`` set)."""
    return downsample(
        paths,
        target,
        hash_size=args.hash_size,
        n_workers=args.workers,
        show_progress=show_progress(args),
        random_seed=args.seed,
        image_loading_errors="skip" if args.skip_unreadable else "raise",
        strategy=args.strategy,
        cache=args.cache_path,
        verify_cache=args.verify_cache,
        backend=args.backend,
        client=dask.client(),
        image_timeout=args.image_timeout,
    )


def check_strict(args: argparse.Namespace, results: Sequence[tuple[str, SelectionResult]]) -> None:
    """With ``--strict``, a selection short of its target fails the run before any output."""
    if not args.strict:
        return
    short = [(name, result) for name, result in results if shortfall(result)]
    if not short:
        return
    name, result = short[0]
    where = f"class {name!r}: " if name else ""
    raise CommandError(
        f"{where}kept {result.n_selected:,} of the {result.target_count:,} images asked for; "
        f"only {count_noun(result.n_readable, 'image')} could be read (--strict); nothing was "
        "written; drop --strict to keep what can be read"
    )


def folder_errors(args: argparse.Namespace) -> FolderErrorCallback:
    """A folder that cannot be listed stops the run, or with --skip-unreadable is skipped."""
    if args.skip_unreadable:

        def skip(folder: str, exc: OSError) -> None:
            logger.warning("skipped folder %s: cannot list it: %s", folder, exc.strerror or exc)

        return skip

    def stop(folder: str, exc: OSError) -> None:
        raise CommandError(
            f"cannot list folder {folder!r}: {exc.strerror or exc}; make it readable, or pass "
            "--skip-unreadable to skip it (it is then listed in the summary and the report)"
        ) from exc

    return stop
