"""Stage 5: the text report of a selection.

Pure functions from a :class:`~smartdownsample.result.SelectionResult` to
text or plain data; printing is left to the caller (``sample_diverse`` with
``show_summary=True``, or the command line).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .buckets import bucket_label

if TYPE_CHECKING:
    from .formats.items import ItemTable
    from .result import SelectionResult

__all__ = [
    "count_noun",
    "format_summary",
    "item_columns",
    "manifest_rows",
    "shortfall",
    "summary_dict",
]

MAX_FAILURES_LISTED = 10
"""Failures named in the text summary; the rest are counted (all are in the result)."""


def count_noun(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and the noun, singular for one: ``1 image``, ``1,200 images``.

    Examples
    --------
    >>> count_noun(1, "image"), count_noun(0, "image"), count_noun(2, "class", "classes")
    ('1 image', '0 images', '2 classes')
    """
    word = noun if count == 1 else (plural or f"{noun}s")
    return f"{count:,} {word}"


def shortfall(result: SelectionResult) -> int:
    """How many fewer images were kept than asked for (0 when the target was met)."""
    return max(0, result.target_count - result.n_selected)


def _stride_text(size: int, kept: int) -> str:
    if kept == 0:
        return "-"
    if kept == size:
        return "All kept"
    return f"{size / kept:.1f}"


def format_summary(result: SelectionResult) -> str:
    """The bucket table: buckets largest first, with size, kept, rate and stride.

    The first line reads like ``smartdownsample: kept 40 of 400 images (10.0%)
    from 23 buckets, strategy 'burst'``; the last lines give bursts found and
    covered, and the unreadable images.
    """
    total = result.n_readable
    kept = result.n_selected
    share = 100.0 * kept / total if total else 0.0
    noun = "image" if result.items is None else "item"
    lines = [
        f"smartdownsample: kept {kept:,} of {count_noun(total, noun)} ({share:.1f}%) "
        f"from {count_noun(len(result.buckets), 'bucket')}, strategy '{result.strategy}'",
    ]
    header = f"{'#':>4} {'id':>4} {'size':>9} {'kept':>8} {'rate':>7} {'stride':>9}"
    header += f" {'bursts kept':>12}  bucket"
    lines += [header, "-" * len(header)]
    for bucket in result.buckets:
        bursts = f"{bucket.bursts_kept}/{bucket.n_bursts}"
        lines.append(
            f"{bucket.rank:>4} {bucket.key:>4} {bucket.size:>9,} {bucket.kept:>8,} "
            f"{bucket.rate:>6.1%} {_stride_text(bucket.size, bucket.kept):>9} {bursts:>12}  "
            f"{bucket.label}"
        )
    lines.append("-" * len(header))
    n_bursts = result.n_bursts
    covered = result.bursts_covered
    burst_share = 100.0 * covered / n_bursts if n_bursts else 0.0
    lines.append(
        f"bursts: {n_bursts:,} found, {covered:,} covered ({burst_share:.1f}%); "
        f"features from cache: {result.n_cached:,}"
    )
    if shortfall(result):
        lines.append(
            f"short of the target: kept {kept:,} of the {result.target_count:,} asked for; "
            f"only {count_noun(total, noun)} could be read"
        )
    if result.failures:
        lines.append(f"unreadable images skipped: {len(result.failures):,}")
        for failure in result.failures[:MAX_FAILURES_LISTED]:
            lines.append(f"  {failure}")
        if len(result.failures) > MAX_FAILURES_LISTED:
            lines.append(f"  ... and {len(result.failures) - MAX_FAILURES_LISTED:,} more")
    return "\n".join(lines)


def summary_dict(result: SelectionResult) -> dict[str, Any]:
    """Plain-data summary (counts, bucket table, failures, timings) for JSON."""
    return {
        "target_count": result.target_count,
        "n_input": result.n_input,
        "n_distinct": len(result.paths),
        "n_readable": result.n_readable,
        "n_selected": result.n_selected,
        "n_short": shortfall(result),
        "n_failed": len(result.failures),
        "n_cached": result.n_cached,
        "n_buckets": len(result.buckets),
        "n_bursts": result.n_bursts,
        "bursts_covered": result.bursts_covered,
        "strategy": result.strategy,
        "hash_size": result.hash_size,
        "random_seed": result.random_seed,
        "buckets": [bucket.as_dict() for bucket in result.buckets],
        "failures": [
            {"path": f.path, "index": f.index, "reason": f.reason} for f in result.failures
        ],
        "timings": {stage: round(seconds, 4) for stage, seconds in result.timings.items()},
    }


def manifest_rows(result: SelectionResult) -> Iterator[dict[str, Any]]:
    """One plain-data row per distinct input image, in the caller's order (CSV manifest).

    For a selection among detections (``result.items`` set) one row per item,
    with these columns added: ``frame`` (index of the image in the detection
    file), ``detection`` (index of the detection or annotation; empty for a
    whole image), ``box_x``, ``box_y``, ``box_w``, ``box_h`` (normalised; empty
    for a whole image), ``confidence``, ``category``, ``label`` and
    ``sequence`` (the file's ``seq_id``; the unit used is ``burst``).
    """
    reasons = {failure.index: failure.reason for failure in result.failures}
    means = result.features["mean_rgb"]
    for position, path in enumerate(result.paths):
        index = int(result.input_indices[position])
        ok = bool(result.ok[position])
        bucket = int(result.bucket_ids[position])
        row: dict[str, Any] = {
            "path": path,
            "index": index,
            "kept": bool(result.selected[position]),
            "bucket": bucket if ok else "",
            "bucket_label": bucket_label(bucket) if ok else "",
            "burst": int(result.burst_ids[position]) if ok else "",
            "dhash": f"0x{int(result.features['dhash'][position]):016x}" if ok else "",
            "mean_r": round(float(means[position, 0]), 2) if ok else "",
            "mean_g": round(float(means[position, 1]), 2) if ok else "",
            "mean_b": round(float(means[position, 2]), 2) if ok else "",
            "width": int(result.features["width"][position]) if ok else "",
            "height": int(result.features["height"][position]) if ok else "",
            "error": reasons.get(index, ""),
        }
        if result.items is not None:
            row.update(item_columns(result.items, position))
        yield row


BOX_DECIMALS = 6
"""Decimals of box fractions and confidences in the manifest (as the cache key)."""


def item_columns(items: ItemTable, row: int) -> dict[str, Any]:
    """Frame, detection index, box, confidence, label and sequence of one item."""
    image, detection = (int(v) for v in items.source[row])
    whole = bool(np.isnan(items.box[row]).all())
    confidence = float(items.confidence[row])
    columns: dict[str, Any] = {"frame": image, "detection": "" if detection < 0 else detection}
    for name, value in zip(
        ("box_x", "box_y", "box_w", "box_h"), items.box[row].tolist(), strict=True
    ):
        columns[name] = "" if whole else round(value, BOX_DECIMALS)
    columns["confidence"] = "" if math.isnan(confidence) else round(confidence, BOX_DECIMALS)
    columns["category"] = items.category[row]
    columns["label"] = items.label[row]
    columns["sequence"] = items.sequence[row] or ""
    return columns
