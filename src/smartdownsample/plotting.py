"""Charts of a selection: the bucket distribution and the thumbnail grids.

Both can be saved to PNG without a display (matplotlib's Agg canvas is used
directly, so the caller's pyplot backend is never changed) and shown in a
window or notebook. Files are written atomically: a temporary file in the
same folder, then renamed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from ._exceptions import ImageLoadError, InvalidArgumentError, SmartDownsampleError
from .loading import decode_file
from .outputs import atomic_file

if TYPE_CHECKING:
    from .result import SelectionResult

__all__ = [
    "distribution_figure",
    "save_distribution",
    "save_thumbnails",
    "show_distribution",
    "show_thumbnails",
    "shown_members",
    "thumbnail_sheet",
]

GRID_SIDE = 5
"""Each bucket shows a 5x5 grid: up to 25 of its images, the kept ones first
(natural path order), then the excluded ones, so every kept image of a bucket
of up to 25 kept images is seen."""

MAX_SHEET_SIDE = 2400
"""Largest side of the thumbnail sheet in pixels; cells shrink as buckets
grow, so 128 buckets still give a PNG of a few megabytes at most."""

MAX_CELL = 72
"""Largest thumbnail cell: enough to tell day from night, a deer from a fox."""

MIN_CELL = 24
BORDER = 3
GAP = 8

LABEL_FONT_SIZE = 15
"""Pixel size of grid titles and the legend: readable at 100% zoom (the
9-pixel bitmap font of 1.x was not); smaller only when a title would not fit
its grid, never below :data:`MIN_LABEL_FONT_SIZE`."""

MIN_LABEL_FONT_SIZE = 11
LINE_SPACING = 3
"""Pixels between text lines."""

LEGEND_SWATCH = 14
"""Side of the colour squares in the legend."""
KEPT_COLOUR = (46, 160, 67)
EXCLUDED_COLOUR = (200, 40, 40)
UNREADABLE_COLOUR = (128, 128, 128)
BACKGROUND = (255, 255, 255)


def _require_matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise SmartDownsampleError(
            "charts need matplotlib, a dependency of smartdownsample that is missing here; "
            "install it with: pip install matplotlib"
        ) from exc
    return matplotlib


def _save_png(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> str:
    """Write a PNG through the package's one atomic writer; returns the absolute path."""
    target = os.path.abspath(os.fspath(path))
    if not target.lower().endswith(".png"):
        raise InvalidArgumentError(f"chart files are PNG: give a path ending in .png, got {path!r}")
    with atomic_file(target, binary=True) as handle:
        write(handle)
    return target


def _draw_distribution(figure: Any, result: SelectionResult) -> None:
    """Kept (green) and excluded (red) bars per bucket, largest on top, named in words."""
    buckets = result.buckets
    kept = np.array([b.kept for b in buckets])
    excluded = np.array([b.size - b.kept for b in buckets])
    axes = figure.add_subplot()
    positions = np.arange(len(buckets))
    axes.barh(positions, kept, color=np.array(KEPT_COLOUR) / 255, label="kept")
    axes.barh(
        positions, excluded, left=kept, color=np.array(EXCLUDED_COLOUR) / 255, label="excluded"
    )
    axes.set_yticks(positions)
    axes.set_yticklabels([f"#{b.rank} {b.label} (id {b.key})" for b in buckets], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("images")
    axes.set_title(
        f"smartdownsample: kept {result.n_selected:,} of {result.n_readable:,} images "
        f"in {len(buckets)} buckets",
        fontsize=10,
        loc="left",
    )
    axes.legend(loc="lower right")
    figure.tight_layout()


def _figure_size(result: SelectionResult) -> tuple[float, float]:
    """Inches: wide enough for the bucket names, a line of height per bucket."""
    return 11.0, min(30.0, max(3.0, 0.22 * len(result.buckets) + 1.4))


def distribution_figure(result: SelectionResult) -> Any:
    """A matplotlib Figure (not registered with pyplot) of the distribution chart."""
    _require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=_figure_size(result), dpi=100)
    FigureCanvasAgg(figure)
    _draw_distribution(figure, result)
    return figure


def save_distribution(result: SelectionResult, path: str | os.PathLike[str]) -> str:
    """Save the distribution chart as a PNG (no display needed); returns the path."""
    figure = distribution_figure(result)
    return _save_png(path, lambda handle: figure.savefig(handle, format="png"))


def _cell_size(n_buckets: int) -> tuple[int, int]:
    columns = max(1, math.ceil(math.sqrt(n_buckets)))
    per_grid = MAX_SHEET_SIDE // columns
    cell = (per_grid - GAP - 2 * BORDER * GRID_SIDE) // GRID_SIDE
    return columns, int(min(MAX_CELL, max(MIN_CELL, cell)))


def _tile(result: SelectionResult, position: int, cell: int) -> NDArray[np.uint8] | None:
    """The picture of one image: its detection's box for a result of detections."""
    boxes: NDArray[np.float64] | None = None
    if result.items is not None and not np.isnan(result.items.box[position]).any():
        boxes = result.items.box[position : position + 1]
    try:
        decoded = decode_file(result.paths[position], cell, boxes=boxes)
    except ImageLoadError:
        return None
    tile: NDArray[np.uint8] = decoded.thumbnail if decoded.regions is None else decoded.regions[0]
    return tile


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font at ``size`` pixels (Pillow >= 10.1), else its bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow 10.0 has only the fixed bitmap font
        return ImageFont.load_default()


