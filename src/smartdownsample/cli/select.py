"""``smartdownsample select``: pick N diverse images from folders, list files or CSV files."""

from __future__ import annotations

import argparse
import os
import time
from typing import TYPE_CHECKING

from ..listing import STDIN_SOURCE, SourceListing, list_sources
from ..outputs import OutputTransaction, common_root
from ..progress import ProgressBar
from ..report import count_noun
from ._detections import (
    DetectorSource,
    add_detector_options,
    check_detector_flags,
    detector_source,
    read_source,
    write_detector_outputs,
)
from ._errors import EXIT_OK, CommandError
from ._options import (
    IMAGE_TYPES,
    add_output_options,
    add_run_options,
    add_verbosity,
    fraction,
    positive_int,
)
from ._outputs import (
    Outputs,
    Written,
    final_line,
    save_charts,
    seconds,
    show_results,
    write_common,
    write_html,
    write_report,
)
from ._report import phase_timing, select_report
from ._run import DaskSession, check_strict, folder_errors, select_images
from ._settings import cache_path, resolve_backend, resolve_target, show_progress

if TYPE_CHECKING:
    from ..result import SelectionResult

__all__ = ["add_parser", "run"]

EXAMPLES = f"""\
examples:
  smartdownsample select photos/deer --target 1000 --copy-to deer-1000
  smartdownsample select photos/deer --fraction 0.1 --out selected.txt --report report.json
  smartdownsample select images.csv more.txt --target 500 --manifest manifest.csv
  smartdownsample select photos/deer --target 1000 | head
  smartdownsample select md_results.json --target 500 --out-json kept.json --crops-to crops
  smartdownsample select cct.json --image-root /data/frames --fraction 0.1 --manifest items.csv

SOURCE is a folder (searched recursively for images: {IMAGE_TYPES},
any case; hidden folders skipped), a text file with one image path a line, or
a CSV file with a 'path' column (relative paths are taken relative to the list
file's folder), or '-' for paths on standard input (one a line, or
NUL-separated with --null; relative to the current folder), e.g.
  find photos -name '*.JPG' -print0 | smartdownsample select - --null --target 100
One file reached by several paths (hard or symbolic links) counts once.
A MegaDetector batch results or COCO Camera Traps .json file (recognised by
its content; one per run) is a SOURCE of detections: each detection (or
annotation box, or box-less image) is an item, cut from its frame; see the
'detector output' flags.
Without --out, the selected paths are printed on stdout unless
--copy-to, --link-to, --manifest, --out-json or --crops-to records them."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``select`` and its options to the command's subparsers."""
    parser = commands.add_parser(
        "select",
        help="pick N diverse images",
        description="Pick exactly N diverse images from folders, list files or CSV files.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help=f"folder, list file or CSV; '{STDIN_SOURCE}' reads paths from standard input",
    )
    parser.add_argument(
        "--null",
        action="store_true",
        help="list files and standard input hold NUL-separated paths (find -print0)",
    )
    amount = parser.add_mutually_exclusive_group(required=True)
    amount.add_argument("--target", type=positive_int, metavar="N", help="keep exactly N images")
    amount.add_argument(
        "--fraction",
        type=fraction,
        metavar="F",
        help="keep this share of the images, 0 < F <= 1 (rounded half up, at least 1)",
    )
    add_run_options(parser)
    add_output_options(parser)
    add_detector_options(parser)
    add_verbosity(parser)
    parser.set_defaults(handler=run)


def _run_rows(args: argparse.Namespace) -> dict[str, object]:
    """What the HTML report's header says of the run, in the command's words."""
    return {"command": "smartdownsample select", "sources": ", ".join(args.sources)}


