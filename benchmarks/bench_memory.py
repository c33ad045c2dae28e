"""Peak memory of ``downsample`` on 1,000,000 images, next to the list of paths alone.

The files: ``--unique`` real synthetic crops (``make_dataset``), re-saved at
96 px and copied under many different folder and file names until there are
``--n`` distinct files (copies, not links: one file reached by two paths
counts once). Every file is decoded.

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

from PIL import Image

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
from smartdownsample.features import empty_features
from smartdownsample.pipeline import prepare_paths
paths = open(sys.argv[1], encoding="utf-8").read().split("\n")
out = {}
tracemalloc.start()
prepared = prepare_paths(paths)
out["one path per file, absolute paths, natural order (kept)"] = tracemalloc.get_traced_memory()[0]
out["one path per file, absolute paths, natural order (peak)"] = tracemalloc.get_traced_memory()[1]
tracemalloc.reset_peak()
base = tracemalloc.get_traced_memory()[0]
sorted_abs = prepared.sorted_absolute
current, peak = tracemalloc.get_traced_memory()
out["sorted list for extraction (kept)"] = current - base
out["sorted list for extraction (peak)"] = peak - base
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


SMALL_SIDE = 96
"""Side of the small copies: memory per image does not depend on the file size, and
1,000,000 files of ~3 KB fit in ~4 GB of disk."""


def _small_sources(root: Path, unique: int) -> list[Path]:
    """``unique`` synthetic crops, re-saved small (made once, kept under ``root``)."""
    source_root = root / f"unique-{unique}"
    if (source_root / GROUND_TRUTH_NAME).exists():
        sources = load_dataset(source_root).paths
    else:
        print(f"making {unique} synthetic crops in {source_root} ...", flush=True)
        sources = make_dataset(
            source_root, unique, kind="crops", seed=0, n_workers=os.cpu_count() or 1
        ).paths
    small = root / f"small-{unique}"
    small.mkdir(exist_ok=True)
    out = []
    for index, path in enumerate(sources):
        target = small / f"{index}.jpg"
        if not target.exists():
            with Image.open(path) as image:
                image.convert("RGB").resize((SMALL_SIDE, SMALL_SIDE)).save(target, quality=85)
        out.append(target)
    return out


def make_files(root: Path, n: int, unique: int) -> Path:
    """``n`` distinct files (copies of ``unique`` small crops); return the path list file.

    Copies, not links: one file reached by two paths counts once, so links
    would measure one image, not ``n``.
    """
    list_file = root / f"paths-{n}.txt"
    if list_file.exists():
        return list_file
    sources = _small_sources(root, unique)
    files = root / f"files-{n}"
    print(f"copying {n:,} files under {files} ...", flush=True)
    started = time.perf_counter()
    paths: list[str] = []
    for index in range(n):
        folder = (
            files
            / f"site{index // (FILES_PER_FOLDER * 10):04d}"
            / (f"cam{index // FILES_PER_FOLDER % 10}")
        )
        if index % FILES_PER_FOLDER == 0:
            folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"IMG_{index % FILES_PER_FOLDER + 1}.JPG"
        if not target.exists():
            shutil.copyfile(sources[index % len(sources)], target)
        paths.append(str(target))
    temporary = list_file.with_suffix(".tmp")
    temporary.write_text("\n".join(paths), encoding="utf-8")
    os.replace(temporary, list_file)
    print(f"  {n:,} files in {time.perf_counter() - started:.0f} s", flush=True)
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
        list_file = make_files(root, args.n, args.unique)
        n = args.n
        print(
            f"\n== {n:,} paths (copies of {args.unique:,} drawn crops), n_workers={args.workers} =="
        )
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
