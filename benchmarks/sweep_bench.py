"""Robustness sweep of ``bench_quality.py --sweep``: every variant of ``sweep_sets.py``
and the real photographs of ``real_sets.py``, scored against their truth.

For each set: features once through :func:`smartdownsample.downsample` (the real
pipeline; its own pick at 10% is checked against the array route used here),
then every method at every target:

``default``  ``strategy="burst"`` exactly as ``downsample()`` runs it
``stride``   every k-th image in natural path order
``random``   mean of ``RANDOM_SEEDS`` seeds
``default~`` and ``stride~``  means over ``SEED_SPREAD`` selection seeds and stride
             offsets, checked against each other
``spec``     ``strategy="spec"``
``1.8.5``    the published release, in its own venv via a subprocess
             (``../shared/tools/reference-venv.sh``), when present
and the ablation rows (``ABLATIONS``): the default with one part of the defence
turned off.

Scores: ``bursts`` (fraction of true bursts with a pick), ``rare`` (same, rare
scenes only), ``pairs`` (picked pairs from one true burst), and for each burst
finder the link recall and precision between natural neighbours.

Tuning and checking are kept apart: data seed 0 of every variant, and of the real
photographs, is the tuning half (thresholds and designs were chosen looking at it
only); data seeds 1 and up are the check half. (The real photographs' seed picks
the crops, their sizes, lengths and JPEG qualities from the same photographs.) The
real photographs' ``other`` family (other photographs) is in the check half but for
its seed 0 (see :data:`TUNED_REAL`).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import real_sets
import sweep_sets
from smartdownsample.api import downsample
from smartdownsample.buckets import bucket_ids
from smartdownsample.bursts import BurstRules, find_bursts, find_clusters, frame_changes
from smartdownsample.selection import select_burst_aware, select_by_buckets, stride_positions

IntArray = NDArray[np.int64]
RANDOM_SEEDS = 5
SELECTION_SEED = 42  # the library's default random_seed
TARGETS = (0.01, 0.05, 0.10, 0.25)
REFERENCE_DIR = os.path.join(tempfile.gettempdir(), "smartdownsample-1.8.5")
STRIDE_SLACK = 0.98  # burst coverage must reach 98% of stride's
PAIR_RANDOM_SHARE = 0.10  # pairs may reach 10% of random's ...
PAIR_STRIDE_SLACK = 1.1  # ... or 1.1 x stride's, whichever is larger
TUNED_REAL = {("skimage", 0), ("other", 0)}
SEED_SPREAD = 5
"""``default~`` and ``stride~``: means over this many selection seeds (stride offsets
``(k + 0.5) / SEED_SPREAD``), so a check does not hang on one seed's luck."""
"""Real-photograph sets whose failures were diagnosed while designing (the tuning half):
``real-s0`` (the quotas beyond one pick per cluster) and ``real-other-s0`` (a burst
that merges several gets its stride's share); every other real set is a check."""


@dataclass
class SweepData:
    name: str
    half: str  # "tune" or "check"
    paths: list[str]
    truth: IntArray
    rare: NDArray[np.bool_]
    feats: NDArray[Any]
    folders: IntArray
    buckets: IntArray
    feature_seconds: float
    check_selection: IntArray
    check_target: int

    @property
    def n(self) -> int:
        return len(self.paths)


def folder_ids(paths: Sequence[str]) -> IntArray:
    folders = [os.path.dirname(p) for p in paths]
    ids = np.zeros(len(folders), dtype=np.int64)
    for i in range(1, len(folders)):
        ids[i] = ids[i - 1] + (folders[i] != folders[i - 1])
    return ids


def prepare(root: Path, name: str, half: str, workers: int) -> SweepData:
    with open(root / sweep_sets.TRUTH_NAME, newline="") as handle:
        rows = list(csv.DictReader(handle))
    paths = [r["path"] for r in rows]
    check_target = max(1, round(0.10 * len(paths)))
    cache = root.parent / f"{root.name}.features.sqlite"  # reruns skip decoding
    result = downsample(
        paths, check_target, n_workers=workers, show_progress=False, cache=str(cache)
    )
    order = result.natural_order
    feats = result.features[order]
    sorted_paths = [paths[i] for i in order]
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    return SweepData(
        name=name,
        half=half,
        paths=sorted_paths,
        truth=np.array([int(rows[i]["burst"]) for i in order], dtype=np.int64),
        rare=np.array([rows[i]["rare"] == "1" for i in order], dtype=bool),
        feats=feats,
        folders=folder_ids([os.path.abspath(p) for p in sorted_paths]),
        buckets=bucket_ids(feats).astype(np.int64),
        feature_seconds=float(result.timings.get("features", 0.0)),
        check_selection=np.sort(position[np.flatnonzero(result.selected)]),
        check_target=check_target,
    )


