"""The JSON reports of ``select``, ``balance`` and ``demo``.

Each report starts with the same header (tool, version, command, time, argv)
and the run's flags, then what the subcommand found and wrote, then the time
each phase took. The selection's own numbers come from
:func:`smartdownsample.report.summary_dict`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..report import summary_dict
from ._classes import ClassListing, ClassOutcome

if TYPE_CHECKING:
    from ..listing import SourceListing
    from ..result import SelectionResult

__all__ = ["balance_report", "demo_report", "phase_timing", "select_report"]

PARAMETER_FLAGS = (
    "target",
    "fraction",
    "max_per_class",
    "min_per_class",
    "hash_size",
    "workers",
    "image_timeout",
    "seed",
    "strategy",
    "skip_unreadable",
    "verify_cache",
    "backend",
    "scheduler",
    "overwrite",
    "n_images",
    "kind",
)
"""The flags a report records under ``parameters`` (those the subcommand has)."""


def phase_timing(first: str, started: float, prepared: float, selected: float) -> dict[str, float]:
    """Seconds per phase of a run up to now: ``first`` (listing or data set), selection, outputs.

    The times are :func:`time.perf_counter` readings at the start and at the
    end of the first phase and of the selection.
    """
    finished = time.perf_counter()
    return {
        f"{first}_seconds": round(prepared - started, 3),
        "selection_seconds": round(selected - prepared, 3),
        "outputs_seconds": round(finished - selected, 3),
        "total_seconds": round(finished - started, 3),
    }


def _header(command: str, args: argparse.Namespace) -> dict[str, Any]:
    """The fields every JSON report starts with."""
    return {
        "tool": "smartdownsample",
        "version": __version__,
        "command": command,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(args.argv),
    }


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    params = {name: getattr(args, name) for name in PARAMETER_FLAGS if hasattr(args, name)}
    params["cache"] = args.cache_path
    return params


def _with_folder_failures(
    summary: dict[str, Any], failures: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """A report summary whose failures and ``n_failed`` include the folders not listed."""
    if not failures:
        return summary
    folders = [
        {"path": folder, "index": None, "reason": f"cannot list folder: {reason}"}
        for folder, reason in failures
    ]
    return {
        **summary,
        "n_failed": summary["n_failed"] + len(folders),
        "failures": folders + list(summary["failures"]),
    }


def select_report(
    args: argparse.Namespace,
    listing: SourceListing,
    result: SelectionResult,
    outputs: Mapping[str, Any],
    timing: Mapping[str, float],
) -> dict[str, Any]:
    """The ``select --report``: sources, the selection's summary, outputs, timing."""
    return {
        **_header("select", args),
        "parameters": {**_parameters(args), "target_count": result.target_count},
        "sources": [{"source": s, "images": n} for s, n in listing.per_source],
        "n_duplicates_dropped": listing.n_duplicates,
        "n_links_merged": len(listing.merged),
        **_with_folder_failures(summary_dict(result), listing.failures),
        "outputs": dict(outputs),
        "timing": dict(timing),
    }


def balance_report(
    args: argparse.Namespace,
    listing: ClassListing,
    outcomes: Sequence[ClassOutcome],
    outputs: Mapping[str, Any],
    timing: Mapping[str, float],
) -> dict[str, Any]:
    """The ``balance --report``: counts, folders not listed, one row per class, outputs."""
    failures = listing.folder_failures
    return {
        **_header("balance", args),
        "parameters": _parameters(args),
        "root": listing.root,
        "n_classes": len(outcomes),
        "n_images": len(listing.paths),
        "n_selected": sum(len(outcome.kept) for outcome in outcomes),
        "n_failed": sum(outcome.n_failed for outcome in outcomes) + len(failures),
        "n_images_outside_classes": listing.loose,
        "n_links_merged": listing.n_merged,
        "folders_not_listed": [{"path": folder, "reason": reason} for folder, reason in failures],
        "classes": [outcome.as_dict() for outcome in outcomes],
        "outputs": dict(outputs),
        "timing": dict(timing),
    }


def demo_report(
    args: argparse.Namespace,
    dataset: str,
    reused: bool,
    result: SelectionResult,
    outputs: Mapping[str, str],
    timing: Mapping[str, float],
) -> dict[str, Any]:
    """The demo's ``report.json``: the data set, the selection's summary, outputs, timing."""
    return {
        **_header("demo", args),
        "parameters": {**_parameters(args), "target_count": result.target_count},
        "dataset": dataset,
        "dataset_reused": reused,
        **summary_dict(result),
        "outputs": dict(outputs),
        "timing": dict(timing),
    }
