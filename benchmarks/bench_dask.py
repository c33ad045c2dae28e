"""Dask backend: images/s of local threads vs a LocalCluster of 1 and 2 workers.

On one set of synthetic camera-trap crops (``make_dataset``, or the images
under ``--data``), with the files already in the OS page cache (every file is
read once before timing), this script prints side by side:

* images/s of feature extraction with the local backend (``n_workers=1`` and
  the default ``n_workers=4`` threads), and with ``backend="dask"`` on a
  ``LocalCluster`` of 1 and of 2 single-threaded worker processes (cluster
  start-up timed separately; a small warm-up run first so that workers have
  imported everything), each the best of ``--repeat`` interleaved rounds (so
  that a load drifting over the run hits every backend alike), with the ratio to
  the local default, and whether the selection is identical to the local one;
* what the per-image time limit costs on the workers: images/s of tasks
  running ``extract_batch`` directly against the default tasks, which decode
  in one watched thread (``image_timeout``), same cluster, interleaved rounds;
* the per-task overhead of the Dask backend: the same runner with a task that
  decodes nothing (returns empty rows), for empty tasks and for batches of
  several sizes, in ms per task, next to the real images/s at those batch
  sizes and the overhead as a share of the decode time of a batch.

Nothing is written into the repository.

Usage::

    python benchmarks/bench_dask.py                      # 4,000 crops in a temp folder
    python benchmarks/bench_dask.py --data /tmp/crops    # made there once, reused after
    python benchmarks/bench_dask.py --images 10000 --repeat 3
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from smartdownsample import downsample
from smartdownsample.extraction import BatchResult, extract_batch
from smartdownsample.extraction.dask import (
    DEFAULT_BATCH_SIZE,
    LOCAL_DASHBOARD_ADDRESS,
    DaskRunner,
    dask_runner,
)
from smartdownsample.features import empty_features
from smartdownsample.result import SelectionResult
from smartdownsample.synthetic import GROUND_TRUTH_NAME, load_dataset, make_dataset

TARGET_FRACTION = 0.1
"""Share of the images selected in each run (selection is the same cheap step
for every backend; only feature extraction differs)."""

WARMUP_IMAGES = 200
"""Images of the warm-up run on a fresh cluster: makes every worker import
Pillow, numpy and the decoders before anything is timed."""

IMAGE_SUFFIXES = (".jpg", ".jpeg")

LOCAL_SERIAL = "local, 1 thread"
LOCAL_DEFAULT = "local, default executor"


def noop_batch(paths: Sequence[str], hash_size: int) -> BatchResult:
    """A task that decodes nothing: measures what a task costs beyond decoding."""
    return BatchResult(empty_features(len(paths)), np.ones(len(paths), dtype=bool), ())


def find_images(root: Path) -> list[str]:
    return sorted(str(path) for path in root.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES)


def prepare_data(data: str | None, n_images: int) -> tuple[list[str], Path | None]:
    """The image paths, and a temporary folder to delete afterwards (if any)."""
    if data is not None:
        root = Path(data)
        if (root / GROUND_TRUTH_NAME).exists():
            return [str(path) for path in load_dataset(root).paths], None
        found = find_images(root) if root.is_dir() else []
        if found:
            return found, None
        print(f"writing {n_images} synthetic crops to {root} (reused by later runs)")
        made = make_dataset(root, n_images, kind="crops", seed=11, n_workers=os.cpu_count() or 1)
        return [str(path) for path in made.paths], None
    temp = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    print(f"writing {n_images} synthetic crops to {temp} (deleted at the end; --data keeps them)")
    made = make_dataset(temp, n_images, kind="crops", seed=11, n_workers=os.cpu_count() or 1)
    return [str(path) for path in made.paths], temp


def warm_file_cache(paths: Sequence[str]) -> float:
    """Read every file once; return the MiB read."""
    total = 0
    for path in paths:
        with open(path, "rb") as handle:
            total += len(handle.read())
    return total / 2**20


def dask_label(workers: int) -> str:
    return f"dask LocalCluster, {workers} worker{'s' if workers > 1 else ''}"


def same_selection(a: SelectionResult, b: SelectionResult) -> bool:
    return (
        a.selected_paths == b.selected_paths
        and a.features.tobytes() == b.features.tobytes()
        and np.array_equal(a.bucket_ids, b.bucket_ids)
    )


def time_runner(runner: DaskRunner, paths: Sequence[str], n: int) -> float:
    """Wall time of the runner over ``n`` paths (results only counted)."""
    received = 0

    def count(batch: NDArray[np.int64], result: BatchResult) -> None:
        nonlocal received
        received += len(batch)

    started = time.perf_counter()
    runner(paths, np.arange(n, dtype=np.int64), 8, on_batch=count)
    elapsed = time.perf_counter() - started
    assert received == n
    return elapsed


def time_limit_cost(client: Any, paths: Sequence[str], repeat: int) -> tuple[float, float]:
    """Best wall time of plain ``extract_batch`` tasks and of the default (time-limited) ones."""
    plain, limited = math.inf, math.inf
    for _ in range(repeat):  # interleaved: a drifting load hits both alike
        plain = min(plain, time_runner(DaskRunner(client, task=extract_batch), paths, len(paths)))
        limited = min(limited, time_runner(dask_runner(client), paths, len(paths)))
    return plain, limited


def overhead_table(
    client: Any, paths: Sequence[str], batch_sizes: Sequence[int], n_tasks: int, repeat: int
) -> list[dict[str, float]]:
    """Per-task cost with a no-op task, and real images/s, per batch size."""
    rows: list[dict[str, float]] = []
    empty_paths = [""] * n_tasks
    empty = min(
        time_runner(DaskRunner(client, batch_size=1, task=noop_batch), empty_paths, n_tasks)
        for _ in range(repeat)
    )
    rows.append({"batch": 0, "tasks": n_tasks, "ms_per_task": empty / n_tasks * 1000})
    for size in batch_sizes:
        # The no-op task reads nothing, so paths may repeat to fill n_tasks batches.
        fake = [paths[i % len(paths)] for i in range(size * n_tasks)]
        noop = min(
            time_runner(DaskRunner(client, batch_size=size, task=noop_batch), fake, len(fake))
            for _ in range(repeat)
        )
        tasks = n_tasks
        real = min(
            time_runner(DaskRunner(client, batch_size=size), paths, len(paths))
            for _ in range(repeat)
        )
        rows.append(
            {
                "batch": size,
                "tasks": tasks,
                "ms_per_task": noop / tasks * 1000,
                "images_per_s": len(paths) / real,
            }
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder of images (made there if empty)")
    parser.add_argument("--images", type=int, default=4000, help="images to make (default 4000)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per figure (best kept)")
    parser.add_argument(
        "--batch-sizes",
        default="32,64,128,256,512,1024",
        help="batch sizes of the overhead table (comma-separated)",
    )
    parser.add_argument("--overhead-tasks", type=int, default=200, help="tasks per no-op run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.WARNING)

    # Imported here, untyped: the benchmark needs the dask extra only when run.
    distributed: Any = importlib.import_module("distributed")

    batch_sizes = [int(part) for part in args.batch_sizes.split(",") if part]
    paths, temp = prepare_data(args.data, args.images)
    try:
        n = len(paths)
        target = max(1, int(n * TARGET_FRACTION))
        mib = warm_file_cache(paths)
        cores = os.cpu_count() or 1
        print(
            f"{n} images, {mib:.0f} MiB (mean {mib * 1024 / n:.0f} KiB), page cache warm; "
            f"{cores} cores; load average {os.getloadavg()[0]:.1f}; Python "
            f"{sys.version.split()[0]}, distributed {distributed.__version__}"
        )

        runs: dict[str, Callable[[], SelectionResult]] = {
            LOCAL_SERIAL: functools.partial(
                downsample, paths, target, show_progress=False, n_workers=1
            ),
            LOCAL_DEFAULT: functools.partial(downsample, paths, target, show_progress=False),
        }
        startups: dict[str, float] = {}
        with contextlib.ExitStack() as stack:
            clients: dict[int, Any] = {}
            for workers in (1, 2):
                started = time.perf_counter()
                cluster = stack.enter_context(
                    distributed.LocalCluster(
                        n_workers=workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=LOCAL_DASHBOARD_ADDRESS,
                    )
                )
                client = stack.enter_context(distributed.Client(cluster, set_as_default=False))
                client.wait_for_workers(workers)
                label = dask_label(workers)
                startups[label] = time.perf_counter() - started
                # Warm-up: every worker imports Pillow, numpy and the decoders.
                downsample(
                    paths[:WARMUP_IMAGES], 10, show_progress=False, backend="dask", client=client
                )
                clients[workers] = client
                runs[label] = functools.partial(
                    downsample, paths, target, show_progress=False, backend="dask", client=client
                )
            # Interleaved rounds, best of each: a load that drifts hits every backend alike.
            best: dict[str, tuple[float, float]] = {}
            results: dict[str, SelectionResult] = {}
            for _ in range(args.repeat):
                for label, run in runs.items():
                    result = run()
                    results[label] = result
                    previous = best.get(label, (math.inf, math.inf))
                    best[label] = (
                        min(previous[0], result.timings["features"]),
                        min(previous[1], result.timings["total"]),
                    )
            overhead = overhead_table(
                clients[2], paths, batch_sizes, args.overhead_tasks, args.repeat
            )
            plain, limited = time_limit_cost(clients[2], paths, max(args.repeat, 3))

        reference = results[LOCAL_DEFAULT]
        rows: list[tuple[str, float, float, float | None, bool | None]] = [
            (
                label,
                best[label][0],
                best[label][1],
                startups.get(label),
                None if label == LOCAL_DEFAULT else same_selection(results[label], reference),
            )
            for label in runs
        ]
        feat = best[LOCAL_DEFAULT][0]
        base = n / feat
        print()
        print(
            f"{'backend':<32} {'images/s':>9} {'vs local':>9} {'total s':>8} "
            f"{'start s':>8} {'same result':>12}"
        )
        for label, featr, totalr, startup_r, same in rows:
            rate = n / featr
            print(
                f"{label:<32} {rate:>9.0f} {rate / base:>8.2f}x {totalr:>8.2f} "
                f"{'' if startup_r is None else f'{startup_r:.2f}':>8} "
                f"{'' if same is None else ('yes' if same else 'NO'):>12}"
            )
        one = next(r for r in rows if r[0] == dask_label(1))
        two = next(r for r in rows if r[0] == dask_label(2))
        print(
            f"\n2 workers / 1 worker: {one[1] / two[1]:.2f}x;  "
            f"1 worker / local 1 thread: {rows[0][1] / one[1]:.2f}x"
        )

        print(
            f"\nper-image time limit on the workers (LocalCluster of 2): plain extract_batch "
            f"{n / plain:.0f} images/s, watched (image_timeout) {n / limited:.0f} images/s, "
            f"ratio {plain / limited:.3f}x"
        )

        per_image_ms = two[1] / n * 1000
        print(
            f"\nper-task overhead, LocalCluster of 2 workers (no-op task, {args.overhead_tasks} "
            f"tasks per size); decode cost on this cluster {per_image_ms:.2f} ms per image"
        )
        print(f"{'batch':>6} {'tasks':>6} {'ms/task':>8} {'overhead':>9} {'real images/s':>14}")
        for row in overhead:
            size = int(row["batch"])
            share = row["ms_per_task"] / (size * per_image_ms) if size else float("nan")
            real = row.get("images_per_s")
            print(
                f"{size if size else 'empty':>6} {int(row['tasks']):>6} "
                f"{row['ms_per_task']:>8.2f} "
                f"{'' if not size else f'{share:.1%}':>9} "
                f"{'' if real is None else f'{real:.0f}':>14}"
            )
        print(
            f"\nbatch size chosen: up to {DEFAULT_BATCH_SIZE} images per task "
            f"(smaller for small runs, so every worker gets work); "
            f"load average at the end {os.getloadavg()[0]:.1f}"
        )
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
