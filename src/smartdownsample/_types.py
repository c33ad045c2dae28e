"""Literal aliases for the string options of the public API."""

from __future__ import annotations

from typing import Literal

ErrorPolicy = Literal["raise", "skip"]
"""What to do with an image that cannot be read: stop with an error, or skip and report it."""

Strategy = Literal["burst", "spec"]
"""Selection strategy: ``"burst"`` (burst-aware, default) or ``"spec"`` (the 1.x bucket stride)."""

Backend = Literal["local", "dask"]
"""Where features are computed: this machine's cores, or a Dask cluster."""

ExecutorKind = Literal["auto", "process", "thread", "serial"]
"""How local workers run: processes, threads, or in the calling thread."""

ERROR_POLICIES: tuple[ErrorPolicy, ...] = ("raise", "skip")
STRATEGIES: tuple[Strategy, ...] = ("burst", "spec")
BACKENDS: tuple[Backend, ...] = ("local", "dask")
EXECUTOR_KINDS: tuple[ExecutorKind, ...] = ("auto", "process", "thread", "serial")
