"""``smartdownsample balance``: cap every class folder of a data set at N images."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

from .._exceptions import InvalidArgumentError
from ..outputs import OutputTransaction, common_root
from ..report import count_noun
from ._classes import ClassListing, ClassOutcome, list_classes, manifest
from ._detections import (
    DetectorSource,
    add_detector_options,
    check_detector_flags,
    detector_source,
    read_source,
    write_detector_outputs,
)
from ._errors import EXIT_OK
from ._options import add_output_options, add_run_options, add_verbosity, positive_int
from ._outputs import (
    Outputs,
    Written,
    folders_skipped,
    save_charts,
    seconds,
    show_results,
    write_common,
    write_html,
    write_report,
)
from ._report import balance_report, phase_timing
from ._run import DaskSession, check_strict, select_images
from ._settings import cache_path, resolve_backend, show_progress

__all__ = ["add_parser", "run"]

logger = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  smartdownsample balance crops/ --max-per-class 2000 --copy-to crops-balanced
  smartdownsample balance crops/ --max-per-class 2000 --min-per-class 100 --link-to balanced \\
      --report balance.json
  smartdownsample balance md_results.json --max-per-class 500 --out-json balanced.json

Every immediate subfolder of ROOT is a class. Classes with more than
--max-per-class images are cut to exactly that many with the diversity-keeping
selection; smaller classes are kept whole (their images are not read).
ROOT may instead be a MegaDetector results or COCO Camera Traps .json file:
the classes are then the items' labels (MegaDetector: the species of the top
classification at or above --min-class-conf, else 'unclassified'; COCO: the
category name), and --out-json writes all kept items in the input's format."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``balance`` and its options to the command's subparsers."""
    parser = commands.add_parser(
        "balance",
        help="cap every class folder at N images",
        description="Cap every class (immediate subfolder of ROOT) at N diverse images.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "root",
        metavar="ROOT",
        help="folder with one subfolder per class, or a detector .json (classes are labels)",
    )
    parser.add_argument(
        "--max-per-class",
        type=positive_int,
        required=True,
        metavar="N",
        help="classes with more images are cut to exactly N",
    )
    parser.add_argument(
        "--min-per-class",
        type=positive_int,
        metavar="M",
        help="warn about classes with fewer than M images (they are kept whole)",
    )
    add_run_options(parser)
    add_output_options(parser, per_class=True)
    add_detector_options(parser)
    add_verbosity(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, started: float) -> int:
    """List the classes, cut the large ones, write the outputs and print the class table."""
    json_path = detector_source([args.root])
    if json_path is not None:
        return _run_detections(args, started, json_path)
    check_detector_flags(args, None)
    resolve_backend(args)
    outputs = Outputs.from_args(args)
    _check_arguments(args)
    show = show_progress(args)
    listing = list_classes(args, args.root, show)
    listed = time.perf_counter()
    cap = args.max_per_class
    to_cut = [name for name, found in listing.classes if len(found) > cap]
    outputs.check([listing.root], listing.paths, chart_names=to_cut)
    args.cache_path = cache_path(args)
    _warn_small_classes(args, listing)
    outcomes = _downsample(args, listing, show)
    check_strict(args, [(o.name, o.result) for o in outcomes if o.result is not None])
    selected_at = time.perf_counter()
    selected = [path for outcome in outcomes for path in outcome.kept]
    with OutputTransaction(replace=args.overwrite) as tx:
        root = os.path.abspath(listing.root)
        written = write_common(outputs, tx, selected, root, manifest(outcomes), show)
        _write_class_pictures(outputs, tx, written, args, outcomes, listing.noun)
        write_report(
            outputs,
            tx,
            written,
            lambda: balance_report(
                args,
                listing,
                outcomes,
                written.record,
                phase_timing("listing", started, listed, selected_at),
            ),
        )
        tx.commit()
    show_results(
        outputs,
        written,
        selected,
        args.quiet,
        lambda: _closing_lines(listing, outcomes, cap, time.perf_counter() - started),
    )
    return EXIT_OK


def _check_limits(args: argparse.Namespace) -> None:
    """Refuse a --min-per-class above --max-per-class."""
    if args.min_per_class is not None and args.min_per_class > args.max_per_class:
        raise InvalidArgumentError(
            f"--min-per-class {args.min_per_class} is above --max-per-class "
            f"{args.max_per_class}; give a minimum at or below the maximum"
        )


def _check_arguments(args: argparse.Namespace) -> None:
    """Refuse a minimum above the maximum, and a ROOT that is not a folder."""
    _check_limits(args)
    root = args.root
    if not os.path.isdir(root):
        problem = "does not exist" if not os.path.exists(root) else "is not a folder"
        raise InvalidArgumentError(
            f"ROOT {root!r} {problem}; give the folder that holds one subfolder per class, "
            "or a detector .json (MegaDetector results or COCO Camera Traps)"
        )


