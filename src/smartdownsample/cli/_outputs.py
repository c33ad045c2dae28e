"""The output files and lines of select and balance, handled once.

Checking the output flags before any work (:class:`Outputs`, which also
locks the copy and link folders), writing the path list, manifest, copies or
links, charts and report into one :class:`~smartdownsample.outputs.OutputTransaction`,
and printing the selected paths and the closing lines.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from .._exceptions import InvalidArgumentError
from ..outputs import (
    OutputTransaction,
    TreeExport,
    TreeMode,
    check_no_links,
    check_output_dir,
    check_output_file,
    check_path_list,
    common_root,
    lock_output_dir,
    recover_output_dir,
    recover_output_file,
)
from ..paths import absolute_path
from ..progress import ProgressBar
from ..report import count_noun
from ._errors import CommandError

if TYPE_CHECKING:
    from ..result import SelectionResult

__all__ = [
    "Outputs",
    "Written",
    "final_line",
    "folders_skipped",
    "print_paths",
    "save_charts",
    "seconds",
    "show_results",
    "silence_stdout",
    "write_common",
    "write_report",
]

ManifestRows = tuple[Sequence[str] | None, Iterable[dict[str, Any]]]
"""A manifest to write: its column names (``None``: those of the first row) and its rows."""

SECONDS_SHOWN_AS_SECONDS = 120
"""Run times below two minutes are said in seconds, longer ones in minutes."""


@dataclass
class Outputs:
    """The output options of select / balance, checked."""

    out: str | None
    paths_to_stdout: bool
    manifest: str | None
    report: str | None
    copy_to: str | None
    link_to: str | None
    distribution: str | None
    thumbnails: str | None
    html: str | None
    overwrite: bool
    locks: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    """Locks held on the copy, link and crop folders, released when the command ends."""
    out_json: str | None = None
    """``--out-json``: the detector file filtered to the kept items (detector SOURCE only)."""
    crops_to: str | None = None
    """``--crops-to``: folder for the kept boxes as JPEG crops (detector SOURCE only)."""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Outputs:
        """The output flags; two outputs naming one path are refused."""
        out = "-" if _is_own_stdout(args.out) else args.out
        out_json, crops_to = getattr(args, "out_json", None), getattr(args, "crops_to", None)
        to_stdout = out == "-" or (
            out is None
            and not (args.copy_to or args.link_to or args.manifest or out_json or crops_to)
        )
        outputs = cls(
            out=None if out == "-" else out,
            paths_to_stdout=to_stdout,
            manifest=args.manifest,
            report=args.report,
            copy_to=args.copy_to,
            link_to=args.link_to,
            distribution=args.distribution,
            thumbnails=args.thumbnails,
            html=getattr(args, "html", None),
            overwrite=args.overwrite,
            locks=getattr(args, "cleanup", None) or contextlib.ExitStack(),
            out_json=out_json,
            crops_to=crops_to,
        )
        seen: dict[str, str] = {}
        for option, path in outputs.named():
            key = os.path.normcase(absolute_path(path))
            if key in seen:
                raise InvalidArgumentError(
                    f"{seen[key]} and {option} both name {path!r}; give each output its own path"
                )
            seen[key] = option
        return outputs

    def named(self) -> list[tuple[str, str]]:
        """Every output given, as (flag, path)."""
        pairs = [
            ("--out", self.out),
            ("--manifest", self.manifest),
            ("--report", self.report),
            ("--copy-to", self.copy_to),
            ("--link-to", self.link_to),
            ("--distribution", self.distribution),
            ("--thumbnails", self.thumbnails),
            ("--html", self.html),
            ("--out-json", self.out_json),
            ("--crops-to", self.crops_to),
        ]
        return [(option, path) for option, path in pairs if path]

    def folders(self) -> list[tuple[str, str]]:
        """The copy and link folders given, as (flag, folder)."""
        pairs = [("--copy-to", self.copy_to), ("--link-to", self.link_to)]
        return [(option, folder) for option, folder in pairs if folder]

    def all_folders(self) -> list[tuple[str, str]]:
        """The copy, link and crop folders given: checked and locked alike."""
        crops = [("--crops-to", self.crops_to)] if self.crops_to else []
        return self.folders() + crops

    def check(
        self,
        source_folders: Sequence[str],
        image_paths: Sequence[str],
        chart_names: Sequence[str | None] = (None,),
        source_files: Sequence[str] = (),
    ) -> None:
        """Refuse unsafe or occupied destinations before any work is done.

        ``source_files``: the list, CSV or detector files named as SOURCE, which no
        output may replace (not even with ``--overwrite``). First, what an interrupted
        run left where this one writes is completed or undone: every output is then
        judged as the user had it.
        """
        self._recover(chart_names)
        for option, folder in self.all_folders():
            check_output_dir(
                folder,
                option=option,
                source_folders=source_folders,
                image_paths=image_paths,
                overwrite=self.overwrite,
            )
        for option, path in self._files():
            check_output_file(
                path,
                option=option,
                image_paths=image_paths,
                overwrite=self.overwrite,
                source_files=source_files,
            )
        if self.out:
            check_path_list(image_paths, option="--out")
        self._check_charts(source_folders, image_paths, chart_names, source_files)
        self._lock_folders(source_folders, image_paths)

    def _files(self) -> list[tuple[str, str]]:
        """The output files given but the charts, as (flag, path)."""
        pairs = [
            ("--out", self.out),
            ("--manifest", self.manifest),
            ("--report", self.report),
            ("--html", self.html),
            ("--out-json", self.out_json),
        ]
        return [(option, path) for option, path in pairs if path]

    def _charts(self, names: Sequence[str | None]) -> list[tuple[str, str]]:
        """Every chart file (one per class name for balance), as (flag, path)."""
        pairs = [("--distribution", self.distribution), ("--thumbnails", self.thumbnails)]
        return [
            (option, chart_path(path, name)) for option, path in pairs if path for name in names
        ]

    def _recover(self, chart_names: Sequence[str | None]) -> None:
        """Complete or undo what interrupted runs left where this one writes."""
        for option, folder in self.all_folders():
            recover_output_dir(folder, option=option)
        for option, path in self._files() + self._charts(chart_names):
            recover_output_file(path, option=option)

    def _check_charts(
        self,
        source_folders: Sequence[str],
        image_paths: Sequence[str],
        names: Sequence[str | None],
        source_files: Sequence[str],
    ) -> None:
        for option, chart in self._charts(names):
            _refuse_inside(option, chart, source_folders)
            check_output_file(
                chart,
                option=option,
                image_paths=image_paths,
                overwrite=self.overwrite,
                source_files=source_files,
            )

    def _lock_folders(self, source_folders: Sequence[str], image_paths: Sequence[str]) -> None:
        """Lock the copy and link folders (creating them) until the command ends.

        Last of the checks: the lock creates the folder.
        """
        for option, folder in self.all_folders():
            lock = lock_output_dir(folder, option=option, overwrite=self.overwrite)
            self.locks.callback(lock.release)
            check_no_links(
                folder,
                {os.path.dirname(path) for path in image_paths},
                option=option,
                root=common_root(image_paths, source_folders),
            )


def _is_own_stdout(path: str | None) -> bool:
    """True if ``path`` (``/dev/stdout``, ``/proc/self/fd/1``) is this process's stdout."""
    if not path or path == "-":
        return False
    try:
        return os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError):
        return False