# ---------------------------------------------------------------------------------------------
# Burst finders and methods
# ---------------------------------------------------------------------------------------------


def bursts_default(data: SweepData, evidence: bool = True) -> IntArray:
    """The default burst finder (``evidence=False``: without the combined-evidence links)."""
    f = data.feats
    return find_bursts(
        data.folders,
        f["dhash"],
        f["mean_rgb"],
        f["capture_time"],
        contrast=f["contrast"],
        width=f["width"],
        height=f["height"],
        rules=None if evidence else BurstRules(evidence=0.0),
    )


def clusters_of(data: SweepData, bursts: IntArray) -> IntArray:
    f = data.feats
    return find_clusters(
        data.folders,
        f["dhash"],
        f["mean_rgb"],
        bursts,
        width=f["width"],
        height=f["height"],
        capture_time=f["capture_time"],
    )


def changes_of(data: SweepData) -> NDArray[np.float64]:
    f = data.feats
    return frame_changes(
        data.folders,
        f["dhash"],
        f["mean_rgb"],
        width=f["width"],
        height=f["height"],
        capture_time=f["capture_time"],
    )


def select(
    data: SweepData, target: int, seed: int, evidence: bool, clusters: bool, recut: bool = True
) -> IntArray:
    bursts = bursts_default(data, evidence)
    return select_burst_aware(
        data.buckets,
        bursts,
        target,
        seed,
        colour=data.feats["mean_rgb"],
        clusters=clusters_of(data, bursts) if clusters else None,
        change=changes_of(data) if recut else None,
    )


def method_default(data: SweepData, target: int, seed: int) -> IntArray:
    return select(data, target, seed, evidence=True, clusters=True)


def method_no_clusters(data: SweepData, target: int, seed: int) -> IntArray:
    """Ablation: combined-evidence links, no clusters."""
    return select(data, target, seed, evidence=True, clusters=False)


def method_no_evidence(data: SweepData, target: int, seed: int) -> IntArray:
    """Ablation: clusters over the bursts of the strict rules only."""
    return select(data, target, seed, evidence=False, clusters=True)


def method_no_recut(data: SweepData, target: int, seed: int) -> IntArray:
    """Ablation: a cluster's few picks go to bursts spread over its frames, not cut at changes."""
    return select(data, target, seed, evidence=True, clusters=True, recut=False)


def method_previous(data: SweepData, target: int, seed: int) -> IntArray:
    """Ablation: none of the three (the default before issue 13)."""
    return select(data, target, seed, evidence=False, clusters=False, recut=False)


def method_stride(data: SweepData, target: int, seed: int) -> IntArray:
    return stride_positions(data.n, target, 0.5)


def method_spec(data: SweepData, target: int, seed: int) -> IntArray:
    return select_by_buckets(data.buckets, target, seed)


Method = Callable[[SweepData, int, int], IntArray]
METHODS: dict[str, Method] = {
    "default": method_default,
    "stride": method_stride,
    "spec": method_spec,
}
ABLATIONS: dict[str, Method] = {
    "-clusters": method_no_clusters,
    "-evidence": method_no_evidence,
    "-recut": method_no_recut,
    "previous": method_previous,
}
FINDERS: dict[str, Callable[[SweepData], IntArray]] = {
    "default": bursts_default,
    "previous": lambda data: bursts_default(data, evidence=False),
    "clusters": lambda data: clusters_of(data, bursts_default(data)),
}


REFERENCE_SCRIPT = """
import json, sys
from smartdownsample import sample_diverse
paths = json.load(open(sys.argv[1]))
out = {}
for target in json.loads(sys.argv[2]):
    out[str(target)] = sample_diverse(paths, target, n_workers=2, show_progress=False,
                                      show_summary=False)
json.dump(out, open(sys.argv[3], "w"))
"""