def _warn_small_classes(args: argparse.Namespace, listing: ClassListing) -> None:
    for name, found in listing.classes:
        if not found:
            logger.warning("class %r has no %ss", name, listing.noun)
        elif args.min_per_class is not None and len(found) < args.min_per_class:
            logger.warning(
                "class %r has only %s, fewer than --min-per-class %d",
                name,
                count_noun(len(found), listing.noun),
                args.min_per_class,
            )


def _downsample(args: argparse.Namespace, listing: ClassListing, show: bool) -> list[ClassOutcome]:
    """Every class: kept whole if it has at most --max-per-class images, else selected."""
    cap = args.max_per_class
    classes = listing.classes
    outcomes: list[ClassOutcome] = []
    with DaskSession(args.backend, args.scheduler) as dask:
        for number, (name, found) in enumerate(classes, start=1):
            if len(found) <= cap:
                outcomes.append(ClassOutcome(name, found, list(found), None))
                continue
            if show:
                print(
                    f"[{number}/{len(classes)}] {name}: "
                    f"{count_noun(len(found), 'image')} -> {cap:,}",
                    file=sys.stderr,
                )
            result = select_images(args, found, cap, dask)
            outcomes.append(ClassOutcome(name, found, result.selected_paths, result))
    return outcomes


def _save_html(
    path: str, args: argparse.Namespace, outcomes: Sequence[ClassOutcome], noun: str
) -> str:
    """The balance report page: one section per class, with its own buckets."""
    from ..htmlreport import ClassSection, save_html

    return save_html(
        path,
        classes=[ClassSection(o.name, o.paths, o.result, noun) for o in outcomes],
        run={
            "command": "smartdownsample balance",
            "root": args.root,
            "max per class": f"{args.max_per_class:,}",
            "classes": len(outcomes),
            f"{noun}s": f"{sum(len(o.paths) for o in outcomes):,}",
            "kept": f"{sum(len(o.kept) for o in outcomes):,}",
        },
        title="smartdownsample balance",
    )


def _write_class_pictures(
    outputs: Outputs,
    tx: OutputTransaction,
    written: Written,
    args: argparse.Namespace,
    outcomes: Sequence[ClassOutcome],
    noun: str,
) -> None:
    """Stage the charts of every downsampled class and the HTML page of all classes."""
    for outcome in outcomes:
        if outcome.result is not None:
            save_charts(outputs, tx, outcome.result, outcome.name, written)
    if all(outcome.result is None for outcome in outcomes):
        _no_charts(outputs, args.max_per_class, written, noun)
    write_html(outputs, tx, written, lambda path: _save_html(path, args, outcomes, noun))


def _no_charts(outputs: Outputs, cap: int, written: Written, noun: str) -> None:
    """Say why ``--distribution``/``--thumbnails`` wrote nothing: no class was cut."""
    charts = (("--distribution", outputs.distribution), ("--thumbnails", outputs.thumbnails))
    for option, path in charts:
        if path:
            message = (
                f"{option}: no chart written: no class has more than --max-per-class "
                f"{cap:,} {noun}s, so none was downsampled (charts show downsampled classes)"
            )
            logger.warning("%s", message)
            written.record.setdefault(option.lstrip("-"), [])


def _closing_lines(
    listing: ClassListing, outcomes: Sequence[ClassOutcome], cap: int, elapsed: float
) -> list[str]:
    """The class table and the ``done:`` line."""
    failed = sum(outcome.n_failed for outcome in outcomes)
    kept = sum(len(outcome.kept) for outcome in outcomes)
    done = (
        f"done: kept {kept:,} of {count_noun(len(listing.paths), listing.noun)} in "
        f"{count_noun(len(outcomes), 'class', 'classes')}; {failed:,} unreadable"
        f"{' (skipped)' if failed else ''}{folders_skipped(len(listing.folder_failures))}; "
        f"{seconds(elapsed)}"
    )
    return [_class_table(outcomes, cap, listing.noun), done]


def _class_table(outcomes: Sequence[ClassOutcome], cap: int, noun: str) -> str:
    width = max([len("class"), *(len(o.name) for o in outcomes)])
    header = f"{'class':<{width}} {noun + 's':>10} {'kept':>10}  action"
    lines = [
        f"smartdownsample balance: at most {cap:,} {noun}s per class",
        header,
        "-" * len(header),
    ]
    for outcome in outcomes:
        action = outcome.action
        if outcome.result is not None:
            action += f" ({len(outcome.result.buckets)} buckets"
            if outcome.result.failures:
                action += f", {len(outcome.result.failures)} unreadable"
            action += ")"
        lines.append(
            f"{outcome.name:<{width}} {len(outcome.paths):>10,} {len(outcome.kept):>10,}  {action}"
        )
    lines.append("-" * len(header))
    total = sum(len(o.paths) for o in outcomes)
    kept = sum(len(o.kept) for o in outcomes)
    lines.append(f"{'total':<{width}} {total:>10,} {kept:>10,}")
    return "\n".join(lines)


# ---------------------------------------------------------------- detector output


