"""Speed of feature extraction next to the decoder floor, a plain baseline and 1.8.5.

On synthetic camera-trap JPEGs (``make_dataset``: detector-style crops of
150-600 px and full 1920x1080 frames), with the files already in the OS page
cache (every file is read once before timing), this script prints, per image
kind, side by side in images per second:

* **bare decoders** on the same files with the same number of worker
  processes (started and warmed up before timing): reading the bytes alone,
  and open + read + scaled decode with simplejpeg (``min_height/min_width`` =
  the 32 px thumbnail), OpenCV (``IMREAD_REDUCED_COLOR_2/4/8``, the largest
  reduction that keeps 32 px) and Pillow (``draft``). The fastest of the three
  is the **floor**; "vs floor" is how many times longer than the floor a row
  takes (the target for feature extraction is at most 1.3);
* the **plain full-decode baseline**: Pillow open, full decode, RGB convert
  and a 32x32 resize per image, same worker processes;
* **this version**: features only (``extract_features`` with the default
  ``executor="auto"`` runner, worker start-up included; and the steady rate
  with the separately measured start-up taken out), and ``downsample`` end to
  end in a fresh Python process, without cache, then with a new feature cache
  file twice (cold, then warm in a second process, as a re-run would be),
  with the peak memory of that process and of its largest worker and the
  per-stage split from ``result.timings``;
* the **1.8.5 release** (``sample_diverse`` with the same ``n_workers``), run
  by the interpreter given with ``--reference`` when it exists.

With ``--executors`` (on by default) it also prints features-only images/s of
the serial, thread and process executors with 2 and 4 workers, and the time to
start the workers: this version's (``python -c``, importing only what
extraction needs) and ``multiprocessing``'s forkserver and spawn pools.

Every figure is the best of ``--repeat`` rounds (the 1.8.5 release: of
``--reference-repeat``), which keeps other load on a shared machine from
deciding the comparison. Data sets are made under ``--data`` (a temporary
folder by default) and reused when they are already there. Nothing is written
into the repository.

Usage::

    python benchmarks/bench_speed.py                          # 5,000 crops, 800 frames
    python benchmarks/bench_speed.py --crops 2000 --frames 200 --repeat 2
    python benchmarks/bench_speed.py --data /tmp/bench --workers 4 --quality 95
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from _procmem import with_sampler  # benchmarks/ is on sys.path when run as a script
from smartdownsample import __version__
from smartdownsample._types import ExecutorKind
from smartdownsample.extraction import choose_executor, extract_features, local_runner, run_batches
from smartdownsample.extraction.processes import WorkerPool
from smartdownsample.loading import jpeg_decoder, thumbnail_side
from smartdownsample.synthetic import GROUND_TRUTH_NAME, load_dataset, make_dataset

HASH_SIZE = 8
SIDE = thumbnail_side(HASH_SIZE)
CHUNK = 64
"""Files per task of the bare-decoder pools: the batch size of this version."""

TARGET_FRACTION = 0.1
"""Share of the images selected by the end-to-end runs."""

REFERENCE_PYTHON = "/tmp/smartdownsample-1.8.5/bin/python"
TARGET_RATIO = 1.3
WARM_CACHE_TARGET = 20.0

# ----------------------------------------------------------------------------
# Bare decoders (run in worker processes; module level so that they pickle)


def _read_only(paths: Sequence[str]) -> tuple[int, float]:
    cpu = time.process_time()
    for path in paths:
        with open(path, "rb") as handle:
            handle.read()
    return len(paths), time.process_time() - cpu


def _simplejpeg(paths: Sequence[str]) -> tuple[int, float]:
    import simplejpeg

    cpu = time.process_time()
    for path in paths:
        with open(path, "rb") as handle:
            data = handle.read()
        simplejpeg.decode_jpeg(data, "RGB", min_height=SIDE, min_width=SIDE)
    return len(paths), time.process_time() - cpu


def _opencv(items: Sequence[tuple[str, int]]) -> tuple[int, float]:
    import cv2

    cv2.setNumThreads(1)
    cpu = time.process_time()
    for path, flag in items:
        with open(path, "rb") as handle:
            data = handle.read()
        cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    return len(items), time.process_time() - cpu


def _pillow_draft(paths: Sequence[str]) -> tuple[int, float]:
    from PIL import Image

    cpu = time.process_time()
    for path in paths:
        with Image.open(path) as image:
            image.draft("RGB", (SIDE, SIDE))
            image.load()
    return len(paths), time.process_time() - cpu


def _full_decode(paths: Sequence[str]) -> tuple[int, float]:
    """The plain baseline: full decode, RGB, one area resize."""
    from PIL import Image

    cpu = time.process_time()
    for path in paths:
        with Image.open(path) as image:
            image.load()
            image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BOX)
    return len(paths), time.process_time() - cpu


def _warm(_: int) -> bool:
    import cv2  # noqa: F401
    import simplejpeg  # noqa: F401
    from PIL import Image  # noqa: F401

    time.sleep(0.05)  # so that every worker gets one warm-up task
    return True


def _opencv_items(paths: Sequence[str]) -> list[tuple[str, int]] | None:
    """(path, IMREAD_REDUCED flag keeping >= SIDE px) for each file, or None without OpenCV."""
    try:
        import cv2
        import simplejpeg
    except ImportError:
        return None
    flags = {
        1: cv2.IMREAD_COLOR,
        2: cv2.IMREAD_REDUCED_COLOR_2,
        4: cv2.IMREAD_REDUCED_COLOR_4,
        8: cv2.IMREAD_REDUCED_COLOR_8,
    }
    items = []
    for path in paths:
        with open(path, "rb") as handle:
            height, width, _, _ = simplejpeg.decode_jpeg_header(handle.read())
        ratio = min(width, height) // SIDE
        items.append((path, flags[next((s for s in (8, 4, 2, 1) if ratio >= s), 1)]))
    return items


@dataclass(frozen=True)
class Figure:
    """One measurement: wall-clock images/s with all workers, and CPU ms per image.

    The CPU time is summed over every process and thread that worked (the
    caller, its workers), so it is the cost per image on one core. It hardly
    moves with other load on the machine, whereas images/s does.
    """

    rate: float
    cpu_ms: float


def _best(rounds: int, run: Callable[[], Figure]) -> Figure:
    figures = [run() for _ in range(rounds)]
    return Figure(max(f.rate for f in figures), min(f.cpu_ms for f in figures))


def _cpu_seconds() -> float:
    """CPU time of this process and of its reaped child processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _pool_figure(
    pool: ProcessPoolExecutor, func: Callable[[Any], tuple[int, float]], items: Sequence[Any]
) -> Figure:
    chunks = [items[start : start + CHUNK] for start in range(0, len(items), CHUNK)]
    started = time.perf_counter()
    answers = list(pool.map(func, chunks))
    wall = time.perf_counter() - started
    done = sum(count for count, _ in answers)
    cpu = sum(seconds for _, seconds in answers)
    return Figure(done / wall, 1000.0 * cpu / done)