def run_reference(data: SweepData, targets: Sequence[int]) -> dict[int, IntArray] | None:
    python = os.path.join(REFERENCE_DIR, "bin", "python")
    if not os.path.exists(python):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        paths_file, out_file = os.path.join(tmp, "p.json"), os.path.join(tmp, "o.json")
        with open(paths_file, "w") as handle:
            json.dump(data.paths, handle)
        subprocess.run(
            [python, "-c", REFERENCE_SCRIPT, paths_file, json.dumps(list(targets)), out_file],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        with open(out_file) as handle:
            picked = json.load(handle)
    index = {os.path.abspath(p): i for i, p in enumerate(data.paths)}
    return {
        int(t): np.array([index[os.path.abspath(p)] for p in ps], dtype=np.int64)
        for t, ps in picked.items()
    }


# ---------------------------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------------------------


def score(data: SweepData, picked: IntArray) -> dict[str, float]:
    unique = np.unique(np.asarray(picked, dtype=np.int64))
    covered = np.unique(data.truth[unique])
    rare_bursts = np.unique(data.truth[data.rare])
    counts = np.bincount(data.truth[unique])
    return {
        "bursts": len(covered) / len(np.unique(data.truth)),
        "rare": (
            len(np.intersect1d(covered, rare_bursts)) / len(rare_bursts)
            if len(rare_bursts)
            else float("nan")
        ),
        "pairs": float((counts * (counts - 1) // 2).sum()),
    }


def link_quality(data: SweepData, found: IntArray) -> dict[str, float]:
    """Recall and precision of the links between natural neighbours of one folder."""
    same_folder = data.folders[1:] == data.folders[:-1]
    true_link = (data.truth[1:] == data.truth[:-1]) & same_folder
    found_link = (found[1:] == found[:-1]) & same_folder
    hits = float(np.sum(true_link & found_link))
    return {
        "recall": hits / max(1.0, float(true_link.sum())),
        "precision": hits / max(1.0, float(found_link.sum())),
        "found": float(len(np.unique(found))),
        "true": float(len(np.unique(data.truth))),
    }


def checks(
    rows: dict[str, dict[str, float]], method: str, stride_row: str = "stride"
) -> dict[str, bool]:
    own, stride, rnd = rows[method], rows[stride_row], rows["random"]
    out = {
        "bursts": own["bursts"] >= STRIDE_SLACK * stride["bursts"] - 1e-9,
        "pairs": own["pairs"]
        <= max(PAIR_RANDOM_SHARE * rnd["pairs"], PAIR_STRIDE_SLACK * stride["pairs"]) + 1e-9,
    }
    if "1.8.5" in rows and not np.isnan(own["rare"]):
        out["rare"] = own["rare"] >= rows["1.8.5"]["rare"] - 1e-9
    return out


def run_one(data: SweepData, methods: dict[str, Method]) -> dict[str, Any]:
    picked = METHODS["default"](data, data.check_target, SELECTION_SEED)
    if not np.array_equal(picked, data.check_selection):
        raise SystemExit(f"{data.name}: downsample() picks differ from the array route")
    counts = [max(1, round(t * data.n)) for t in TARGETS]
    reference = run_reference(data, counts)
    report: dict[str, Any] = {
        "name": data.name,
        "half": data.half,
        "n": data.n,
        "bursts": len(np.unique(data.truth)),
        "links": {name: link_quality(data, finder(data)) for name, finder in FINDERS.items()},
        "targets": [],
    }
    for fraction, count in zip(TARGETS, counts, strict=True):
        rows: dict[str, dict[str, float]] = {}
        random_scores = [
            score(data, np.random.default_rng(s).choice(data.n, count, replace=False))
            for s in range(RANDOM_SEEDS)
        ]
        rows["random"] = _mean(random_scores)
        for name, method in methods.items():
            rows[name] = score(data, method(data, count, SELECTION_SEED))
        if reference is not None:
            rows["1.8.5"] = score(data, reference[count])
        spread = range(SEED_SPREAD)
        rows["default~"] = _mean(
            [score(data, METHODS["default"](data, count, SELECTION_SEED + k)) for k in spread]
        )
        rows["stride~"] = _mean(
            [score(data, stride_positions(data.n, count, (k + 0.5) / SEED_SPREAD)) for k in spread]
        )
        verdicts = {m: checks(rows, m) for m in methods if m not in ("stride", "spec")}
        verdicts["default~"] = checks(rows, "default~", "stride~")
        report["targets"].append(
            {"fraction": fraction, "count": count, "rows": rows, "checks": verdicts}
        )
    return report


def _mean(scores: Sequence[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([s[key] for s in scores])) for key in scores[0]}


def _verdict(result: dict[str, bool]) -> str:
    failed = [key for key, value in result.items() if not value]
    return "FAIL(" + ",".join(failed) + ")" if failed else "ok"


def print_report(report: dict[str, Any]) -> None:
    links = "  ".join(
        f"{name}: recall {q['recall']:.3f} precision {q['precision']:.3f} "
        f"({q['found']:.0f} found of {q['true']:.0f})"
        for name, q in report["links"].items()
    )
    print(
        f"\n=== {report['name']} ({report['half']}) {report['n']} images, {report['bursts']} bursts"
    )
    print(f"  links  {links}")
    for entry in report["targets"]:
        cells = "  ".join(
            f"{m} {r['bursts']:.3f}/{r['rare']:.2f}/{r['pairs']:.0f}"
            for m, r in entry["rows"].items()
        )
        verdict = " ".join(f"{m}:{_verdict(c)}" for m, c in entry["checks"].items())
        print(f"  {entry['fraction']:>4.0%} n={entry['count']:<4} {cells}   [{verdict}]")


def sweep(
    data_dir: Path,
    variants: Sequence[str],
    seeds: Sequence[int],
    workers: int,
    real_seeds: Sequence[int],
    out_json: Path,
    other_seeds: Sequence[int] = (),
    with_ablations: bool = True,
) -> list[dict[str, Any]]:
    """Run the sweep; print each set as it finishes; write all reports as JSON."""
    methods = dict(METHODS)
    if with_ablations:
        methods.update(ABLATIONS)
    sets: list[tuple[str, str, Path]] = []
    for seed in seeds:
        for name in variants:
            sets.append((f"{name}-s{seed}", "tune" if seed == 0 else "check", data_dir))
    reports = []
    for label, half, _ in sets:
        name, _, seed_text = label.rpartition("-s")
        started = time.perf_counter()
        root = sweep_sets.ensure_set(data_dir, sweep_sets.VARIANTS[name], int(seed_text))
        data = prepare(root, label, half, workers)
        report = run_one(data, methods)
        report["seconds"] = time.perf_counter() - started
        print_report(report)
        reports.append(report)
    real = [("skimage", seed) for seed in real_seeds] + [("other", seed) for seed in other_seeds]
    for family, seed in real:
        root = real_sets.ensure_real_set(data_dir, seed, family)
        if root is None:
            print("\n(real photographs skipped: pip install scikit-image)")
            break
        half = "tune" if (family, seed) in TUNED_REAL else "check"
        name = real_sets.real_set_name(seed, family)
        report = run_one(prepare(root, name, half, workers), methods)
        print_report(report)
        reports.append(report)
    summarise(reports)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_json.parent, prefix=f".{out_json.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(reports, handle, indent=1)
    os.replace(tmp, out_json)
    print(f"wrote {out_json}")
    return reports


def summarise(reports: Sequence[dict[str, Any]]) -> None:
    """Checks passed per method and half, and the worst link recall."""
    print("\nSummary (checks passed / total, per half):")
    tally: dict[tuple[str, str], list[int]] = {}
    for report in reports:
        for entry in report["targets"]:
            for method, result in entry["checks"].items():
                cell = tally.setdefault((method, report["half"]), [0, 0])
                cell[0] += all(result.values())
                cell[1] += 1
    for (method, half), (passed, total) in sorted(tally.items()):
        print(f"  {method:<14} {half:<6} {passed}/{total}")
    for finder in reports[0]["links"] if reports else ():
        worst = min(reports, key=lambda r: r["links"][finder]["recall"])
        print(
            f"  finder {finder}: worst link recall {worst['links'][finder]['recall']:.3f} "
            f"({worst['name']}), worst precision "
            f"{min(r['links'][finder]['precision'] for r in reports):.3f}"
        )


def markdown_table(reports: Sequence[dict[str, Any]], methods: Sequence[str]) -> str:
    """One row per set and target: bursts / rare / pairs of each method, link quality."""
    head = ["set", "half", "target", "links R/P"] + [f"{m} bursts/rare/pairs" for m in methods]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for report in reports:
        quality = report["links"]["default"]
        links = f"{quality['recall']:.3f}/{quality['precision']:.3f}"
        for entry in report["targets"]:
            cells = [report["name"], report["half"], f"{entry['fraction']:.0%}", links]
            for method in methods:
                row = entry["rows"].get(method)
                cells.append(
                    "-"
                    if row is None
                    else f"{row['bursts']:.3f}/{row['rare']:.2f}/{row['pairs']:.0f}"
                )
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    with open(sys.argv[1]) as source:
        loaded = json.load(source)
    chosen = sys.argv[2].split(",") if len(sys.argv) > 2 else ["default", "stride", "random"]
    print(markdown_table(loaded, chosen))
