"""Detector output as the SOURCE of ``select`` and ``balance``.

A MegaDetector batch results file or a COCO Camera Traps file, recognised by
its content, is read into an item table (one item per detection, annotation
with a box, or whole image): the flags of the ``detector output`` group say
which detections are items. Two outputs go back into the user's pipeline:
``--out-json`` (the input file filtered to the kept items) and
``--crops-to`` (the kept boxes as JPEG files).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._exceptions import DetectionFileError, InvalidArgumentError
from ..outputs import TEMP_PREFIX, OutputTransaction, common_root
from ..progress import ProgressBar
from ..report import count_noun
from ._outputs import Outputs, Written

if TYPE_CHECKING:
    from ..formats import ItemTable, Problem

__all__ = [
    "DetectorSource",
    "add_detector_options",
    "check_detector_flags",
    "detector_source",
    "read_source",
    "write_detector_outputs",
]

logger = logging.getLogger(__name__)

MEGADETECTOR_FLAGS = (
    ("min_conf", "--min-conf"),
    ("categories", "--category"),
    ("min_class_conf", "--min-class-conf"),
)
"""Flags of MegaDetector output (argparse dest = the reader's parameter, and the flag)."""

COCO_FLAGS = (("exclude_categories", "--exclude-category"),)
"""Flags of COCO Camera Traps."""

INPUT_FLAGS = (("image_root", "--image-root"), *MEGADETECTOR_FLAGS, *COCO_FLAGS)
OUTPUT_FLAGS = (("out_json", "--out-json"), ("crops_to", "--crops-to"))

JSON_SUFFIX = ".json"
SNIFF_BYTES = 1 << 20
"""Bytes read from the start of a SOURCE file to see whether it is a JSON object."""

CROP_QUALITY = 95
"""JPEG quality of the crops: no visible loss, a fraction of the size of PNG."""

FORMAT_NAMES = {"megadetector": "MegaDetector output", "coco": "COCO Camera Traps"}


def _unit(text: str) -> float:
    """An argparse type: a score from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {text!r}")
    return value


def add_detector_options(parser: argparse.ArgumentParser) -> None:
    """The ``detector output`` group: what is an item of a detector JSON, and its outputs.

    Defaults are None (applied by the reader) so that a flag given for a SOURCE
    it does not apply to is refused, not ignored.
    """
    group = parser.add_argument_group(
        "detector output (SOURCE is a MegaDetector results or COCO Camera Traps .json)"
    )
    group.add_argument(
        "--image-root",
        metavar="DIR",
        help="folder the JSON's image names are relative to (default: the JSON's folder)",
    )
    group.add_argument(
        "--min-conf",
        type=_unit,
        metavar="C",
        help="MegaDetector: detections below this confidence are not items (default 0.2)",
    )
    group.add_argument(
        "--category",
        action="append",
        dest="categories",
        metavar="NAME",
        help="MegaDetector: detection category that is an item (repeatable; default animal)",
    )
    group.add_argument(
        "--min-class-conf",
        type=_unit,
        metavar="C",
        help="MegaDetector: the top classification at or above this score is the species "
        "(balance's class), else 'unclassified' (default 0.5)",
    )
    group.add_argument(
        "--exclude-category",
        action="append",
        dest="exclude_categories",
        metavar="NAME",
        help="COCO: category whose annotations are not items (repeatable; default empty)",
    )
    group.add_argument(
        "--out-json",
        metavar="FILE.json",
        help="write the input JSON filtered to the kept items (same format, info and "
        "categories; images with no kept item left out)",
    )
    group.add_argument(
        "--crops-to",
        metavar="DIR",
        help="cut the kept boxes from their frames into DIR as JPEG files "
        "(FRAME_detN.jpg, in the frames' camera folders)",
    )


def _is_json_file(source: str) -> bool:
    """True for detector output: a regular file holding a JSON object.

    A ``*.json`` file is one if its first character is ``{`` (its errors are
    then the detector reader's); a file of another name only if it parses as
    a JSON object, so a list of paths whose first path starts with ``{`` stays
    a list. Any other ``*.json`` is a list of paths
    (:func:`..listing.read_json_list`).
    """
    if source == "-" or not os.path.isfile(source):
        return False
    named_json = source.lower().endswith(JSON_SUFFIX)
    try:
        with open(source, "rb") as handle:
            start = handle.read(SNIFF_BYTES)
            if not start.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
                return False
            if named_json:
                return True
            text = start + handle.read()
    except OSError:
        return named_json  # reading it again names the error
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):
        return False


def detector_source(sources: Sequence[str]) -> str | None:
    """The detector JSON among the SOURCEs, or None; one JSON alone or a usage error.

    Examples
    --------
    >>> detector_source(["a folder that does not exist", "-"]) is None
    True
    """
    found = [source for source in sources if _is_json_file(source)]
    if not found:
        return None
    if len(sources) > 1:
        others = [repr(source) for source in sources if source != found[0]]
        raise InvalidArgumentError(
            f"SOURCE {found[0]!r} is a JSON file (detector output), which cannot be mixed "
            f"with other SOURCEs ({', '.join(others)}); give one JSON file per run"
        )
    return found[0]


def _given(args: argparse.Namespace, flags: Sequence[tuple[str, str]]) -> list[str]:
    return [flag for dest, flag in flags if getattr(args, dest, None) is not None]


def check_detector_flags(args: argparse.Namespace, format_name: str | None) -> None:
    """Refuse detector flags when the SOURCE is not detector output, or is the other format."""
    if format_name is None:
        given = _given(args, (*INPUT_FLAGS, *OUTPUT_FLAGS))
        if given:
            raise InvalidArgumentError(
                f"{', '.join(given)} only apply when the SOURCE is a MegaDetector results or "
                "COCO Camera Traps .json file; drop them, or give such a file"
            )
        return
    foreign = _given(args, COCO_FLAGS if format_name == "megadetector" else MEGADETECTOR_FLAGS)
    if foreign:
        raise InvalidArgumentError(
            f"{', '.join(foreign)} do not apply to {FORMAT_NAMES[format_name]}; drop them"
        )


@dataclass
class DetectorSource:
    """A detector JSON read: its document, format, items and the items skipped."""

    path: str
    document: Any
    format: str
    image_root: str
    table: ItemTable

    @property
    def problems(self) -> tuple[Problem, ...]:
        return self.table.problems

    def image_name(self, row: int) -> str:
        """The image entry's name (``file`` or ``file_name``) of a table row."""
        return self.entry_name(int(self.table.source[row, 0]))

    def entry_name(self, image: int) -> str:
        """The name of the document's image entry number ``image``."""
        entry = self.document["images"][image]
        return str(entry.get("file" if self.format == "megadetector" else "file_name"))

    def describe(self) -> str:
        """``N detections in M frames`` for messages."""
        frames, _ = self.table.frames()
        return (
            f"{count_noun(len(self.table), 'item')} in {count_noun(len(frames), 'frame')} "
            f"({FORMAT_NAMES[self.format]})"
        )


def read_source(args: argparse.Namespace, path: str) -> DetectorSource:
    """Read the detector JSON with the flags given; missing frames fail or are skipped."""
    from ..formats import load_document
    from ..formats._common import root_folder
    from ..formats.coco import coco_items
    from ..formats.megadetector import megadetector_items

    document = load_document(path)
    format_name = _format_of(path, document)
    check_detector_flags(args, format_name)
    flags = MEGADETECTOR_FLAGS if format_name == "megadetector" else COCO_FLAGS
    options = {dest: getattr(args, dest) for dest, _ in flags if getattr(args, dest) is not None}
    reader = megadetector_items if format_name == "megadetector" else coco_items
    table = reader(
        document,
        path,
        image_root=args.image_root,
        on_error="skip" if args.skip_unreadable else "raise",
        **options,
    )
    source = DetectorSource(path, document, format_name, root_folder(path, args.image_root), table)
    return _drop_missing_frames(source, args.skip_unreadable)


def _format_of(path: str, document: Any) -> str:
    from ..formats import detect_format

    found = detect_format(document)
    if found is None:
        raise DetectionFileError(
            path,
            "neither MegaDetector output (images[].file with detections) nor COCO Camera "
            "Traps (images[].file_name, annotations, categories)",
            fix="give the results file of MegaDetector or a COCO Camera Traps file",
        )
    return found


def _drop_missing_frames(source: DetectorSource, skip: bool) -> DetectorSource:
    """Refuse (or with --skip-unreadable drop) the items of frames that do not exist."""
    import dataclasses

    from ..formats import Problem

    table = source.table
    frames, row_frame = table.frames()
    present = [os.path.isfile(frame) for frame in frames]  # one stat per frame, not per box
    keep: list[int] = []
    problems = list(table.problems)
    missing: set[str] = set()
    for row, frame in enumerate(table.frame):
        if present[int(row_frame[row])]:
            keep.append(row)
            continue
        if frame in missing:
            continue
        missing.add(frame)
        field = "file" if source.format == "megadetector" else "file_name"
        error = DetectionFileError(
            source.path,
            f"the frame {frame!r} does not exist",
            image=source.image_name(row),
            field=field,
            fix="check --image-root (the folder the names are relative to), or pass "
            "--skip-unreadable to skip such frames",
        )
        if not skip:
            raise error
        logger.warning("skipped: %s", error)
        problems.append(Problem(source.path, source.image_name(row), str(error)))
    if not missing:
        return source
    kept = dataclasses.replace(table.take(keep), problems=tuple(problems))
    return dataclasses.replace(source, table=kept)


# ---------------------------------------------------------------- outputs


def write_detector_outputs(
    outputs: Outputs,
    tx: OutputTransaction,
    source: DetectorSource,
    kept: ItemTable,
    written: Written,
    show_progress: bool,
) -> None:
    """Stage ``--out-json`` and ``--crops-to`` for the ``kept`` items."""
    if outputs.out_json:
        _write_json(outputs.out_json, tx, source, kept)
        written.lines.append(f"detector JSON ({count_noun(len(kept), 'item')}): {outputs.out_json}")
        written.record["out_json"] = outputs.out_json
    if outputs.crops_to:
        _write_crops(outputs.crops_to, tx, source, kept, written, show_progress)


def _write_json(path: str, tx: OutputTransaction, source: DetectorSource, kept: ItemTable) -> None:
    """Stage ``--out-json``: written by the format's writer, put in place by the transaction
    (which writes a device such as ``/dev/null`` into, never replacing it)."""
    from ..formats import write_detections

    write_detections(tx.temp_for(path, suffix=".json"), source.document, kept)


@contextlib.contextmanager
def _staging_folder(folder: str) -> Iterator[str]:
    """A temporary folder beside ``folder`` (same file system, which has room for the
    crops), else in the system's temporary folder; removed afterwards."""
    parent = os.path.dirname(os.path.abspath(folder))
    try:
        staging = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}crops-", dir=parent)
    except OSError:
        staging = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}crops-")
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_crops(
    folder: str,
    tx: OutputTransaction,
    source: DetectorSource,
    kept: ItemTable,
    written: Written,
    show_progress: bool,
) -> None:
    """Cut the kept boxes into a staging folder, then export them into ``folder``.

    The export is the ``--copy-to`` one: links refused, an earlier run's crops
    replaced only with ``--overwrite``, undone by the transaction's roll-back.
    """
    from ..formats import crop_file_name, crop_item

    root = common_root(source.table.frame, [source.image_root])
    with _staging_folder(folder) as staging:
        files: list[str] = []
        used: set[str] = set()
        with ProgressBar(show_progress, len(kept), "Cutting crops") as bar:
            for row in range(len(kept)):
                name = crop_file_name(kept.frame[row], int(kept.source[row, 1]), root=root)
                if name in used:  # one frame named by two image entries: keep both crops
                    stem, extension = os.path.splitext(name)
                    name = f"{stem}_entry{int(kept.source[row, 0])}{extension}"
                used.add(name)
                path = os.path.join(staging, name)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                image = source.entry_name(int(kept.source[row, 0]))
                crop = crop_item(kept.frame[row], kept.box[row], source=source.path, image=image)
                crop.save(path, "JPEG", quality=CROP_QUALITY)
                files.append(path)
                bar.add(1)
        export = tx.export_tree(files, folder, mode="copy", root=staging)
    written.lines.append(f"crops ({export.n_files:,} JPEG files): {folder}")
    written.record["crops_to"] = {
        "folder": export.dest,
        "files": export.n_files,
        "removed_from_earlier_run": export.n_removed,
        "kept_other_files": len(export.kept_other),
    }