def _dataset(root: Path, kind: str, count: int, quality: int) -> list[str]:
    folder = root / f"{kind}-{count}-q{quality}"
    if (folder / GROUND_TRUTH_NAME).exists():
        return load_dataset(folder).paths
    if folder.exists():
        shutil.rmtree(folder)
    print(f"making {count} synthetic {kind} in {folder} ...", flush=True)
    data = make_dataset(
        folder,
        count,
        kind=kind,  # type: ignore[arg-type]
        seed=0,
        jpeg_quality=quality,
        n_workers=os.cpu_count() or 1,
    )
    return data.paths


def _warm_page_cache(paths: Sequence[str]) -> float:
    total = 0
    for path in paths:
        with open(path, "rb") as handle:
            total += len(handle.read())
    return total / max(1, len(paths))


_CHILD = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")  # a benchmark child: only its JSON line matters
@WORKER_PEAK_SAMPLER@
paths = open(sys.argv[1], encoding="utf-8").read().split("\n")
target, workers, cache = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] or None
def cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
if sys.argv[5] == "reference":
    from smartdownsample import sample_diverse
    cpu0, started = cpu(), time.perf_counter()
    picked = sample_diverse(paths, target, n_workers=workers, show_progress=False,
                            show_summary=False)
    out = {"seconds": time.perf_counter() - started, "selected": len(picked)}
