"""Test-only faults: decoders that crash, exit or hang on marked file names.

The product has no fault hooks; the tests install these from outside:

* in worker processes (fresh interpreters, started with the caller's
  environment), by putting this folder first on ``PYTHONPATH``: Python then
  runs this folder's ``sitecustomize.py`` at start-up, which calls
  :func:`install_import_hook`, so that ``smartdownsample.loading`` is wrapped
  the moment a worker imports it. A file whose name contains :data:`CRASH`
  then dies of a real segmentation fault (``os.abort()`` on Windows),
  :data:`EXIT` exits at once with :data:`EXIT_CODE`, :data:`HANG` sleeps
  forever;
* in the test process itself (thread and serial runs), by monkeypatching the
  decoder that :func:`smartdownsample.extraction.batch.extract_batch` calls
  with :func:`hanging_decoder`: only the hang marker acts there (a crash
  would end the test run), and the hung threads are released at the end of
  the test.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

CRASH, EXIT, HANG = "__sds_crash__", "__sds_exit__", "__sds_hang__"
"""File-name markers of the three faults."""

EXIT_CODE = 70
"""Exit status of a worker stopped by the :data:`EXIT` marker."""

TARGET = "smartdownsample.loading"
"""Module whose ``decode_file`` is wrapped in the worker processes."""

FOLDER = os.path.dirname(os.path.abspath(__file__))
"""This folder: put first on ``PYTHONPATH`` to arm the worker processes."""

Decoder = Callable[..., Any]


def _crash() -> None:
    if sys.platform == "win32":
        os.abort()
    import ctypes

    ctypes.string_at(0)  # reads address 0: a real segmentation fault


def crashing_decoder(decode: Decoder) -> Decoder:
    """``decode`` that crashes, exits or hangs on a marked file name."""

    @functools.wraps(decode)
    def decode_file(path: str, *args: Any, **kwargs: Any) -> Any:
        name = os.path.basename(path)
        if CRASH in name:
            _crash()
        if EXIT in name:
            os._exit(EXIT_CODE)
        if HANG in name:
            while True:
                time.sleep(3600)
        return decode(path, *args, **kwargs)

    return decode_file


def hanging_decoder(decode: Decoder, release: threading.Event) -> Decoder:
    """``decode`` that blocks on a file marked :data:`HANG` until ``release`` is set."""

    @functools.wraps(decode)
    def decode_file(path: str, *args: Any, **kwargs: Any) -> Any:
        if HANG in os.path.basename(path):
            release.wait()
        return decode(path, *args, **kwargs)

    return decode_file


class _WrappingLoader(importlib.abc.Loader):
    """Runs the real loader, then wraps the module's ``decode_file``."""

    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        module.decode_file = crashing_decoder(module.decode_file)  # type: ignore[attr-defined]


class _Finder(importlib.abc.MetaPathFinder):
    """Finds :data:`TARGET` like the path finder does, with :class:`_WrappingLoader`."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _WrappingLoader(spec.loader)
        return spec


def install_import_hook() -> None:
    """Wrap ``decode_file`` of :data:`TARGET` when this process imports it."""
    sys.meta_path.insert(0, _Finder())


def worker_pythonpath(existing: str | None) -> str:
    """``PYTHONPATH`` with this folder first."""
    return FOLDER if not existing else FOLDER + os.pathsep + existing
