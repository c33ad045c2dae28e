"""``smartdownsample demo``: make a synthetic camera-trap data set and run select on it."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .._exceptions import InvalidArgumentError
from ..outputs import OutputTransaction, check_output_file
from ..report import count_noun
from ._errors import EXIT_OK
from ._options import add_run_options, add_verbosity, fraction, positive_int
from ._outputs import final_line
from ._report import demo_report, phase_timing
from ._run import DaskSession, select_images
from ._settings import cache_path, resolve_target

if TYPE_CHECKING:
    from ..synthetic import SyntheticDataset

__all__ = ["add_parser", "run"]

logger = logging.getLogger(__name__)

DEMO_DIR = "smartdownsample-demo"
"""Default folder of ``smartdownsample demo``."""

DEMO_IMAGES = 1600
"""Demo size: 1,600 synthetic crops are drawn in ~7 s and selected in ~2 s on 2 cores."""

DEMO_FRACTION = 0.1
"""The demo keeps 10% of its images."""

DEMO_KINDS = ("crops", "mixed")
"""Demo image kinds: ``mixed`` adds full 1920x1080 frames (about 8x slower to draw)."""

MAX_DEMO_WORKERS = 8
"""Processes drawing the demo images (capped by the number of cores)."""

DEMO_OUTPUTS = (
    "selected.txt",
    "manifest.csv",
    "report.json",
    "report.html",
    "distribution.png",
    "thumbnails.png",
    "detections.json",
)
"""Files the demo writes into DIR, in the order the report lists them."""

DESCRIPTIONS = {
    "report.html": "open it in a browser: every bucket, its kept and excluded images, bursts",
    "distribution.png": "kept vs excluded images per bucket (bar chart)",
    "thumbnails.png": "each bucket's kept images, then excluded; kept green, excluded red",
    "selected.txt": "the selected paths, one a line",
    "manifest.csv": "every image with its bucket, burst, features and kept or not",
    "report.json": "parameters, counts, bucket table and timing",
    "detections.json": "MegaDetector-style results for the images (one animal box each): "
    "try smartdownsample select DIR/detections.json --target 50 --out-json kept.json "
    "--crops-to kept-crops",
}
"""What each output file holds, in the order the demo describes them."""

EXAMPLES = """\
examples:
  smartdownsample demo
  smartdownsample demo /tmp/sds-demo --n-images 4000 --fraction 0.05

Makes a synthetic camera-trap data set in DIR/images (or reuses the one made
before), selects from it and writes DIR/report.html (a page to open in a browser),
DIR/selected.txt, DIR/manifest.csv, DIR/report.json, DIR/distribution.png,
DIR/thumbnails.png and DIR/detections.json, a MegaDetector-style results file
for the images (one animal box each, with a confidence and a species), to try
select and balance on detector output, e.g.
  smartdownsample select smartdownsample-demo/detections.json --target 50 \
      --out-json kept.json --crops-to kept-crops
(existing outputs are replaced only with --overwrite)."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` and its options to the command's subparsers."""
    parser = commands.add_parser(
        "demo",
        help="run select on a synthetic camera-trap data set (also writes detections.json)",
        description="Make a synthetic camera-trap data set and run select on it.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "dir",
        nargs="?",
        default=DEMO_DIR,
        metavar="DIR",
        help=f"folder for the data set and outputs (default ./{DEMO_DIR})",
    )
    parser.add_argument(
        "--n-images",
        type=positive_int,
        default=DEMO_IMAGES,
        metavar="N",
        help=f"images in the synthetic data set (default {DEMO_IMAGES:,})",
    )
    parser.add_argument(
        "--kind",
        choices=DEMO_KINDS,
        default="crops",
        help="animal crops (default) or a mix of crops and full frames (slower)",
    )
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument("--target", type=positive_int, metavar="N", help="keep exactly N images")
    amount.add_argument(
        "--fraction",
        type=fraction,
        metavar="F",
        help=f"keep this share of the images (default {DEMO_FRACTION})",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the outputs of an earlier demo run in DIR",
    )
    add_run_options(parser, backend=False)
    add_verbosity(parser)
    parser.set_defaults(handler=run, backend="local", scheduler=None)


