"""``smartdownsample balance``: cap every class folder of a data set at N images."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence

from .._exceptions import InvalidArgumentError
from ..outputs import OutputTransaction
from ..report import count_noun
from ._classes import ClassListing, ClassOutcome, list_classes, manifest
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

Every immediate subfolder of ROOT is a class. Classes with more than
--max-per-class images are cut to exactly that many with the diversity-keeping
selection; smaller classes are kept whole (their images are not read)."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``balance`` and its options to the command's subparsers."""
    parser = commands.add_parser(
        "balance",
        help="cap every class folder at N images",
        description="Cap every class (immediate subfolder of ROOT) at N diverse images.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("root", metavar="ROOT", help="folder with one subfolder per class")
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
    add_verbosity(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, started: float) -> int:
    """List the classes, cut the large ones, write the outputs and print the class table."""
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
    with OutputTransaction() as tx:
        root = os.path.abspath(listing.root)
        written = write_common(outputs, tx, selected, root, manifest(outcomes), show)
        for outcome in outcomes:
            if outcome.result is not None:
                save_charts(outputs, tx, outcome.result, outcome.name, written)
        if not to_cut:
            _no_charts(outputs, cap, written)
        write_html(outputs, tx, written, lambda path: _save_html(path, args, outcomes))
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


def _check_arguments(args: argparse.Namespace) -> None:
    """Refuse a minimum above the maximum, and a ROOT that is not a folder."""
    if args.min_per_class is not None and args.min_per_class > args.max_per_class:
        raise InvalidArgumentError(
            f"--min-per-class {args.min_per_class} is above --max-per-class "
            f"{args.max_per_class}; give a minimum at or below the maximum"
        )
    root = args.root
    if not os.path.isdir(root):
        problem = "does not exist" if not os.path.exists(root) else "is not a folder"
        raise InvalidArgumentError(
            f"ROOT {root!r} {problem}; give the folder that holds one subfolder per class"
        )


def _warn_small_classes(args: argparse.Namespace, listing: ClassListing) -> None:
    for name, found in listing.classes:
        if not found:
            logger.warning("class %r has no images", name)
        elif args.min_per_class is not None and len(found) < args.min_per_class:
            logger.warning(
                "class %r has only %d images, fewer than --min-per-class %d",
                name,
                len(found),
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


def _save_html(path: str, args: argparse.Namespace, outcomes: Sequence[ClassOutcome]) -> str:
    """The balance report page: one section per class, with its own buckets."""
    from ..htmlreport import ClassSection, save_html

    return save_html(
        path,
        classes=[ClassSection(o.name, o.paths, o.result) for o in outcomes],
        run={
            "command": "smartdownsample balance",
            "root": args.root,
            "max per class": f"{args.max_per_class:,}",
            "classes": len(outcomes),
            "images": f"{sum(len(o.paths) for o in outcomes):,}",
            "kept": f"{sum(len(o.kept) for o in outcomes):,}",
        },
        title="smartdownsample balance",
    )


def _no_charts(outputs: Outputs, cap: int, written: Written) -> None:
    """Say why ``--distribution``/``--thumbnails`` wrote nothing: no class was cut."""
    charts = (("--distribution", outputs.distribution), ("--thumbnails", outputs.thumbnails))
    for option, path in charts:
        if path:
            message = (
                f"{option}: no chart written: no class has more than --max-per-class "
                f"{cap:,} images, so none was downsampled (charts show downsampled classes)"
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
        f"done: kept {kept:,} of {count_noun(len(listing.paths), 'image')} in "
        f"{count_noun(len(outcomes), 'class', 'classes')}; {failed:,} unreadable"
        f"{' (skipped)' if failed else ''}{folders_skipped(len(listing.folder_failures))}; "
        f"{seconds(elapsed)}"
    )
    return [_class_table(outcomes, cap), done]


def _class_table(outcomes: Sequence[ClassOutcome], cap: int) -> str:
    width = max([len("class"), *(len(o.name) for o in outcomes)])
    header = f"{'class':<{width}} {'images':>10} {'kept':>10}  action"
    lines = [
        f"smartdownsample balance: at most {cap:,} images per class",
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
