"""The classes of ``balance``: the subfolders of ROOT, their images, and what became of them."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..listing import find_images, is_image_name, merge_same_files
from ..paths import file_identity, natural_order
from ..progress import ProgressBar
from ..report import summary_dict
from ._errors import CommandError
from ._run import folder_errors

if TYPE_CHECKING:
    from ..result import SelectionResult

__all__ = ["ClassListing", "ClassOutcome", "list_classes", "manifest"]

logger = logging.getLogger(__name__)

FolderId = tuple[int, int]
"""A folder's identity (device, inode)."""


@dataclass
class ClassListing:
    """The class folders of ROOT and their images."""

    root: str
    classes: list[tuple[str, list[str]]] = field(default_factory=list)
    """Every class (natural order of names) and its images."""
    loose: int = 0
    """Images directly in ROOT, in no class."""
    n_merged: int = 0
    """Paths dropped because they name a file another path already gave."""
    folder_failures: list[tuple[str, str]] = field(default_factory=list)
    """Folders that could not be listed (skipped with --skip-unreadable) and why."""
    noun: str = "image"
    """What a class holds, for messages: images, or a detector file's items."""

    @property
    def paths(self) -> list[str]:
        """The images of every class, class after class."""
        return [path for _, found in self.classes for path in found]


@dataclass
class ClassOutcome:
    """One class: its images, those kept, and its selection (``None``: kept whole)."""

    name: str
    paths: list[str]
    kept: list[str]
    result: SelectionResult | None

    @property
    def action(self) -> str:
        return "kept whole" if self.result is None else "downsampled"

    @property
    def n_failed(self) -> int:
        return 0 if self.result is None else len(self.result.failures)

    def as_dict(self) -> dict[str, Any]:
        """The class's row of the JSON report."""
        result = self.result
        return {
            "class": self.name,
            "n_images": len(self.paths),
            "n_kept": len(self.kept),
            "action": self.action,
            "n_failed": self.n_failed,
            "n_buckets": None if result is None else len(result.buckets),
            "summary": None if result is None else summary_dict(result),
        }


def list_classes(args: argparse.Namespace, root: str, show_progress: bool) -> ClassListing:
    """The class folders of ``root`` (a folder) and the images in each.

    A class folder that links to another counts once; a file reached from two
    classes counts once, in the first. A folder that cannot be listed stops
    the run, or with ``--skip-unreadable`` is skipped and recorded.
    """
    names, loose = _class_folders(root)
    if not names:
        raise CommandError(
            f"ROOT {root!r} has no subfolders; balance expects one subfolder per class "
            "(for a single folder of images use 'smartdownsample select')"
        )
    if loose:
        logger.warning(
            "%d images directly in %s belong to no class folder and are left out", loose, root
        )
    names, folders = _merge_class_aliases(root, names)
    listing = ClassListing(root, loose=loose)
    policy = folder_errors(args)

    def not_listed(folder: str, exc: OSError) -> None:
        listing.folder_failures.append((folder, str(exc.strerror or exc)))
        policy(folder, exc)

    with ProgressBar(show_progress, None, "Finding images") as bar:
        for name in names:
            found = find_images(
                os.path.join(root, name),
                on_found=bar.offset(len(listing.paths)),
                on_error=not_listed,
                exclude=folders,
            )
            listing.classes.append((name, found))
    listing.classes, listing.n_merged = _merge_linked_files(listing.classes)
    return listing


def _class_folders(root: str) -> tuple[list[str], int]:
    """Immediate non-hidden subfolders of ``root`` (natural order) and loose images in it."""
    names: list[str] = []
    loose = 0
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                names.append(entry.name)
            elif is_image_name(entry.name):
                loose += 1
    order = natural_order(names)
    return [names[i] for i in order], loose


def _merge_class_aliases(root: str, names: list[str]) -> tuple[list[str], dict[FolderId, str]]:
    """Class folders without links to another class folder, and the folders not to enter.

    A class folder that is a link to another one (``deer_alias -> deer``) is
    not a second class: its images count once, in the folder it links to
    (the real folder, or the first in natural order if all are links).
    Returns the class names and ROOT's and every class folder's identity.
    """
    exclude: dict[FolderId, str] = {}
    root_id = file_identity(root)
    if root_id is not None:
        exclude[root_id] = root
    kept: dict[FolderId, str] = {}
    ranked = sorted(
        range(len(names)), key=lambda i: (os.path.islink(os.path.join(root, names[i])), i)
    )
    aliases: set[str] = set()
    for index in ranked:
        folder = os.path.join(root, names[index])
        identity = file_identity(folder)
        if identity is None:
            continue
        if identity in kept:
            logger.warning(
                "class folder %s is a link to the class folder %s: its images count once, "
                "in class %r",
                folder,
                os.path.join(root, kept[identity]),
                kept[identity],
            )
            aliases.add(names[index])
            continue
        kept[identity] = names[index]
        exclude[identity] = folder
    return [name for name in names if name not in aliases], exclude


def _merge_linked_files(
    classes: list[tuple[str, list[str]]],
) -> tuple[list[tuple[str, list[str]]], int]:
    """Classes without paths that name a file an earlier class (or path) already has."""
    everything = [path for _, found in classes for path in found]
    _, merged = merge_same_files(everything)
    if not merged:
        return classes, 0
    dropped = {path for path, _ in merged}
    return [(name, [p for p in found if p not in dropped]) for name, found in classes], len(merged)


def manifest(outcomes: list[ClassOutcome]) -> tuple[list[str], Iterator[dict[str, Any]]]:
    """The balance manifest: every image of every class, with its class and action.

    The columns are the select manifest's (those of the first downsampled
    class), led by ``class`` and ``action``; a class kept whole gives path,
    index and kept only.
    """
    columns: list[str] = ["path", "index", "kept"]
    for outcome in outcomes:
        if outcome.result is not None and outcome.result.paths:
            columns = list(next(outcome.result.manifest_rows()))
            break

    def rows() -> Iterator[dict[str, Any]]:
        for outcome in outcomes:
            if outcome.result is None:
                for index, path in enumerate(outcome.paths):
                    yield {
                        "class": outcome.name,
                        "action": outcome.action,
                        "path": path,
                        "index": index,
                        "kept": True,
                    }
            else:
                for row in outcome.result.manifest_rows():
                    yield {"class": outcome.name, "action": outcome.action, **row}

    return ["class", "action", *columns], rows()
