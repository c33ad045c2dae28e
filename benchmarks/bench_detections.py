"""Selecting among detections (issue 14): quality, speed and box-vs-crop features.

Frames come from :func:`smartdownsample.synthetic.make_dataset` (``kind="frames"``:
several camera locations, bursts as sequences, day and night, rare scenes);
this script adds detector output it defines itself and writes it as a
MegaDetector batch results file, read back with
:func:`smartdownsample.formats.read_detections` (public tools only):

* one animal box per frame, moving a little within its sequence, a second
  animal in some sequences, a species label per sequence (skewed counts);
* false low-confidence boxes (below the reader's ``min_conf`` 0.2), person
  boxes (not the default category) and empty frames (no detection).

Parts, printed side by side:

(a) quality at 5% and 10% of the items: same-sequence pairs (goal <= 10% of
    random's), sequence coverage (goal >= 0.98 x a stride over the detections
    in natural order) and rare-scene sequence coverage (goal >= a per-class
    random pick: the target split evenly over the labels, random inside);
(b) speed on full 1920x1080 frames (about 1.3 boxes a frame): items/s and
    frames/s of ``downsample(table)`` next to ``downsample`` of the same
    frames as whole images (goal >= 0.75 x its frames/s), 2 workers, no
    cache, best of ``--repeats``;
(c) the share of boxes whose bucket equals that of the crop cut at full
    resolution and saved as a JPEG file (goal >= 95%).

Usage::

    python benchmarks/bench_detections.py
    python benchmarks/bench_detections.py --quality-frames 3000 --speed-frames 600
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from smartdownsample import downsample
from smartdownsample.buckets import bucket_ids
from smartdownsample.extraction import extract_features
from smartdownsample.formats import ItemTable, crop_item, read_detections
from smartdownsample.paths import natural_order
from smartdownsample.synthetic import SyntheticDataset, make_dataset

SPECIES = ("deer", "boar", "fox", "badger", "lynx")
SPECIES_WEIGHTS = (0.45, 0.25, 0.15, 0.10, 0.05)
EMPTY_SEQUENCES = 0.10
"""Share of sequences with no detection at all (triggered by wind, sun)."""
PERSON_SEQUENCES = 0.05
TWO_ANIMAL_SEQUENCES = 0.3
"""Share of sequences with a second animal: with the false boxes about 1.3 boxes a frame."""
FALSE_BOX_FRAMES = 0.2
MIN_CONF = 0.2


@dataclass
class Truth:
    """Per item of the table read back: its sequence and whether its scene is rare."""

    sequence: np.ndarray
    rare: np.ndarray
    frames: int


def _box(rng: np.random.Generator) -> list[float]:
    w = float(rng.uniform(0.08, 0.45))
    h = float(np.clip(w * rng.uniform(0.8, 1.6), 0.08, 0.9))
    return [float(rng.uniform(0, 1 - w)), float(rng.uniform(0, 1 - h)), w, h]


def _jitter(box: list[float], rng: np.random.Generator) -> list[float]:
    x, y, w, h = box
    x = float(np.clip(x + rng.normal(0, 0.02), 0, 1 - w))
    y = float(np.clip(y + rng.normal(0, 0.01), 0, 1 - h))
    return [round(v, 4) for v in (x, y, w, h)]


def _detection(category: str, box: list[float], conf: float, species: int) -> dict[str, Any]:
    found: dict[str, Any] = {"category": category, "conf": round(conf, 3), "bbox": box}
    if category == "1":
        found["classifications"] = [[str(species), 0.9]]
    return found


def _sequence_plan(rng: np.random.Generator, n_bursts: int) -> list[dict[str, Any]]:
    plans = []
    for _ in range(n_bursts):
        kind = rng.random()
        plans.append(
            {
                "empty": kind < EMPTY_SEQUENCES,
                "person": EMPTY_SEQUENCES <= kind < EMPTY_SEQUENCES + PERSON_SEQUENCES,
                "species": int(rng.choice(len(SPECIES), p=SPECIES_WEIGHTS)),
                "boxes": [_box(rng) for _ in range(1 + (rng.random() < TWO_ANIMAL_SEQUENCES))],
            }
        )
    return plans


def write_detections(data: SyntheticDataset, path: Path, seed: int) -> None:
    """A MegaDetector 1.4 results file for the frames of ``data`` (see the module notes)."""
    rng = np.random.default_rng(seed)
    plans = _sequence_plan(rng, 1 + max(image.burst_id for image in data.images))
    images = []
    for image in data.images:
        plan = plans[image.burst_id]
        found = []
        if plan["person"]:
            found.append(_detection("2", _jitter(plan["boxes"][0], rng), 0.85, 0))
        elif not plan["empty"]:
            for box in plan["boxes"]:
                conf = float(rng.uniform(0.5, 0.98))
                found.append(_detection("1", _jitter(box, rng), conf, plan["species"]))
        if rng.random() < FALSE_BOX_FRAMES:
            found.append(_detection("1", _jitter(_box(rng), rng), rng.uniform(0.02, 0.15), 0))
        images.append({"file": image.relpath, "detections": found})
    document = {
        "info": {"format_version": "1.4", "detector": "synthetic"},
        "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
        "classification_categories": {str(i): name for i, name in enumerate(SPECIES)},
        "images": images,
    }
    path.write_text(json.dumps(document), encoding="utf-8")


def make_set(root: Path, frames: int, size: tuple[int, int], seed: int) -> tuple[ItemTable, Truth]:
    """Frames, their detections, the item table read back and its ground truth."""
    data = make_dataset(
        root / "frames", frames, kind="frames", frame_size=size, seed=seed, n_workers=2
    )
    results = root / "md results.json"
    write_detections(data, results, seed)
    table = read_detections(results, image_root=data.root, min_conf=MIN_CONF)
    by_path = {os.path.abspath(image.path): image for image in data.images}
    truth = [by_path[os.path.abspath(frame)] for frame in table.frame]
    return table, Truth(
        np.array([t.burst_id for t in truth]), np.array([t.is_rare for t in truth]), frames
    )


# ---------------------------------------------------------------- (a) quality


def scores(kept: np.ndarray, truth: Truth) -> dict[str, float]:
    """Same-sequence pairs, sequence coverage and rare-sequence coverage of a pick."""
    counts = Counter(truth.sequence[kept].tolist())
    pairs = sum(c * (c - 1) // 2 for c in counts.values())
    sequences = set(truth.sequence.tolist())
    rare = set(truth.sequence[truth.rare].tolist())
    return {
        "pairs": float(pairs),
        "sequences": len(counts) / len(sequences),
        "rare": len(rare & set(counts)) / max(1, len(rare)),
    }


def natural_item_order(table: ItemTable) -> np.ndarray:
    """Items in natural order of their frames (rows of one frame in table order)."""
    frames, frame_of = table.frames()
    rank = np.empty(len(frames), dtype=np.int64)
    rank[natural_order(frames)] = np.arange(len(frames))
    return np.lexsort((np.arange(len(table)), rank[frame_of]))


def per_class_random(table: ItemTable, target: int, rng: np.random.Generator) -> np.ndarray:
    """The standard alternative: a cap per label so that ``target`` are kept, random inside."""
    labels = np.array(table.label)
    groups = [np.flatnonzero(labels == label) for label in sorted(set(table.label))]
    cap = 0
    while sum(min(len(g), cap + 1) for g in groups) <= target:
        cap += 1
    picked = [rng.choice(g, min(len(g), cap), replace=False) for g in groups]
    chosen = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
    rest = np.setdiff1d(np.arange(len(table)), chosen)
    extra = rng.choice(rest, target - len(chosen), replace=False)
    return np.concatenate([chosen, extra]).astype(np.int64)


def quality(table: ItemTable, truth: Truth, fractions: list[float], seeds: int) -> list[str]:
    """Lines of part (a) and whether every goal was met."""
    lines = []
    order = natural_item_order(table)
    for fraction in fractions:
        target = max(1, round(fraction * len(table)))
        ours = scores(
            np.array(downsample(table, target, show_progress=False).selected_indices), truth
        )
        stride = scores(
            order[np.linspace(0, len(table), target, endpoint=False).astype(int)], truth
        )
        rand = [
            scores(np.random.default_rng(s).choice(len(table), target, replace=False), truth)
            for s in range(seeds)
        ]
        cls = [
            scores(per_class_random(table, target, np.random.default_rng(s)), truth)
            for s in range(seeds)
        ]
        mean = {k: float(np.mean([r[k] for r in rand])) for k in ours}
        cmean = {k: float(np.mean([r[k] for r in cls])) for k in ours}
        lines.append(
            f"{fraction:>5.0%} {target:>5}  pairs {ours['pairs']:>5.0f}"
            f" vs random {mean['pairs']:>7.1f}"
            f" ({ours['pairs'] / max(mean['pairs'], 1e-9):.1%}, goal <=10%)"
            f"  sequences {ours['sequences']:.3f} vs stride {stride['sequences']:.3f}"
            f" ({ours['sequences'] / stride['sequences']:.3f}x, goal >=0.98x)"
            f"  rare {ours['rare']:.3f} vs per-class random {cmean['rare']:.3f} (goal >=)"
        )
    return lines


# ---------------------------------------------------------------- (b) speed, (c) crops


def seconds(run: Any) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def speed(table: ItemTable, repeats: int) -> str:
    """Items/s and frames/s of both runs, best of ``repeats`` (interleaved: the
    machine is shared, so both see the same load)."""
    frames = list(dict.fromkeys(table.frame))
    options: dict[str, Any] = {"show_progress": False, "n_workers": 2}
    downsample(frames, 10, **options)  # page cache warm
    items_s = whole_s = math.inf
    for _ in range(repeats):
        items_s = min(items_s, seconds(lambda: downsample(table, 10, **options)))
        whole_s = min(whole_s, seconds(lambda: downsample(frames, 10, **options)))
    ratio = whole_s / items_s
    return (
        f"detections: {len(table)} items of {len(frames)} frames "
        f"({len(table) / len(frames):.2f} a frame) in {items_s:.2f} s = "
        f"{len(table) / items_s:.0f} items/s, {len(frames) / items_s:.0f} frames/s | "
        f"whole frames: {whole_s:.2f} s = {len(frames) / whole_s:.0f} frames/s | "
        f"ratio {ratio:.2f}x (goal >= 0.75x)"
    )


def crops_vs_boxes(table: ItemTable, folder: Path, limit: int) -> str:
    """Share of boxes in the same bucket as their crop saved as a file."""
    rows = np.flatnonzero(~table.whole_image)[:limit]
    sub = table.take(rows)
    boxes = downsample(sub, 1, show_progress=False, n_workers=2)
    folder.mkdir(parents=True, exist_ok=True)
    crops = []
    for k, row in enumerate(rows.tolist()):
        target = folder / f"crop_{k}.jpg"
        crop_item(table.frame[row], table.box[row]).save(target, quality=95)
        crops.append(str(target))
    from_crops = extract_features(crops, 8).features
    lines = []
    for strategy in ("burst", "spec"):
        same = bucket_ids(boxes.features, strategy) == bucket_ids(from_crops, strategy)
        lines.append(f"{strategy}: {same.mean():.1%} ({int(same.sum())} of {len(rows)} boxes)")
    return "same bucket as the saved crop: " + ", ".join(lines) + " (goal >= 95%)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quality-frames", type=int, default=2000)
    parser.add_argument("--speed-frames", type=int, default=400)
    parser.add_argument("--crop-boxes", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--random-seeds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench detections ") as tmp:
        root = Path(tmp)
        table, truth = make_set(root / "quality", args.quality_frames, (640, 360), args.seed)
        print(
            f"(a) quality: {len(table)} items of {truth.frames} frames, "
            f"{len(set(truth.sequence.tolist()))} sequences with items, "
            f"{len(set(truth.sequence[truth.rare].tolist()))} rare"
        )
        for line in quality(table, truth, [0.05, 0.10], args.random_seeds):
            print("   ", line)
        big, _ = make_set(root / "speed", args.speed_frames, (1920, 1080), args.seed + 1)
        print("(b) speed, 2 workers:", speed(big, args.repeats))
        print("(c)", crops_vs_boxes(big, root / "crops", args.crop_boxes))


if __name__ == "__main__":
    main()