else:
    from smartdownsample import downsample
    cpu0, started = cpu(), time.perf_counter()
    result = downsample(paths, target, n_workers=workers, show_progress=False, cache=cache)
    out = {"seconds": time.perf_counter() - started, "selected": result.n_selected,
           "timings": result.timings, "cached": result.n_cached}
out["cpu"] = cpu() - cpu0
out["rss_self"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out["rss_children"] = worker_peak[0] or None
print(json.dumps(out))
"""


def _child_run(
    python: str, list_file: Path, target: int, workers: int, cache: str, mode: str
) -> dict[str, Any]:
    """Run downsample (or 1.8.5's sample_diverse) in a fresh interpreter; its JSON report."""
    completed = subprocess.run(
        [
            python,
            "-c",
            with_sampler(_CHILD),
            str(list_file),
            str(target),
            str(workers),
            cache,
            mode,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{completed.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return report


def _child_figure(runs: list[dict[str, Any]], count: int) -> Figure:
    return Figure(
        count / min(run["seconds"] for run in runs),
        1000.0 * min(run["cpu"] for run in runs) / count,
    )


def _mib(value: float) -> str:
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return f"{value / scale:,.0f} MiB"


def _worker_peak(kib: float | None) -> str:
    """Largest worker VmHWM (sampled on Linux; the kernel's ru_maxrss of a child
    would count the parent's pages it shares between fork and exec)."""
    return "n/a (threads, or not Linux)" if kib is None else f"{kib / 1024:,.0f} MiB"


def _row(label: str, figure: Figure | None, floor: Figure | None, note: str = "") -> None:
    if figure is None:
        print(f"  {label:<50} {'not available':>10}   {note}")
        return
    ratios = ""
    if floor is not None:
        ratios = f"{figure.cpu_ms / floor.cpu_ms:7.2f}x {floor.rate / figure.rate:7.2f}x"
    print(f"  {label:<50} {figure.rate:>10,.0f} {figure.cpu_ms:>9.3f}  {ratios:<17} {note}")


def _startup(workers: int, rounds: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) to start this version's workers and get an answer from each."""

    def once() -> tuple[float, float]:
        cpu, started = _cpu_seconds(), time.perf_counter()
        with WorkerPool(workers) as pool:
            empty = [np.zeros(0, np.int64)] * workers
            pool.run([], iter(empty), HASH_SIZE, lambda i, r: None)
        return time.perf_counter() - started, _cpu_seconds() - cpu

    runs = [once() for _ in range(rounds)]
    return min(wall for wall, _ in runs), min(cpu for _, cpu in runs)


def auto_processes(workers: int) -> int:
    """Worker processes ``executor="auto"`` starts for ``workers`` (see run_batches)."""
    return min(workers, os.cpu_count() or 1)


def _mp_startup_seconds(method: str, workers: int) -> float | None:
    if method not in multiprocessing.get_all_start_methods():
        return None
    context = multiprocessing.get_context(method)
    started = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        list(pool.map(_import_extract, range(workers)))
    return time.perf_counter() - started


def _import_extract(_: int) -> bool:
    import smartdownsample.extraction  # noqa: F401

    time.sleep(0.05)
    return True


# ----------------------------------------------------------------------------


def bench_kind(
    kind: str,
    paths: list[str],
    args: argparse.Namespace,
    workdir: Path,
    startup: dict[int, tuple[float, float]],
) -> None:
    count = len(paths)
    mean_size = _warm_page_cache(paths)
    _warm_page_cache(paths)
    print(
        f"\n== {kind}: {count:,} files, mean {mean_size / 1024:,.0f} KiB "
        f"(JPEG quality {args.quality}), {args.workers} workers, {os.cpu_count()} cores =="
    )
    print(f"  {'':<50} {'images/s':>10} {'CPU ms/img':>9}  {'vs floor':>8} {'(wall)':>7}")
    rounds = args.repeat

    context = multiprocessing.get_context(
        "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    )
    decoders: dict[str, Figure | None] = {}
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        list(pool.map(_warm, range(args.workers * 2)))
        read = _best(rounds, lambda: _pool_figure(pool, _read_only, paths))
        decoders["simplejpeg"] = _best(rounds, lambda: _pool_figure(pool, _simplejpeg, paths))
        items = _opencv_items(paths)
        decoders["OpenCV IMREAD_REDUCED_*"] = (
            None if items is None else _best(rounds, lambda: _pool_figure(pool, _opencv, items))
        )
        decoders["Pillow draft"] = _best(rounds, lambda: _pool_figure(pool, _pillow_draft, paths))
        full = _best(rounds, lambda: _pool_figure(pool, _full_decode, paths))
    floor = min((f for f in decoders.values() if f is not None), key=lambda f: f.cpu_ms)
    _row("read bytes only", read, None)
    for name, figure in decoders.items():
        note = "<- floor" if figure is floor else ""
        _row(f"bare scaled decoder: {name}", figure, floor, note)
    _row("plain full decode + resize (Pillow)", full, floor)

    def features() -> Figure:
        cpu, started = _cpu_seconds(), time.perf_counter()
        extract_features(paths, HASH_SIZE, runner=local_runner(args.workers))
        wall = time.perf_counter() - started
        return Figure(count / wall, 1000.0 * (_cpu_seconds() - cpu) / count)

    ours = _best(rounds, features)
    executor = choose_executor("auto", args.workers, count)
    _row(f"this version: features ({executor}, incl. start)", ours, floor)
    if executor == "process":
        wall_start, cpu_start = startup[auto_processes(args.workers)]
        steady = Figure(
            count / max(1e-9, count / ours.rate - wall_start),
            ours.cpu_ms - 1000.0 * cpu_start / count,
        )
        _row("this version: features, start-up taken out", steady, floor)
    else:
        steady = ours

    target = max(1, int(count * TARGET_FRACTION))
    list_file = workdir / f"{kind}-paths.txt"
    list_file.write_text("\n".join(paths), encoding="utf-8")
    python = sys.executable
    runs = [_child_run(python, list_file, target, args.workers, "", "ours") for _ in range(rounds)]
    end_to_end = _child_figure(runs, count)
    _row("this version: downsample end to end", end_to_end, floor, "(no cache)")

    cold = warm = None
    try:
        import smartdownsample.cache  # noqa: F401
    except ImportError:
        _row("this version: cache", None, None, "cache not available")
    else:
        colds: list[dict[str, Any]] = []
        warms: list[dict[str, Any]] = []
        for index in range(rounds):
            cache_file = workdir / f"{kind}-cache-{index}.sqlite"
            for into in (colds, warms):
                into.append(
                    _child_run(python, list_file, target, args.workers, str(cache_file), "ours")
                )
        cold, warm = _child_figure(colds, count), _child_figure(warms, count)
        cached = warms[0].get("cached", 0)
        _row("this version: downsample, cache cold", cold, floor)
        _row("this version: downsample, cache warm", warm, floor, f"({cached:,} from cache)")

    reference = Path(args.reference)
    ref = None
    if reference.exists():
        ref_runs = [
            _child_run(str(reference), list_file, target, args.workers, "", "reference")
            for _ in range(args.reference_repeat)
        ]
        ref = _child_figure(ref_runs, count)
        _row(f"1.8.5 release: sample_diverse, n_workers={args.workers}", ref, floor)
    else:
        _row("1.8.5 release", None, None, f"({reference} not found)")

    print(
        f"  features vs floor: {ours.cpu_ms / floor.cpu_ms:.2f}x CPU per image "
        f"({steady.cpu_ms / floor.cpu_ms:.2f}x without worker start-up), "
        f"{floor.rate / ours.rate:.2f}x wall ({floor.rate / steady.rate:.2f}x without); "
        f"target <= {TARGET_RATIO}x"
    )
    line = (
        f"  end to end vs plain full decode: {full.cpu_ms / end_to_end.cpu_ms:.1f}x less CPU, "
        f"{end_to_end.rate / full.rate:.1f}x the images/s"
    )
    if ref is not None:
        line += (
            f"; vs 1.8.5: {ref.cpu_ms / end_to_end.cpu_ms:.1f}x less CPU, "
            f"{end_to_end.rate / ref.rate:.1f}x the images/s"
        )
    print(line)
    if cold is not None and warm is not None:
        print(
            f"  warm cache vs cold: {warm.rate / cold.rate:.1f}x faster, "
            f"{cold.cpu_ms / warm.cpu_ms:.1f}x less CPU (target >= {WARM_CACHE_TARGET:g}x)"
        )
    best = min(runs, key=lambda run: run["seconds"])
    print(
        f"  peak memory (end to end, no cache): main process {_mib(best['rss_self'])}, "
        f"largest worker {_worker_peak(best['rss_children'])}"
    )
    split = ", ".join(f"{name} {seconds:.3f} s" for name, seconds in best["timings"].items())
    print(f"  stages (end to end, no cache): {split}")


def bench_executors(paths: list[str], kind: str, rounds: int) -> None:
    """Features-only images/s and CPU per image of each executor, start-up included."""
    print(f"\n-- executors on {kind} ({len(paths):,} files), features only, start-up included --")
    todo = np.arange(len(paths), dtype=np.int64)
    kinds: list[tuple[ExecutorKind, int]] = [
        ("serial", 1),
        ("thread", 2),
        ("thread", 4),
        ("process", 2),
        ("process", 4),
    ]
    for executor, workers in kinds:

        def once(executor: ExecutorKind = executor, workers: int = workers) -> Figure:
            cpu, started = _cpu_seconds(), time.perf_counter()
            run_batches(
                paths,
                todo,
                HASH_SIZE,
                workers=workers,
                executor=executor,
                on_batch=lambda indices, result: None,
            )
            wall = time.perf_counter() - started
            return Figure(len(paths) / wall, 1000.0 * (_cpu_seconds() - cpu) / len(paths))

        figure = _best(rounds, once)
        print(
            f"  {executor:>8} x{workers}: {figure.rate:>10,.0f} images/s "
            f"{figure.cpu_ms:8.3f} CPU ms/img"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--crops", type=int, default=5000, help="number of crops (0 to skip)")
    parser.add_argument("--frames", type=int, default=800, help="number of frames (0 to skip)")
    parser.add_argument("--workers", type=int, default=4, help="workers for every contender")
    parser.add_argument("--data", type=Path, help="folder for the data sets (kept and reused)")
    parser.add_argument(
        "--quality",
        type=int,
        default=95,
        help="JPEG quality of the synthetic files; 95 gives the sizes of real camera-trap "
        "files (crops ~50 KiB, frames ~750 KiB), make_dataset's default 85 smaller ones",
    )
    parser.add_argument("--repeat", type=int, default=3, help="rounds per figure (best kept)")
    parser.add_argument("--reference", default=REFERENCE_PYTHON, help="1.8.5 interpreter")
    parser.add_argument("--reference-repeat", type=int, default=1)
    parser.add_argument("--no-executors", action="store_true", help="skip the executor table")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="smartdownsample-bench-"))
    data_root = args.data or workdir / "data"
    data_root.mkdir(parents=True, exist_ok=True)
    try:
        print(
            f"smartdownsample {__version__}, JPEG decoder {jpeg_decoder()}, Python "
            f"{sys.version.split()[0]}, {os.cpu_count()} cores; best of {args.repeat} rounds; "
            "'vs floor' = CPU per image / the floor's, then wall time / the floor's"
        )
        startup = {
            workers: _startup(workers, args.repeat)
            for workers in sorted({2, 4, auto_processes(args.workers)})
        }
        for workers, (wall, cpu) in startup.items():
            print(
                f"this version's worker start-up ({workers} processes, until each answered): "
                f"{wall:.2f} s wall, {cpu:.2f} s CPU"
            )
        kinds = [("crops", args.crops), ("frames", args.frames)]
        datasets = {kind: _dataset(data_root, kind, n, args.quality) for kind, n in kinds if n}
        for kind, paths in datasets.items():
            bench_kind(kind, paths, args, workdir, startup)
        if not args.no_executors:
            print()
            for method in ("forkserver", "spawn"):
                for workers in (2, 4):
                    seconds = _mp_startup_seconds(method, workers)
                    if seconds is not None:
                        print(
                            f"multiprocessing {method} pool start-up ({workers} workers, "
                            f"importing extract): {seconds:.2f} s"
                        )
            for kind, paths in datasets.items():
                bench_executors(paths, kind, args.repeat)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"\nthis benchmark process peak memory: {_mib(peak)}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
