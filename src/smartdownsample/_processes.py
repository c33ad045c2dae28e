"""Process pools that are safe to start from any program.

``fork`` copies a parent's threads' locks in whatever state they are in (and
is unavailable on Windows), so workers are started with ``forkserver`` where
the platform has it and ``spawn`` elsewhere. Scripts that use process
workers must guard their entry point with ``if __name__ == "__main__":`` on
Windows and macOS, as with every multiprocessing program.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

__all__ = ["make_process_pool", "process_context"]


def process_context() -> multiprocessing.context.BaseContext:
    """The multiprocessing context used for worker processes."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def make_process_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool of ``workers`` processes started safely."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=process_context())
