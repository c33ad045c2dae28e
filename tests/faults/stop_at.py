"""Test-only: a process that signals itself at one precise file operation.

The product has no hooks for this. A test starts a process with this folder
first on ``PYTHONPATH`` (``fault_injection.worker_pythonpath``) and
:data:`ENV` set; this folder's ``sitecustomize.py`` calls
:func:`install_from_environment` at start-up, which wraps one function of
``os`` so that its ``count``-th call whose last path argument's file name
matches a pattern sends a signal to the process itself:

``SDS_STOP_AT="after replace *.old 2 KILL"``
    SIGKILL right after the second file is moved aside (``os.replace(x, aside)``);
``SDS_STOP_AT="before unlink *.old 1 KILL"``
    SIGKILL just before the first file moved aside is deleted (committed);
``SDS_STOP_AT="after replace *.old 1 STOP"``
    the process stops (SIGSTOP) holding its locks, until sent SIGCONT.

A stopped process first writes its pid and ``stopped`` to the file named by
:data:`READY_ENV`, if set, so that the test knows when it stands still.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import signal
from collections.abc import Callable
from typing import Any

ENV = "SDS_STOP_AT"
"""``WHEN CALL PATTERN COUNT SIGNAL``: ``before``/``after``, an ``os`` function, an
fnmatch pattern on the file name, which matching call (1 = first), ``KILL``/``STOP``."""

READY_ENV = "SDS_STOP_READY"
"""File written just before the process stops itself (SIGSTOP)."""


def spec(when: str, call: str, pattern: str, count: int, signame: str) -> str:
    """The value of :data:`ENV` for these settings."""
    return f"{when} {call} {pattern} {count} {signame}"


def _wrap(function: Callable[..., Any], when: str, pattern: str, count: int, signum: int) -> Any:
    seen = [0]

    def fire() -> None:
        ready = os.environ.get(READY_ENV)
        if ready and signum == signal.SIGSTOP:
            with open(ready, "w", encoding="utf-8") as handle:
                handle.write(f"{os.getpid()} stopped\n")
        os.kill(os.getpid(), signum)

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        name = os.path.basename(os.fsdecode(args[-1])) if args else ""
        hit = fnmatch.fnmatchcase(name, pattern)
        if hit:
            seen[0] += 1
            hit = seen[0] == count
        if hit and when == "before":
            fire()
        result = function(*args, **kwargs)
        if hit and when == "after":
            fire()
        return result

    return wrapper


def install_from_environment() -> None:
    """Arm the stop described by :data:`ENV`, if set."""
    value = os.environ.get(ENV)
    if not value:
        return
    when, call, pattern, count, signame = value.split()
    signum = getattr(signal, f"SIG{signame}")
    setattr(os, call, _wrap(getattr(os, call), when, pattern, int(count), signum))