def run(args: argparse.Namespace, started: float) -> int:
    """Make (or reuse) the data set, select from it, write the outputs and say where."""
    folder = args.dir
    files = {name: os.path.join(folder, name) for name in DEMO_OUTPUTS}
    _check_outputs(files, args.overwrite)
    dataset, reused = _dataset(args)
    paths = dataset.paths
    if reused and not args.quiet:
        print(
            f"reusing the demo data set in {os.path.join(args.dir, 'images')} "
            f"({count_noun(len(paths), 'image')})",
            file=sys.stderr,
        )
    made = time.perf_counter()
    target = resolve_target(len(paths), args.target, args.fraction or DEMO_FRACTION)
    args.cache_path = cache_path(args)
    with DaskSession(args.backend, args.scheduler) as dask:
        result = select_images(args, paths, target, dask)
    selected_at = time.perf_counter()
    with OutputTransaction(replace=args.overwrite) as tx:
        tx.write_lines(files["selected.txt"], result.selected_paths)
        tx.write_csv(files["manifest.csv"], result.manifest_rows())
        result.save_distribution(tx.temp_for(files["distribution.png"], suffix=".png"))
        result.save_thumbnails(tx.temp_for(files["thumbnails.png"], suffix=".png"))
        result.save_html(
            tx.temp_for(files["report.html"], suffix=".html"),
            run={"command": "smartdownsample demo", "data set": os.path.join(folder, "images")},
        )
        timing = phase_timing("dataset", started, made, selected_at)
        images = os.path.join(folder, "images")
        report = demo_report(args, images, reused, result, files, timing)
        tx.write_json(files["report.json"], report)
        _write_detections(tx, dataset, files["detections.json"])
        tx.commit()
    if not args.quiet:
        print(result.summary())
        print(final_line(result, time.perf_counter() - started))
        print(f"demo outputs in {folder}:")
        for name, text in DESCRIPTIONS.items():
            print(f"  {files[name]}  - {text.replace('DIR', folder)}")
        print(
            "next: smartdownsample select YOUR_FOLDER --target N --copy-to SMALLER_COPY "
            "(see smartdownsample select --help)"
        )
    return EXIT_OK


def _check_outputs(files: Mapping[str, str], overwrite: bool) -> None:
    """Refuse to replace an earlier demo's outputs without ``--overwrite``, as select does.

    Checked after :func:`check_output_file` has completed (or undone) what an
    interrupted run left in DIR: a file it had moved aside is back by then.
    """
    for path in files.values():
        check_output_file(path, option="demo output", image_paths=(), overwrite=True)
        if os.path.lexists(path) and not overwrite:
            raise InvalidArgumentError(
                f"demo output {path!r} already exists; choose another DIR, or pass "
                "--overwrite to replace the outputs in it"
            )


def _write_detections(tx: OutputTransaction, dataset: SyntheticDataset, path: str) -> None:
    """Stage DIR/detections.json: MegaDetector-style results for the demo's images."""
    from ..synthetic import megadetector_document

    document = megadetector_document(dataset, os.path.dirname(os.path.abspath(path)))
    if not any(image["detections"] for image in document["images"]):
        logger.warning(
            "%s: the demo data set was made before boxes were recorded, so its detections "
            "are empty; make a new one in another DIR",
            path,
        )
    tx.write_json(path, document)


def _dataset(args: argparse.Namespace) -> tuple[SyntheticDataset, bool]:
    """The demo images (made now, or reused) and whether they were reused."""
    from ..synthetic import GROUND_TRUTH_NAME, load_dataset, make_dataset

    folder = args.dir
    images = os.path.join(folder, "images")
    if os.path.exists(os.path.join(images, GROUND_TRUTH_NAME)):
        return load_dataset(images), True
    if os.path.exists(images):
        raise InvalidArgumentError(
            f"{images!r} exists but holds no finished demo data set; choose another DIR "
            "(the demo never deletes files)"
        )
    if os.path.isfile(folder):
        raise InvalidArgumentError(f"demo DIR {folder!r} is a file; give a folder path")
    os.makedirs(folder, exist_ok=True)
    partial = os.path.join(folder, f".images-partial-{uuid.uuid4().hex[:8]}")
    workers = max(1, min(os.cpu_count() or 1, MAX_DEMO_WORKERS))
    if not args.quiet:
        print(
            f"making {args.n_images:,} synthetic camera-trap {args.kind} in {images} ...",
            file=sys.stderr,
        )
    try:
        make_dataset(partial, args.n_images, kind=args.kind, seed=0, n_workers=workers)
        os.replace(partial, images)
    finally:
        if os.path.exists(partial):  # our own half-made folder: interrupted or failed
            shutil.rmtree(partial, ignore_errors=True)
    return load_dataset(images), False