def _run_detections(args: argparse.Namespace, started: float, json_path: str) -> int:
    """Balance the items of a detector JSON by label; one --out-json for all kept items."""
    resolve_backend(args)
    outputs = Outputs.from_args(args)
    _check_limits(args)
    source = read_source(args, json_path)
    listed = time.perf_counter()
    table = source.table
    groups = _label_rows(source)
    listing = ClassListing(
        root=json_path,
        classes=[(name, [table.frame[r] for r in rows]) for name, rows in groups],
        noun="item",
    )
    cap = args.max_per_class
    to_cut = [name for name, rows in groups if len(rows) > cap]
    frames, _ = table.frames()
    outputs.check([], frames, chart_names=to_cut, source_files=[json_path])
    args.cache_path = cache_path(args)
    _warn_small_classes(args, listing)
    outcomes, kept_rows = _balance_items(args, source, groups)
    check_strict(args, [(o.name, o.result) for o in outcomes if o.result is not None])
    selected_at = time.perf_counter()
    kept = table.take(sorted(kept_rows))
    kept_frames, _ = kept.frames()
    show = show_progress(args)
    with OutputTransaction(replace=args.overwrite) as tx:
        rows = _item_manifest(source, groups, outcomes)
        written = write_common(outputs, tx, kept_frames, common_root(frames), rows, show)
        write_detector_outputs(outputs, tx, source, kept, written, show)
        _write_class_pictures(outputs, tx, written, args, outcomes, listing.noun)
        write_report(
            outputs,
            tx,
            written,
            lambda: _detections_report(
                args, listing, outcomes, source, written, (started, listed, selected_at)
            ),
        )
        tx.commit()
    show_results(
        outputs,
        written,
        kept_frames,
        args.quiet,
        lambda: _closing_lines(listing, outcomes, cap, time.perf_counter() - started),
    )
    return EXIT_OK


def _label_rows(source: DetectorSource) -> list[tuple[str, list[int]]]:
    """The table's rows per label, labels in natural order."""
    from ..paths import natural_order

    rows: dict[str, list[int]] = {}
    for row, label in enumerate(source.table.label):
        rows.setdefault(label, []).append(row)
    names = list(rows)
    return [(names[i], rows[names[i]]) for i in natural_order(names)]


def _balance_items(
    args: argparse.Namespace, source: DetectorSource, groups: list[tuple[str, list[int]]]
) -> tuple[list[ClassOutcome], list[int]]:
    """Every label: kept whole if it has at most --max-per-class items, else selected."""
    cap = args.max_per_class
    table = source.table
    outcomes: list[ClassOutcome] = []
    kept_rows: list[int] = []
    with DaskSession(args.backend, args.scheduler) as dask:
        for number, (name, rows) in enumerate(groups, start=1):
            frames = [table.frame[r] for r in rows]
            if len(rows) <= cap:
                outcomes.append(ClassOutcome(name, frames, list(frames), None))
                kept_rows.extend(rows)
                continue
            if show_progress(args):
                print(
                    f"[{number}/{len(groups)}] {name}: {count_noun(len(rows), 'item')} -> {cap:,}",
                    file=sys.stderr,
                )
            result = select_images(args, table.take(rows), cap, dask)
            chosen = [rows[i] for i in result.selected_indices]
            kept_rows.extend(chosen)
            outcomes.append(ClassOutcome(name, frames, [table.frame[r] for r in chosen], result))
    return outcomes, kept_rows


def _item_manifest(
    source: DetectorSource, groups: list[tuple[str, list[int]]], outcomes: list[ClassOutcome]
) -> tuple[list[str], Iterator[dict[str, Any]]]:
    """The balance manifest, with the item columns also for labels kept whole."""
    from ..report import item_columns

    columns, rows = manifest(outcomes)
    whole = {
        (outcome.name, index): row
        for (_, group), outcome in zip(groups, outcomes, strict=True)
        if outcome.result is None
        for index, row in enumerate(group)
    }
    item_names = list(item_columns(source.table, 0)) if len(source.table) else []
    columns += [name for name in item_names if name not in columns]

    def with_items() -> Iterator[dict[str, Any]]:
        for row in rows:
            found = whole.get((row["class"], row["index"]))
            yield row if found is None else {**row, **item_columns(source.table, found)}

    return columns, with_items()


def _detections_report(
    args: argparse.Namespace,
    listing: ClassListing,
    outcomes: Sequence[ClassOutcome],
    source: DetectorSource,
    written: Written,
    times: tuple[float, float, float],
) -> dict[str, object]:
    """``balance --report`` for a detector ROOT: the balance report plus the file's items."""
    report = balance_report(
        args, listing, outcomes, written.record, phase_timing("listing", *times)
    )
    report["detections"] = {
        "file": source.path,
        "format": source.format,
        "image_root": source.image_root,
        "n_items": len(source.table),
        "skipped": [{"image": p.image, "reason": p.reason} for p in source.problems],
    }
    return report
