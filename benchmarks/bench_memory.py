"""Peak memory of ``downsample`` on 1,000,000 images, next to the list of paths alone.

The files: ``--unique`` real synthetic crops (``make_dataset``), each hard
linked under many different folder and file names until there are ``--n``
paths (symbolic links where the file system has no hard links). Duplicates
are detected by path, not by inode, so every link counts as a distinct image
and is decoded (the OS page cache keeps the few unique files in memory).

In one run, each in a fresh Python process that imports smartdownsample
first, the script prints:

* **baseline**: peak RSS of a process that only reads the list of paths into
  a Python list (what any caller holds anyway), and the traced size of that
  list;
* **downsample**: peak RSS of a process that reads the same list and runs
  ``downsample(paths, n // 10)``, the largest worker's peak RSS, and the peak
  of Python allocations made by the run itself (tracemalloc, started after
  the list was read; without ``--no-tracemalloc``, which makes the run
  slower);
* **beyond the list of paths** = downsample peak RSS - baseline peak RSS,
  against the 1 GiB target; and per image in bytes;
* a breakdown of the main process's own per-image structures, measured on the
  same list with tracemalloc: the distinct and absolute paths, the natural
  order, and the feature rows.

Usage::

    python benchmarks/bench_memory.py                      # 1,000,000 paths, a few minutes
    python benchmarks/bench_memory.py --n 100000           # quicker
    python benchmarks/bench_memory.py --data /tmp/mem      # keep the links for re-runs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _procmem import with_sampler  # benchmarks/ is on sys.path when run as a script
from smartdownsample.synthetic import GROUND_TRUTH_NAME, load_dataset, make_dataset

GIB = 1024**3
TARGET_BYTES = GIB
"""Issue 4: 1,000,000 images in under 1 GiB of peak memory beyond the list of paths."""

FILES_PER_FOLDER = 1000
"""Links per folder: camera-trap deployments hold hundreds to thousands of images."""

TARGET_FRACTION = 0.1

_BASELINE = r"""
import json, resource, sys, tracemalloc
import smartdownsample, smartdownsample.api  # imports count in the baseline too
tracemalloc.start()
paths = open(sys.argv[1], encoding="utf-8").read().split("\n")
traced = tracemalloc.get_traced_memory()[0]
tracemalloc.stop()
print(json.dumps({"rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "traced": traced, "n": len(paths)}))
"""

_RUN = r"""
import json, resource, sys, time, tracemalloc
import smartdownsample, smartdownsample.api
from smartdownsample import downsample
@WORKER_PEAK_SAMPLER@
paths = open(sys.argv[1], encoding="utf-8").read().split("\n")
workers, trace = int(sys.argv[2]), sys.argv[3] == "1"
if trace:
    tracemalloc.start()
started = time.perf_counter()
result = downsample(paths, len(paths) // 10, n_workers=workers, show_progress=False,
                    image_loading_errors="skip")
seconds = time.perf_counter() - started
peak = tracemalloc.get_traced_memory()[1] if trace else None
print(json.dumps({
    "seconds": seconds,
    "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "rss_children": worker_peak[0] or None,
    "traced_peak": peak,
    "selected": result.n_selected,
    "failures": len(result.failures),
    "timings": result.timings,
}))
"""

_BREAKDOWN = r"""
import json, sys, tracemalloc
import numpy as np
from smartdownsample import api
from smartdownsample.features import empty_features
paths = open(sys.argv[1], encoding="utf-8").read().split("\n")
out = {}
tracemalloc.start()
distinct, indices, absolute = api._distinct(paths)
out["distinct + absolute paths (kept)"] = tracemalloc.get_traced_memory()[0]
out["distinct + absolute paths (peak)"] = tracemalloc.get_traced_memory()[1]
tracemalloc.reset_peak()
base = tracemalloc.get_traced_memory()[0]
order = api.natural_order(absolute)
sorted_abs = [absolute[i] for i in order]
current, peak = tracemalloc.get_traced_memory()
out["natural order + sorted list (kept)"] = current - base
out["natural order + sorted list (peak)"] = peak - base
base = current
rows = empty_features(len(paths))
out["one array of feature rows"] = tracemalloc.get_traced_memory()[0] - base
print(json.dumps(out))
"""


def _child(code: str, *args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{completed.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return report


def _rss_bytes(value: float) -> float:
    return value if sys.platform == "darwin" else value * 1024  # ru_maxrss: KiB on Linux


def _worker_peak(kib: float | None) -> str:
    """Largest worker VmHWM (sampled on Linux; the kernel's ru_maxrss of a child
    would count the parent's pages it shares between fork and exec)."""
    return "n/a (no worker process seen)" if kib is None else _mib(kib * 1024)


def _mib(value: float) -> str:
    return f"{value / 1024**2:,.0f} MiB"


def make_links(root: Path, n: int, unique: int) -> Path:
    """Write ``unique`` crops and link them to ``n`` paths; return the path list file."""
    list_file = root / f"paths-{n}.txt"
    if list_file.exists():
        return list_file
    source_root = root / f"unique-{unique}"
    if (source_root / GROUND_TRUTH_NAME).exists():
        sources = load_dataset(source_root).paths
    else:
        print(f"making {unique} synthetic crops in {source_root} ...", flush=True)
        sources = make_dataset(
            source_root, unique, kind="crops", seed=0, n_workers=os.cpu_count() or 1
        ).paths
    links = root / f"links-{n}"
    print(f"linking {n:,} paths under {links} ...", flush=True)
    started = time.perf_counter()
    paths: list[str] = []
    use_symlinks = False
    for index in range(n):
        folder = (
            links
            / f"site{index // (FILES_PER_FOLDER * 10):04d}"
            / (f"cam{index // FILES_PER_FOLDER % 10}")
        )
        if index % FILES_PER_FOLDER == 0:
            folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"IMG_{index % FILES_PER_FOLDER + 1}.JPG"
        source = sources[index % len(sources)]
        if not target.exists():
            if not use_symlinks:
                try:
                    os.link(source, target)
                except OSError:
                    use_symlinks = True
            if use_symlinks:
                os.symlink(source, target)
        paths.append(str(target))
    temporary = list_file.with_suffix(".tmp")
    temporary.write_text("\n".join(paths), encoding="utf-8")
    os.replace(temporary, list_file)
    kind = "symbolic" if use_symlinks else "hard"
    print(f"  {n:,} {kind} links in {time.perf_counter() - started:.0f} s", flush=True)
    return list_file


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="number of paths")
    parser.add_argument("--unique", type=int, default=2000, help="distinct real files")
    parser.add_argument("--workers", type=int, default=4, help="n_workers of downsample")
    parser.add_argument("--data", type=Path, help="folder for files and links (kept)")
    parser.add_argument(
        "--no-tracemalloc", action="store_true", help="skip tracing Python allocations"
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="smartdownsample-mem-"))
    root = args.data or workdir
    root.mkdir(parents=True, exist_ok=True)
    try:
        list_file = make_links(root, args.n, args.unique)
        n = args.n
        print(f"\n== {n:,} paths ({args.unique:,} distinct files), n_workers={args.workers} ==")
        base = _child(_BASELINE, str(list_file))
        base_rss = _rss_bytes(base["rss"])
        print(
            f"  baseline, list of paths alone:   peak RSS {_mib(base_rss)} "
            f"(the list itself: {_mib(base['traced'])}, {base['traced'] / n:.0f} B/path)"
        )
        run = _child(
            with_sampler(_RUN),
            str(list_file),
            str(args.workers),
            "0" if args.no_tracemalloc else "1",
        )
        run_rss = _rss_bytes(run["rss"])
        beyond = run_rss - base_rss
        print(
            f"  downsample({n:,}, {n // 10:,}):   peak RSS {_mib(run_rss)}, "
            f"largest worker {_worker_peak(run['rss_children'])}, "
            f"{run['seconds']:.0f} s ({n / run['seconds']:,.0f} images/s"
            f"{', traced' if not args.no_tracemalloc else ''}), "
            f"{run['selected']:,} selected, {run['failures']} failures"
        )
        if run["traced_peak"] is not None:
            print(
                f"  Python allocations of the run (tracemalloc peak): {_mib(run['traced_peak'])} "
                f"({run['traced_peak'] / n:.0f} B/image)"
            )
        verdict = "OK" if beyond < TARGET_BYTES else "OVER"
        print(
            f"  beyond the list of paths: {_mib(beyond)} ({beyond / n:.0f} B/image); "
            f"target < {_mib(TARGET_BYTES)} for 1,000,000 images: {verdict}"
        )
        split = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in run["timings"].items())
        print(f"  stages: {split}")
        print("  main process structures (tracemalloc, on the same list):")
        for name, size in _child(_BREAKDOWN, str(list_file)).items():
            print(f"    {name:<40} {_mib(size):>10}  {size / n:6.0f} B/image")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
