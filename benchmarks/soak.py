"""Soak run: 100,000 images, 1% of them hostile, through the command line with
the feature cache on, interrupted with Ctrl-C and resumed once (issue 6).

The data set is built cheaply: ``--distinct`` synthetic camera-trap crops
(``make_dataset``) are hard-linked under distinct names into as many "cards"
as needed for the good files, and the hostile files are written by
``tests/hostile.py`` (``write_hostile_files``: zero-byte and truncated JPEGs,
random bytes, text, GIF/HEIC/MP4/EPS named .jpg, PNGs in odd modes, CMYK and
YCCK JPEGs, decompression bombs, 1 x 1 images, EXIF orientations, a broken
symbolic link, odd names...) in as many sets as needed, or by a small
built-in writer when that module cannot be imported. Each hostile file has a
known outcome: it must be read, must be reported as unreadable, or either
(a JPEG that only lacks its end marker).

Then three runs of ``python -m smartdownsample select ROOT --fraction F
--skip-unreadable``:

a. the **reference**: uninterrupted, ``--no-cache``;
b. the **interrupted** run: ``--cache C``; SIGINT is sent to its process
   group (as a terminal's Ctrl-C is) after ``--interrupt-at`` (40%) of the
   reference's time. It must exit with 130, within a few seconds, leaving
   no output file and a cache that passes SQLite's integrity check;
c. the **resumed** run: the same command again. It must finish, read the
   features computed by (b) from the cache, report as unreadable exactly
   the hostile files that must fail (plus, possibly, the "either" ones) and
   no good file, and select exactly what (a) selected, byte for byte.

A crash is a run that ended with a traceback, by a signal, or with an exit
code other than the one expected (0, or 130 for the interrupted run). The
script prints files tried, failures reported, crashes (must be 0) and
whether the final selection equals the uninterrupted run's, with timings;
it exits 1 if any check failed. Nothing is written into the repository.

Usage::

    python benchmarks/soak.py                       # 100,000 images, 1% hostile
    python benchmarks/soak.py --n 20000 --workers 2
    python benchmarks/soak.py --keep /tmp/soak      # keep (and reuse) data set and outputs
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from smartdownsample import __version__
from smartdownsample.cache import cache_info
from smartdownsample.listing import list_sources
from smartdownsample.synthetic import make_dataset

TESTS_DIR = Path(__file__).resolve().parent.parent / "tests"

DEFAULT_N = 100_000
DEFAULT_HOSTILE_FRACTION = 0.01
DEFAULT_DISTINCT = 2_000
"""Distinct synthetic crops (about 6 s to draw on 2 cores); the good files are
copies of them (links to one file would count once), ~30 KB a file on disk."""

SELECT_FRACTION = 0.1
"""Share of the images each run keeps."""

INTERRUPT_AT = 0.4
"""The interrupted run gets SIGINT after this share of the reference run's time."""

STOP_SECONDS = 10.0
"""Longest accepted time from SIGINT to the end of the interrupted run."""

RUN_TIMEOUT = 3600.0
"""A run taking longer than this has hung (it is then killed and counted as a crash)."""

MARKER = "soak-dataset.json"
"""File describing a finished data set (so that ``--keep`` can reuse it)."""

INTERRUPT_MESSAGE = "smartdownsample: error: interrupted; no output files were written"


# ---------------------------------------------------------------- data set


