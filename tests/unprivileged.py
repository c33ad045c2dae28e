"""Run code the way an ordinary user would, even when the tests run as root.

Root bypasses file permissions, so a test of "permission denied" proves
nothing under root. When the tests run as root, the code is run in a child
process from which the capabilities that bypass permission checks are
removed (``setpriv`` from util-linux): the kernel then checks every access
against the file modes, exactly as for an unprivileged user, while the child
can still read the interpreter and the test's own files (owned by root).
When the tests do not run as root, the child runs as it is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

import pytest

BYPASS_CAPABILITIES = "-dac_override,-dac_read_search,-fowner,-linux_immutable"
"""The capabilities that let root ignore file modes, ownership and flags."""


def _prefix() -> list[str]:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and no setpriv (util-linux) to drop privileges")
    return [setpriv, f"--bounding-set={BYPASS_CAPABILITIES}", "--inh-caps=-all", "--"]


def run_unprivileged(
    args: Sequence[str], *, timeout: float = 120, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` without the power to bypass file permissions."""
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [*_prefix(), *args], capture_output=True, text=True, timeout=timeout, **kwargs
    )


def run_python_unprivileged(
    code: str, *args: str, timeout: float = 120, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` (``-c``) without the power to bypass permissions."""
    return run_unprivileged([sys.executable, "-c", code, *args], timeout=timeout, **kwargs)


def cli_unprivileged(
    *args: str, timeout: float = 120, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """Run the command line (``python -m smartdownsample``) as an ordinary user."""
    return run_unprivileged(
        [sys.executable, "-m", "smartdownsample", *args], timeout=timeout, **kwargs
    )
