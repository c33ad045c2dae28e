"""Charts of a selection: the bucket distribution and the thumbnail grids.

Both can be saved to PNG without a display (matplotlib's Agg canvas is used
directly, so the caller's pyplot backend is never changed) and shown in a
window or notebook. Files are written atomically: a temporary file in the
same folder, then renamed.
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from ._exceptions import ImageLoadError, InvalidArgumentError, MissingExtraError
from .loading import decode_file

if TYPE_CHECKING:
    from .result import SelectionResult

__all__ = [
    "distribution_figure",
    "save_distribution",
    "save_thumbnails",
    "show_distribution",
    "show_thumbnails",
    "thumbnail_sheet",
]

GRID_SIDE = 5
"""Each bucket shows a 5x5 grid: its first 25 images in natural path order."""

MAX_SHEET_SIDE = 2400
"""Largest side of the thumbnail sheet in pixels; cells shrink as buckets
grow, so 128 buckets still give a PNG of a few megabytes at most."""

MAX_CELL = 72
"""Largest thumbnail cell: enough to tell day from night, a deer from a fox."""

MIN_CELL = 24
BORDER = 3
TITLE_HEIGHT = 14
GAP = 8
KEPT_COLOUR = (46, 160, 67)
EXCLUDED_COLOUR = (200, 40, 40)
UNREADABLE_COLOUR = (128, 128, 128)
BACKGROUND = (255, 255, 255)


def _require_matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise MissingExtraError("plotting", "plot", "matplotlib") from exc
    return matplotlib


def _atomic_save(path: str | os.PathLike[str], write: Any) -> str:
    """Call ``write(temp_path)`` then rename the temp file to ``path``."""
    target = os.path.abspath(os.fspath(path))
    if not target.lower().endswith(".png"):
        raise InvalidArgumentError(f"chart files are PNG: give a path ending in .png, got {path!r}")
    folder = os.path.dirname(target)
    os.makedirs(folder, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".smartdownsample-", suffix=".png", dir=folder)
    os.close(handle)
    try:
        write(temp)
        # mkstemp makes the file private (0600); give it the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, target)
    except BaseException:
        if os.path.exists(temp):
            os.remove(temp)
        raise
    return target


def _draw_distribution(figure: Any, result: SelectionResult) -> None:
    """Draw kept (green) and excluded (red) bars per bucket, largest first."""
    buckets = result.buckets
    kept = np.array([b.kept for b in buckets])
    excluded = np.array([b.size - b.kept for b in buckets])
    axes = figure.add_subplot()
    positions = np.arange(len(buckets))
    axes.bar(positions, kept, color=np.array(KEPT_COLOUR) / 255, label="kept")
    axes.bar(
        positions, excluded, bottom=kept, color=np.array(EXCLUDED_COLOUR) / 255, label="excluded"
    )
    axes.set_xticks(positions)
    axes.set_xticklabels([str(b.rank) for b in buckets], fontsize=7 if len(buckets) > 40 else 9)
    axes.set_xlabel("bucket (largest first, numbered as in the summary and thumbnails)")
    axes.set_ylabel("images")
    axes.set_title(
        f"smartdownsample: kept {result.n_selected:,} of {result.n_readable:,} images "
        f"in {len(buckets)} buckets"
    )
    axes.legend()
    figure.tight_layout()


def _figure_width(result: SelectionResult) -> float:
    return min(20.0, max(6.0, 0.18 * len(result.buckets) + 3))


def distribution_figure(result: SelectionResult) -> Any:
    """A matplotlib Figure (not registered with pyplot) of the distribution chart."""
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(_figure_width(result), 4.8), dpi=100)
    FigureCanvasAgg(figure)
    _draw_distribution(figure, result)
    return figure


def save_distribution(result: SelectionResult, path: str | os.PathLike[str]) -> str:
    """Save the distribution chart as a PNG (no display needed); returns the path."""
    figure = distribution_figure(result)
    return _atomic_save(path, lambda temp: figure.savefig(temp, format="png"))


def _cell_size(n_buckets: int) -> tuple[int, int]:
    columns = max(1, math.ceil(math.sqrt(n_buckets)))
    per_grid = MAX_SHEET_SIDE // columns
    cell = (per_grid - GAP - 2 * BORDER * GRID_SIDE) // GRID_SIDE
    return columns, int(min(MAX_CELL, max(MIN_CELL, cell)))


def _tile(path: str, cell: int) -> NDArray[np.uint8] | None:
    try:
        thumbnail = decode_file(path, cell).thumbnail
    except ImageLoadError:
        return None
    return thumbnail


def thumbnail_sheet(result: SelectionResult) -> Image.Image:
    """One image holding a 5x5 grid per bucket, grids in a square layout.

    Each grid shows the first 25 images of the bucket in natural path order,
    framed green when kept and red when excluded, and is titled with the
    bucket's number from the summary and chart.
    """
    buckets = result.buckets
    if not buckets:
        return Image.new("RGB", (200, 40), BACKGROUND)
    columns, cell = _cell_size(len(buckets))
    framed = cell + 2 * BORDER
    grid_w = GRID_SIDE * framed
    grid_h = TITLE_HEIGHT + GRID_SIDE * framed
    rows = math.ceil(len(buckets) / columns)
    sheet = Image.new("RGB", (columns * (grid_w + GAP), rows * (grid_h + GAP)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for slot, bucket in enumerate(buckets):
        left = (slot % columns) * (grid_w + GAP)
        top = (slot // columns) * (grid_h + GAP)
        title = f"#{bucket.rank} {bucket.label} ({bucket.kept}/{bucket.size})"
        draw.text((left + 2, top + 1), title, fill=(0, 0, 0))
        members = result.bucket_members(bucket.key)[: GRID_SIDE * GRID_SIDE]
        for n, position in enumerate(members):
            x = left + (n % GRID_SIDE) * framed
            y = top + TITLE_HEIGHT + (n // GRID_SIDE) * framed
            colour = KEPT_COLOUR if result.selected[position] else EXCLUDED_COLOUR
            draw.rectangle((x, y, x + framed - 1, y + framed - 1), fill=colour)
            tile = _tile(result.paths[position], cell)
            if tile is None:
                draw.rectangle(
                    (x + BORDER, y + BORDER, x + BORDER + cell - 1, y + BORDER + cell - 1),
                    fill=UNREADABLE_COLOUR,
                )
            else:
                sheet.paste(Image.fromarray(tile), (x + BORDER, y + BORDER))
    return sheet


def save_thumbnails(result: SelectionResult, path: str | os.PathLike[str]) -> str:
    """Save the thumbnail grids as one PNG (no display needed); returns the path."""
    sheet = thumbnail_sheet(result)
    return _atomic_save(path, lambda temp: sheet.save(temp, format="PNG"))


def show_distribution(result: SelectionResult) -> None:
    """Show the distribution chart with pyplot (window or notebook)."""
    _require_matplotlib()
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(_figure_width(result), 4.8))
    _draw_distribution(figure, result)
    plt.show()


def show_thumbnails(result: SelectionResult) -> None:
    """Show the thumbnail grids with pyplot (window or notebook)."""
    _require_matplotlib()
    import matplotlib.pyplot as plt

    sheet = thumbnail_sheet(result)
    height = min(16.0, 2 + sheet.height / 150)
    width = min(16.0, 2 + sheet.width / 150)
    figure, axes = plt.subplots(figsize=(width, height))
    axes.imshow(np.asarray(sheet))
    axes.set_axis_off()
    axes.set_title("First 25 images per bucket: green kept, red excluded")
    figure.tight_layout()
    plt.show()