CLASS_NAME_BYTES = 80
"""Longest class name kept whole in a chart's file name (bytes of UTF-8): with the
stem, the extension and a hash it stays far below the 255 bytes of a file name."""

_UNSAFE_IN_NAME = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
"""Characters a class name may hold but a file name may not (on any OS)."""


def name_component(name: str) -> str:
    """A class name as one safe file-name component (no separator, never ``..``).

    A name that had to change, or was cut, gets a short hash of the original,
    so two names never give one file.

    Examples
    --------
    >>> name_component("red deer"), name_component("../../etc"), name_component("")
    ('red deer', '____etc-7baf5cb6', 'class-da39a3ee')
    """
    safe = _UNSAFE_IN_NAME.sub("_", name).strip(" .")
    safe = safe.replace("..", "__")
    cut = safe.encode("utf-8")[:CLASS_NAME_BYTES].decode("utf-8", "ignore")
    if cut == name and name:
        return name
    digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cut or 'class'}-{digest}"


def chart_path(path: str, name: str | None) -> str:
    """``path`` for select (``name`` None); ``stem-NAME.png`` for a balance class, the
    name made one safe file-name component (:func:`name_component`).

    Examples
    --------
    >>> chart_path("charts/d.png", None), chart_path("charts/d.png", "owl")
    ('charts/d.png', 'charts/d-owl.png')
    >>> chart_path("charts/d.png", "../../x").startswith("charts/d-")
    True
    """
    if name is None:
        return path
    stem, extension = os.path.splitext(path)
    return f"{stem}-{name_component(name)}{extension}"