def _fitting_font(
    draw: ImageDraw.ImageDraw, lines: list[str], width: int
) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """The largest font from :data:`LABEL_FONT_SIZE` down in which every line fits ``width``."""
    size = LABEL_FONT_SIZE
    font = _font(size)
    while size > MIN_LABEL_FONT_SIZE and max(draw.textlength(t, font=font) for t in lines) > width:
        size -= 1
        font = _font(size)
    return font


def _line_height(font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> int:
    bottom = font.getbbox("Ag#(")[3]
    return int(bottom) + LINE_SPACING


def shown_members(result: SelectionResult, key: int) -> list[int]:
    """The images a bucket's grid shows: kept ones first, then excluded, natural order each.

    Examples
    --------
    >>> import numpy as np
    >>> from types import SimpleNamespace
    >>> fake = SimpleNamespace(
    ...     bucket_members=lambda key: [0, 1, 2, 3], selected=np.array([0, 1, 0, 1], bool)
    ... )
    >>> shown_members(fake, 0)
    [1, 3, 0, 2]
    """
    members = result.bucket_members(key)
    kept = [position for position in members if result.selected[position]]
    excluded = [position for position in members if not result.selected[position]]
    return (kept + excluded)[: GRID_SIDE * GRID_SIDE]


def _titles(result: SelectionResult) -> list[tuple[str, str, str]]:
    """Three title lines per bucket: number, id and counts; then its name in two halves.

    The name splits before its centre words: the scene (light, colour) on the
    second line, the layout (centre, corner) on the third.
    """
    titles = []
    for bucket in result.buckets:
        words = bucket.label.split(", ")
        split = next((i for i, word in enumerate(words) if "centre" in word), len(words))
        titles.append(
            (
                f"#{bucket.rank} (id {bucket.key}): {bucket.kept} kept of {bucket.size}",
                ", ".join(words[:split]),
                ", ".join(words[split:]),
            )
        )
    return titles


def _draw_legend(
    draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, top: int
) -> None:
    """One line: what the frame colours mean and in which order images are shown."""
    x = GAP
    entries = (
        (KEPT_COLOUR, "kept"),
        (EXCLUDED_COLOUR, "excluded"),
        (UNREADABLE_COLOUR, "unreadable"),
    )
    for colour, word in entries:
        draw.rectangle((x, top, x + LEGEND_SWATCH - 1, top + LEGEND_SWATCH - 1), fill=colour)
        x += LEGEND_SWATCH + 5
        draw.text((x, top), word, fill=(0, 0, 0), font=font)
        x += int(draw.textlength(word, font=font)) + 16
    note = f"each grid: kept images first, then excluded (up to {GRID_SIDE * GRID_SIDE})"
    draw.text((x, top), note, fill=(0, 0, 0), font=font)


def _legend_width(font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> int:
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    words = ("kept", "excluded", "unreadable")
    note = f"each grid: kept images first, then excluded (up to {GRID_SIDE * GRID_SIDE})"
    text = sum(int(probe.textlength(word, font=font)) + LEGEND_SWATCH + 21 for word in words)
    return GAP + text + int(probe.textlength(note, font=font)) + GAP


def thumbnail_sheet(result: SelectionResult) -> Image.Image:
    """One image holding a 5x5 grid per bucket, grids in a square layout, under a legend.

    Each grid shows up to 25 of the bucket's images (for detections, their
    boxes), the kept ones first and
    then the excluded ones (natural path order within each), framed green
    when kept and red when excluded (grey: unreadable now), and is titled with
    the bucket's number from the summary and chart, its counts and its label.
    """
    buckets = result.buckets
    if not buckets:
        return Image.new("RGB", (200, 40), BACKGROUND)
    columns, cell = _cell_size(len(buckets))
    framed = cell + 2 * BORDER
    grid_w = GRID_SIDE * framed
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    titles = _titles(result)
    font = _fitting_font(probe, [line for pair in titles for line in pair], grid_w - 2)
    legend_font = _font(LABEL_FONT_SIZE)
    line = _line_height(font)
    title_h = 3 * line + LINE_SPACING
    legend_h = max(LEGEND_SWATCH, _line_height(legend_font)) + 2 * GAP
    grid_h = title_h + GRID_SIDE * framed
    rows = math.ceil(len(buckets) / columns)
    width = max(columns * (grid_w + GAP), _legend_width(legend_font))
    sheet = Image.new("RGB", (width, legend_h + rows * (grid_h + GAP)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    _draw_legend(draw, legend_font, GAP)
    for slot, bucket in enumerate(buckets):
        left = (slot % columns) * (grid_w + GAP)
        top = legend_h + (slot // columns) * (grid_h + GAP)
        for n, text in enumerate(titles[slot]):
            colour = (0, 0, 0) if n == 0 else (60, 60, 60)
            draw.text((left + 1, top + n * line), text, fill=colour, font=font)
        for n, position in enumerate(shown_members(result, bucket.key)):
            x = left + (n % GRID_SIDE) * framed
            y = top + title_h + (n // GRID_SIDE) * framed
            colour = KEPT_COLOUR if result.selected[position] else EXCLUDED_COLOUR
            draw.rectangle((x, y, x + framed - 1, y + framed - 1), fill=colour)
            tile = _tile(result, position, cell)
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
    return _save_png(path, lambda handle: sheet.save(handle, format="PNG"))


def show_distribution(result: SelectionResult) -> None:
    """Show the distribution chart with pyplot (window or notebook)."""
    _require_matplotlib()
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=_figure_size(result))
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
    axes.set_title("Per bucket: kept images (green) first, then excluded (red)")
    figure.tight_layout()
    plt.show()