def run(args: argparse.Namespace, started: float) -> int:
    """List the SOURCEs, select, write the outputs and print the summary."""
    json_path = detector_source(args.sources)
    if json_path is not None:
        return _run_detections(args, started, json_path)
    check_detector_flags(args, None)
    resolve_backend(args)
    outputs = Outputs.from_args(args)
    show = show_progress(args)
    with ProgressBar(show, None, "Finding images") as bar:
        listing = list_sources(
            args.sources, on_found=bar.set, on_error=folder_errors(args), null=args.null
        )
    listed = time.perf_counter()
    if not listing.paths:
        raise CommandError(
            f"no images found in {', '.join(repr(s) for s in args.sources)} (looked for "
            f"{IMAGE_TYPES} files, any case, outside hidden folders); check the SOURCE"
        )
    files = [source for source in args.sources if source != "-" and os.path.isfile(source)]
    outputs.check(listing.folders, listing.paths, source_files=files)
    args.cache_path = cache_path(args)
    target = resolve_target(len(listing.paths), args.target, args.fraction)
    with DaskSession(args.backend, args.scheduler) as dask:
        result = select_images(args, listing.paths, target, dask)
    check_strict(args, [("", result)])
    selected_at = time.perf_counter()
    root = common_root(listing.paths, listing.folders)
    with OutputTransaction(replace=args.overwrite) as tx:
        manifest = (None, result.manifest_rows())
        written = write_common(outputs, tx, result.selected_paths, root, manifest, show)
        save_charts(outputs, tx, result, None, written)
        write_html(outputs, tx, written, lambda path: result.save_html(path, run=_run_rows(args)))
        write_report(
            outputs,
            tx,
            written,
            lambda: select_report(
                args,
                listing,
                result,
                written.record,
                phase_timing("listing", started, listed, selected_at),
            ),
        )
        tx.commit()
    show_results(
        outputs,
        written,
        result.selected_paths,
        args.quiet,
        lambda: [
            result.summary(),
            final_line(result, time.perf_counter() - started, len(listing.failures)),
        ],
    )
    return EXIT_OK


def _run_detections(args: argparse.Namespace, started: float, json_path: str) -> int:
    """Select among the items of a detector JSON, write the outputs and the summary."""
    resolve_backend(args)
    outputs = Outputs.from_args(args)
    source = read_source(args, json_path)
    table = source.table
    listed = time.perf_counter()
    if not len(table):
        raise CommandError(
            f"no items in {json_path!r}: no detection passes --min-conf and --category (or "
            "every annotation is excluded); check those flags"
        )
    frames, _ = table.frames()
    outputs.check([], frames, source_files=[json_path])
    args.cache_path = cache_path(args)
    target = resolve_target(len(table), args.target, args.fraction)
    with DaskSession(args.backend, args.scheduler) as dask:
        result = select_images(args, table, target, dask)
    check_strict(args, [("", result)])
    selected_at = time.perf_counter()
    kept = table.take(result.selected_indices)
    kept_frames, _ = kept.frames()
    show = show_progress(args)
    with OutputTransaction(replace=args.overwrite) as tx:
        manifest = (None, result.manifest_rows())
        written = write_common(outputs, tx, kept_frames, common_root(frames), manifest, show)
        write_detector_outputs(outputs, tx, source, kept, written, show)
        save_charts(outputs, tx, result, None, written)
        write_html(outputs, tx, written, lambda path: result.save_html(path, run=_run_rows(args)))
        write_report(
            outputs,
            tx,
            written,
            lambda: _detections_report(
                args, source, result, written, (started, listed, selected_at)
            ),
        )
        tx.commit()
    show_results(
        outputs,
        written,
        kept_frames,
        args.quiet,
        lambda: [
            result.summary(),
            _items_line(result, source, time.perf_counter() - started),
        ],
    )
    return EXIT_OK


def _items_line(result: SelectionResult, source: DetectorSource, elapsed: float) -> str:
    """``done: kept N of M items (F frames) from B buckets; ...``."""
    failed, skipped = len(result.failures), len(source.problems)
    frames, _ = source.table.frames()
    return (
        f"done: kept {result.n_selected:,} of {count_noun(len(source.table), 'item')} "
        f"({count_noun(len(frames), 'frame')}) from {count_noun(len(result.buckets), 'bucket')}; "
        f"{failed:,} unreadable{' (skipped)' if failed else ''}"
        + (f"; {count_noun(skipped, 'bad entry', 'bad entries')} skipped" if skipped else "")
        + f"; {seconds(elapsed)}"
    )


def _detections_report(
    args: argparse.Namespace,
    source: DetectorSource,
    result: SelectionResult,
    written: Written,
    times: tuple[float, float, float],
) -> dict[str, object]:
    """``select --report`` for a detector SOURCE: the select report plus the file's items."""
    frames, _ = source.table.frames()
    listing = SourceListing(paths=frames, per_source=[(source.path, len(source.table))])
    report = select_report(args, listing, result, written.record, phase_timing("listing", *times))
    report["detections"] = {
        "file": source.path,
        "format": source.format,
        "image_root": source.image_root,
        "n_items": len(source.table),
        "n_frames": len(frames),
        "skipped": [{"image": p.image, "reason": p.reason} for p in source.problems],
    }
    return report