def _refuse_inside(option: str, path: str, folders: Sequence[str]) -> None:
    real = os.path.normcase(os.path.realpath(path))
    for folder in folders:
        base = os.path.normcase(os.path.realpath(folder)).rstrip(os.sep) + os.sep
        if real.startswith(base):
            raise InvalidArgumentError(
                f"{option} {path!r} is inside the SOURCE folder {folder!r}, where the next run "
                "would take it for an input image; save it outside the SOURCE folders"
            )


# ---------------------------------------------------------------- writing


@dataclass
class Written:
    """What the outputs step wrote, for the summary and the report."""

    lines: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)


def write_common(
    outputs: Outputs,
    tx: OutputTransaction,
    selected: Sequence[str],
    root: str,
    manifest: ManifestRows | None,
    show_progress: bool,
) -> Written:
    """Stage the path list, the manifest and the copies or links of ``selected``."""
    written = Written()
    if outputs.out:
        count = tx.write_path_list(outputs.out, selected)
        written.lines.append(f"selected paths ({count:,}): {outputs.out}")
        written.record["out"] = outputs.out
    elif outputs.paths_to_stdout:
        written.record["out"] = "stdout"
    if outputs.manifest and manifest is not None:
        fieldnames, rows = manifest
        count = tx.write_csv(outputs.manifest, rows, fieldnames)
        written.lines.append(f"manifest ({count:,} rows): {outputs.manifest}")
        written.record["manifest"] = outputs.manifest
    for option, folder in outputs.folders():
        mode: TreeMode = "copy" if option == "--copy-to" else "link"
        desc = "Copying" if mode == "copy" else "Linking"
        with ProgressBar(show_progress and bool(selected), len(selected), desc) as bar:
            export = tx.export_tree(selected, folder, mode=mode, root=root, progress=bar.add)
        written.lines.append(export.describe())
        written.record[option.lstrip("-").replace("-", "_")] = _export_record(export)
    return written


def _export_record(export: TreeExport) -> dict[str, Any]:
    return {
        "folder": export.dest,
        "root": export.root,
        "files": export.n_files,
        "copied": export.n_copied,
        "hard_links": export.n_hardlinks,
        "symbolic_links": export.n_symlinks,
        "removed_from_earlier_run": export.n_removed,
        "kept_changed_from_earlier_run": len(export.kept_changed),
        "kept_other_files": len(export.kept_other),
    }