def _fallback_hostile(folder: Path, seed: int) -> dict[str, tuple[str, str]]:
    """A small set of hostile files when tests/hostile.py is unavailable.

    Returns name -> (path, outcome) with outcome "ok", "fail" or "either".
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 256, size=(96, 128, 3), dtype=np.uint8)

    def encoded(image: Image.Image, kind: str, **options: Any) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, kind, **options)
        return buffer.getvalue()

    good = encoded(Image.fromarray(pixels), "JPEG", quality=90)
    contents: dict[str, tuple[bytes, str]] = {
        "zero_bytes.jpg": (b"", "fail"),
        "truncated_header.jpg": (good[:20], "fail"),
        "truncated_mid_scan.jpg": (good[: len(good) // 2], "fail"),
        "random_bytes.jpg": (rng.bytes(3000), "fail"),
        "text_named_jpg.jpg": (b"Camera: trail cam 3\nBattery: 40%\n", "fail"),
        "png_1bit.png": (encoded(Image.fromarray(pixels).convert("1"), "PNG"), "ok"),
        "png_palette.png": (encoded(Image.fromarray(pixels).convert("P"), "PNG"), "ok"),
        "png_la.png": (encoded(Image.fromarray(pixels).convert("LA"), "PNG"), "ok"),
        "tiny_1x1.jpg": (encoded(Image.new("RGB", (1, 1), (200, 30, 30)), "JPEG"), "ok"),
        "progressive.jpg": (encoded(Image.fromarray(pixels), "JPEG", progressive=True), "ok"),
    }
    written: dict[str, tuple[str, str]] = {}
    for name, (data, outcome) in contents.items():
        path = folder / name
        path.write_bytes(data)
        written[name] = (str(path), outcome)
    link = folder / "broken_symlink.jpg"
    link.symlink_to(folder / "deleted.jpg")
    written["broken_symlink"] = (str(link), "fail")
    return written


def _hostile_writer() -> tuple[str, Callable[[Path, int], dict[str, tuple[str, str]]]]:
    """The hostile-file writer of tests/hostile.py if importable, else the fallback."""
    sys.path.insert(0, str(TESTS_DIR))
    try:
        module: Any = importlib.import_module("hostile")
    except ImportError as exc:
        return f"built-in ({exc})", _fallback_hostile
    finally:
        sys.path.remove(str(TESTS_DIR))

    def write(folder: Path, seed: int) -> dict[str, tuple[str, str]]:
        written: dict[str, str] = module.write_hostile_files(folder, rng_seed=seed)
        kinds = module.HOSTILE_KINDS
        return {name: (path, str(kinds[name].outcome)) for name, path in written.items()}

    return "tests/hostile.py", write


@dataclass
class Dataset:
    root: Path
    n_files: int
    n_good: int
    n_distinct: int
    hostile: dict[str, tuple[str, str]]
    """Path -> (kind, outcome) of every listed hostile file."""
    writer: str
    build_seconds: float = 0.0
    reused: bool = False

    def expected(self, outcome: str) -> set[str]:
        return {path for path, (_, out) in self.hostile.items() if out == outcome}


def build_dataset(
    folder: Path, n: int, hostile_fraction: float, distinct: int, log: Callable[[str], None]
) -> Dataset:
    """Make (or reuse) the data set in ``folder``."""
    marker = folder / MARKER
    wanted = {"n": n, "hostile_fraction": hostile_fraction, "distinct": distinct}
    if marker.exists():
        data = json.loads(marker.read_text(encoding="utf-8"))
        if data["parameters"] == wanted:
            return Dataset(
                folder / "images",
                data["n_files"],
                data["n_good"],
                data["n_distinct"],
                {path: (kind, out) for path, kind, out in data["hostile"]},
                data["writer"],
                reused=True,
            )
        raise SystemExit(
            f"{folder} holds a soak data set made with {data['parameters']}; give another --keep"
        )
    if folder.exists() and any(folder.iterdir()):
        raise SystemExit(f"{folder} is not empty and holds no soak data set; give a new folder")
    started = time.perf_counter()
    n_hostile = round(n * hostile_fraction)
    n_good = n - n_hostile
    distinct = min(distinct, n_good)
    log(f"drawing {distinct:,} distinct synthetic crops ...")
    base = folder / "distinct"
    made = make_dataset(base, distinct, kind="crops", seed=11, n_workers=os.cpu_count() or 1)
    root = folder / "images"
    log(f"copying {n_good:,} good files (copies: links to one file count once) ...")
    relatives = [os.path.relpath(path, base) for path in made.paths]
    count = 0
    card = 0
    while count < n_good:
        for relative in relatives[: n_good - count]:
            target = root / f"card{card:03d}" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(base / relative, target)
        count += min(len(relatives), n_good - count)
        card += 1
    writer_name, writer = _hostile_writer()
    log(f"writing {n_hostile:,} hostile files ({writer_name}) ...")
    hostile: dict[str, tuple[str, str]] = {}
    seed = 0
    while len(hostile) < n_hostile:
        written = writer(root / "hostile" / f"set{seed:03d}", seed)
        listed = set(list_sources([str(root / "hostile" / f"set{seed:03d}")]).paths)
        for kind, (path, outcome) in written.items():
            if path in listed:
                hostile[path] = (kind, outcome)
        seed += 1
    for path in sorted(hostile, reverse=True)[: len(hostile) - n_hostile]:
        os.unlink(path)  # the surplus of the last set
        del hostile[path]
    n_files = len(list_sources([str(root)]).paths)
    marker.write_text(
        json.dumps(
            {
                "parameters": wanted,
                "n_files": n_files,
                "n_good": n_good,
                "n_distinct": distinct,
                "writer": writer_name,
                "hostile": [[path, kind, out] for path, (kind, out) in sorted(hostile.items())],
            }
        ),
        encoding="utf-8",
    )
    return Dataset(
        root,
        n_files,
        n_good,
        distinct,
        hostile,
        writer_name,
        build_seconds=time.perf_counter() - started,
    )


# ---------------------------------------------------------------- runs


@dataclass
class Run:
    name: str
    returncode: int | None = None
    seconds: float = 0.0
    stop_seconds: float | None = None
    sent_at: float | None = None
    stderr: str = ""
    report: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr


def _command(root: Path, workers: int, cache: Path | None, out: Path, name: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "smartdownsample",
        "select",
        str(root),
        "--fraction",
        str(SELECT_FRACTION),
        "--skip-unreadable",
        "--workers",
        str(workers),
        *(["--no-cache"] if cache is None else ["--cache", str(cache)]),
        "--out",
        str(out / f"{name}.txt"),
        "--report",
        str(out / f"{name}.json"),
        "--no-progress",
        "--quiet",
    ]


def run(name: str, command: list[str], interrupt_after: float | None = None) -> Run:
    """Run the command; with ``interrupt_after``, SIGINT its process group then."""
    result = Run(name)
    with tempfile.TemporaryFile() as errors:
        started = time.monotonic()
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=errors, start_new_session=True
        )
        try:
            if interrupt_after is not None:
                try:
                    process.wait(interrupt_after)
                except subprocess.TimeoutExpired:
                    sent = time.monotonic()
                    result.sent_at = sent - started
                    os.killpg(process.pid, signal.SIGINT)
                    process.wait(RUN_TIMEOUT)
                    result.stop_seconds = time.monotonic() - sent
            process.wait(RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            result.problems.append(f"hung: killed after {RUN_TIMEOUT:.0f} s")
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        result.seconds = time.monotonic() - started
        result.returncode = process.returncode
        errors.seek(0)
        result.stderr = errors.read().decode("utf-8", "replace")
    return result


def _read_report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _check_cache(path: Path) -> tuple[bool, int]:
    """(integrity check passed, entries) of the feature cache."""
    if not path.exists():
        return True, 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        ok = conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    return ok, int(cache_info(path)["entries"])


def _check_failures(run_: Run, dataset: Dataset) -> None:
    reported = {item["path"] for item in run_.report.get("failures", [])}
    must_fail = dataset.expected("fail")
    allowed = must_fail | dataset.expected("either")
    missed = must_fail - reported
    wrong = reported - allowed
    if missed:
        run_.problems.append(f"{len(missed)} unreadable files not reported, e.g. {min(missed)}")
    if wrong:
        run_.problems.append(f"{len(wrong)} readable files reported as failed, e.g. {min(wrong)}")


# ---------------------------------------------------------------- main


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="files in the data set")
    parser.add_argument(
        "--hostile-fraction",
        type=float,
        default=DEFAULT_HOSTILE_FRACTION,
        help="share of hostile files (default 0.01)",
    )
    parser.add_argument(
        "--distinct",
        type=int,
        default=DEFAULT_DISTINCT,
        help="distinct synthetic crops the good files link to",
    )
    parser.add_argument("--workers", type=int, default=4, help="--workers of the runs")
    parser.add_argument(
        "--interrupt-at",
        type=float,
        default=INTERRUPT_AT,
        help="interrupt after this share of the reference run's time (default 0.4)",
    )
    parser.add_argument(
        "--keep", type=Path, help="build the data set and outputs here, keep (and reuse) them"
    )
    args = parser.parse_args(argv)
    if args.n < 100 or not 0 <= args.hostile_fraction < 0.5:
        parser.error("--n must be at least 100 and --hostile-fraction below 0.5")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.perf_counter()
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background by a shell without job control (``cmd &``, nohup):
        # SIGINT is ignored and the runs would inherit that, so Ctrl-C could not be tested.
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {message}", file=sys.stderr, flush=True)

    work = args.keep or Path(tempfile.mkdtemp(prefix="smartdownsample-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return _soak(args, work, log)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def _soak(args: argparse.Namespace, work: Path, log: Callable[[str], None]) -> int:
    dataset = build_dataset(work / "data", args.n, args.hostile_fraction, args.distinct, log)
    out = work / "runs"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    cache = work / "cache" / "features.sqlite"
    if cache.parent.exists():
        shutil.rmtree(cache.parent)
    cache.parent.mkdir()

    log("run a: reference, no cache ...")
    ref = run("reference", _command(dataset.root, args.workers, None, out, "ref"))
    if ref.returncode == 0:
        ref.report = _read_report(out / "ref.json")
        _check_failures(ref, dataset)
    delay = args.interrupt_at * ref.seconds
    log(f"run b: with the cache, Ctrl-C after {delay:.1f} s ...")
    command = _command(dataset.root, args.workers, cache, out, "run")
    cut = run("interrupted", command, interrupt_after=delay)
    left = sorted(os.listdir(out))
    if cut.returncode == 130:
        if left != ["ref.json", "ref.txt"]:
            cut.problems.append(f"left in the output folder: {left}")
        if cut.stderr.strip().splitlines() != [INTERRUPT_MESSAGE]:
            cut.problems.append(f"stderr was not the one interrupt line: {cut.stderr[-300:]!r}")
        if cut.stop_seconds is not None and cut.stop_seconds > STOP_SECONDS:
            cut.problems.append(f"took {cut.stop_seconds:.1f} s to stop")
    elif cut.returncode == 0:
        cut.problems.append(
            f"exit 0: finished {cut.stop_seconds or 0.0:.1f} s after SIGINT instead of stopping"
            if cut.sent_at is not None
            else "finished before the interrupt (use a larger --interrupt-at?)"
        )
        for name in ("run.txt", "run.json"):  # so that the resumed run can still be checked
            (out / name).unlink(missing_ok=True)
    intact, entries = _check_cache(cache)
    if not intact:
        cut.problems.append("the cache failed SQLite's integrity check")
    log(f"run c: resumed ({entries:,} features in the cache) ...")
    resumed = run("resumed", command)
    if resumed.returncode == 0:
        resumed.report = _read_report(out / "run.json")
        _check_failures(resumed, dataset)
        if resumed.report["n_cached"] != entries:
            resumed.problems.append(
                f"read {resumed.report['n_cached']:,} features from the cache, "
                f"which held {entries:,}"
            )
    final_intact, final_entries = _check_cache(cache)
    if not final_intact:
        resumed.problems.append("the cache failed SQLite's integrity check")

    # 0 is accepted from the interrupted run too: finishing early is a problem, not a crash.
    expected_codes = {"reference": {0}, "interrupted": {130, 0}, "resumed": {0}}
    crashes = [
        r for r in (ref, cut, resumed) if r.traceback or r.returncode not in expected_codes[r.name]
    ]
    same = (
        ref.returncode == 0
        and resumed.returncode == 0
        and (out / "ref.txt").read_bytes() == (out / "run.txt").read_bytes()
    )
    _print_report(args, dataset, (ref, cut, resumed), entries, final_entries, crashes, same)
    problems = [p for r in (ref, cut, resumed) for p in r.problems]
    return 0 if not crashes and same and not problems else 1


def _print_report(
    args: argparse.Namespace,
    dataset: Dataset,
    runs: tuple[Run, Run, Run],
    entries: int,
    final_entries: int,
    crashes: list[Run],
    same: bool,
) -> None:
    cut, resumed = runs[1], runs[2]
    kinds = Counter(out for _, out in dataset.hostile.values())
    n_kinds = len({kind for kind, _ in dataset.hostile.values()})
    print(
        f"smartdownsample {__version__} soak run: Python {platform.python_version()}, "
        f"{os.cpu_count()} cores, --workers {args.workers}"
    )
    built = "reused" if dataset.reused else f"built in {dataset.build_seconds:.1f} s"
    print(
        f"data set: {dataset.n_files:,} files listed = {dataset.n_good:,} good (copies of "
        f"{dataset.n_distinct:,} distinct crops) + {len(dataset.hostile):,} hostile "
        f"({n_kinds} kinds, {dataset.writer}): {kinds['fail']:,} must fail, {kinds['ok']:,} "
        f"must be read, {kinds['either']:,} either; {built}"
    )
    header = f"{'run':<34} {'exit':>5} {'seconds':>8} {'tried':>9} {'failed':>7} {'cached':>8}"
    print(header)
    print("-" * len(header))
    for r in runs:
        label = r.name
        if r.sent_at is not None:
            label += f" (SIGINT at {r.sent_at:.1f} s)"
        report = r.report
        print(
            f"{label:<34} {r.returncode!s:>5} {r.seconds:>8.1f} "
            f"{report.get('n_input', '-'):>9} {report.get('n_failed', '-'):>7} "
            f"{report.get('n_cached', '-'):>8}"
        )
    print("-" * len(header))
    if cut.stop_seconds is not None:
        print(f"interrupted run stopped {cut.stop_seconds:.2f} s after SIGINT")
    print(
        f"cache after the interrupt: {entries:,} entries; after the resumed run: {final_entries:,}"
    )
    tried = resumed.report.get("n_input", "-")
    print(f"files tried: {tried:,}" if isinstance(tried, int) else f"files tried: {tried}")
    failed = resumed.report.get("n_failed")
    if failed is not None:
        reported = {item["path"] for item in resumed.report.get("failures", [])}
        print(
            f"failures reported: {failed:,} = {len(reported & dataset.expected('fail')):,} of the "
            f"{kinds['fail']:,} that must fail + {len(reported & dataset.expected('either')):,} "
            f"of the {kinds['either']:,} 'either' + "
            f"{len(reported - dataset.expected('fail') - dataset.expected('either')):,} others"
        )
    print(
        f"crashes: {len(crashes)}" + "".join(f"  [{r.name}: exit {r.returncode}]" for r in crashes)
    )
    print(f"final selection equals the uninterrupted run's: {'yes' if same else 'NO'}")
    for r in runs:
        for problem in r.problems:
            print(f"PROBLEM ({r.name}): {problem}")
        if r.traceback or r.problems or r.returncode not in (0, 130):
            print(f"--- stderr of {r.name} (end) ---\n{r.stderr[-2000:]}")


if __name__ == "__main__":
    sys.exit(main())
