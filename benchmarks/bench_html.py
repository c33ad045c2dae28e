"""The HTML report of a large selection: its size, the time to write it, and its share of the run.

The files: ``--unique`` synthetic camera-trap crops (``make_dataset``), copied
under new names until there are ``--n`` files (copies, not links: one file
reached by two paths counts once). In one run the script prints, side by side:

* **run**: ``downsample(paths, n // 10)`` without cache, wall time and images/s;
* **html**: ``SelectionResult.save_html`` of that result: wall time, file size,
  thumbnails embedded, and the time as a share of the run (goal: under 10%);
* **open**: with ``--browser``, the time headless Chromium takes to load the
  page (goal: under 2 s), via Playwright with the system Chromium.

Usage::

    python benchmarks/bench_html.py                       # 100,000 images (a few minutes)
    python benchmarks/bench_html.py --n 20000 --browser   # quicker, and time the page load
    python benchmarks/bench_html.py --data /tmp/html      # keep the files for re-runs
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from smartdownsample import downsample
from smartdownsample.synthetic import GROUND_TRUTH_NAME, load_dataset, make_dataset

GOAL_SHARE = 0.10
"""Issue 15: writing the report costs under 10% of the run."""

GOAL_MB = 20.0
"""Issue 15: the page for 100,000 images stays under 20 MB."""

GOAL_OPEN_SECONDS = 2.0
"""Issue 15: the page opens in under 2 s."""


def _files(folder: Path, n: int, unique: int) -> list[str]:
    """``n`` distinct image files: ``unique`` made ones and copies of them."""
    made = folder / "made"
    if not (made / GROUND_TRUTH_NAME).exists():
        make_dataset(made, unique, seed=11)
    sources = load_dataset(made).paths
    copies = folder / "copies"
    paths = list(sources)
    for i in range(n - len(sources)):
        target = copies / f"cam{i // 1000:03d}" / f"IMG_{i:07d}.JPG"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sources[i % len(sources)], target)
        paths.append(str(target))
    return paths[:n]


def _open_seconds(page_path: Path) -> float | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        return None
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        started = time.perf_counter()
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        seconds = time.perf_counter() - started
        browser.close()
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="images (default 100,000)")
    parser.add_argument("--unique", type=int, default=4000, help="images drawn (default 4,000)")
    parser.add_argument("--data", type=Path, help="keep the images here for re-runs")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--browser", action="store_true", help="also time the page load")
    args = parser.parse_args(argv)
    folder = args.data or Path(tempfile.mkdtemp(prefix="bench-html-"))
    print(f"preparing {args.n:,} images in {folder} ...", file=sys.stderr)
    paths = _files(folder, args.n, min(args.unique, args.n))

    started = time.perf_counter()
    result = downsample(paths, args.n // 10, n_workers=args.workers, show_progress=False)
    run_seconds = time.perf_counter() - started

    page = folder / "report.html"
    started = time.perf_counter()
    result.save_html(page)
    html_seconds = time.perf_counter() - started
    size_mb = os.path.getsize(page) / 1e6
    text = page.read_text(encoding="utf-8")
    thumbnails = text.count("<img ")
    share = html_seconds / run_seconds

    print(f"images {args.n:,}, kept {result.n_selected:,}, buckets {len(result.buckets)}")
    print(f"{'':<6} {'seconds':>9} {'images/s':>10} {'MB':>7} {'thumbnails':>11} {'share':>7}")
    print(f"{'run':<6} {run_seconds:>9.2f} {args.n / run_seconds:>10,.0f}")
    print(
        f"{'html':<6} {html_seconds:>9.2f} {'':>10} {size_mb:>7.2f} {thumbnails:>11,} {share:>7.1%}"
    )
    print(
        f"goals: share {share:.1%} < {GOAL_SHARE:.0%}: {'yes' if share < GOAL_SHARE else 'NO'}; "
        f"size {size_mb:.1f} MB < {GOAL_MB:.0f} MB: {'yes' if size_mb < GOAL_MB else 'NO'}"
    )
    if args.browser:
        opened = _open_seconds(page)
        if opened is None:
            print("open: not measured (no playwright or no Chromium)")
        else:
            verdict = "yes" if opened < GOAL_OPEN_SECONDS else "NO"
            print(f"open: {opened:.2f} s in headless Chromium < {GOAL_OPEN_SECONDS:g} s: {verdict}")
    if args.data is None:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