def save_charts(
    outputs: Outputs,
    tx: OutputTransaction,
    result: SelectionResult,
    name: str | None,
    written: Written,
) -> None:
    """Stage the charts of one selection (``name``: its class, for balance)."""
    for option, path, save in (
        ("distribution", outputs.distribution, result.save_distribution),
        ("thumbnails", outputs.thumbnails, result.save_thumbnails),
    ):
        if not path:
            continue
        chart = chart_path(path, name)
        save(tx.temp_for(chart, suffix=".png"))
        written.lines.append(f"{option} chart: {chart}")
        written.record.setdefault(option, []).append(chart)


def write_html(
    outputs: Outputs,
    tx: OutputTransaction,
    written: Written,
    write: Callable[[str], object],
) -> None:
    """Stage the ``--html`` page (``write`` saves it to the path it is given)."""
    if not outputs.html:
        return
    write(tx.temp_for(outputs.html, suffix=".html"))
    written.lines.append(f"HTML report: {outputs.html}")
    written.record["html"] = outputs.html


def write_report(
    outputs: Outputs,
    tx: OutputTransaction,
    written: Written,
    report: Callable[[], dict[str, Any]],
) -> None:
    """Stage the ``--report`` JSON, built last so that it records every other output."""
    if not outputs.report:
        return
    tx.write_json(outputs.report, report())
    written.lines.append(f"report: {outputs.report}")


# ---------------------------------------------------------------- printing


def show_results(
    outputs: Outputs,
    written: Written,
    selected: Sequence[str],
    quiet: bool,
    summary: Callable[[], list[str]],
) -> None:
    """Print the selected paths (if they go to stdout), then the summary and what was written.

    The summary goes to stdout, or to stderr when the paths are on stdout;
    ``--quiet`` leaves it out.
    """
    if outputs.paths_to_stdout:
        print_paths(selected)
        written.lines.append("selected paths: printed on stdout")
    if quiet:
        return
    stream = sys.stderr if outputs.paths_to_stdout else sys.stdout
    for text in summary():
        print(text, file=stream)
    for line in written.lines:
        print(f"  {line}", file=stream)


def print_paths(paths: Sequence[str]) -> None:
    """The selected paths on stdout, one a line (names that are not UTF-8 as their bytes)."""
    stream = sys.stdout
    try:
        for path in paths:
            _write_name(stream, path)
            stream.write("\n")
        stream.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        silence_stdout()  # what is still buffered would fail again at exit
        raise CommandError(
            f"cannot write the selected paths to standard output: {exc.strerror or exc}; "
            "free some space where it goes, or write them to a file with --out FILE"
        ) from exc


def _write_name(stream: IO[str], path: str) -> None:
    """Write a path; a name that is not UTF-8 (surrogate escapes) as its original bytes."""
    try:
        stream.write(path)
    except UnicodeEncodeError:
        buffer = getattr(stream, "buffer", None)
        if buffer is None:
            stream.write(path.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
            return
        stream.flush()
        buffer.write(os.fsencode(path))
        buffer.flush()


def silence_stdout() -> None:
    """Point stdout at the null device (after it failed: nothing more can reach it)."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def seconds(value: float) -> str:
    """A run time: ``12.3 s``, or ``2.5 min`` from two minutes on.

    Examples
    --------
    >>> seconds(12.34), seconds(150)
    ('12.3 s', '2.5 min')
    """
    if value < SECONDS_SHOWN_AS_SECONDS:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def folders_skipped(count: int) -> str:
    """The closing line's note of folders that could not be listed ('' for none)."""
    if not count:
        return ""
    return f"; {count:,} folder{'' if count == 1 else 's'} could not be listed (skipped)"


def final_line(result: SelectionResult, elapsed: float, folders_failed: int = 0) -> str:
    """``done: kept N of M images from B buckets; F unreadable; T s``."""
    failed = len(result.failures)
    total = len(result.paths)
    return (
        f"done: kept {result.n_selected:,} of {count_noun(total, 'image')} from "
        f"{count_noun(len(result.buckets), 'bucket')}; {failed:,} unreadable"
        f"{' (skipped)' if failed else ''}{folders_skipped(folders_failed)}; "
        f"{seconds(elapsed)}"
    )
