"""A browsable HTML report of a selection: one self-contained file.

The page opens offline in any browser (no server, no network, no script or
font from elsewhere): a header with the run and the distribution chart (inline
SVG), then one section per bucket, largest first, with its readable name, its
counts, its kept images and a sample of the excluded ones as thumbnails. The
frames of one burst are shown together, the kept frame marked, so a reader
sees at a glance that a burst gave one frame, not five. Unreadable files are
listed with their reasons. For ``balance`` each class gets a section of its
own holding its buckets. For a selection of detections (a result with
``items``) every thumbnail shows the detection's box, captioned with its
label, not the whole frame.

Thumbnails are small JPEGs embedded as ``data:`` URIs. They are made after the
selection by decoding only the images shown, at the smallest DCT scale that
gives the thumbnail size (the feature pass keeps 40 bytes an image, not
pictures, so there is nothing to reuse); a budget of images and bytes keeps a
report of a million-image class a few megabytes and quick to open.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._version import __version__
from .buckets import bucket_label
from .outputs import atomic_file
from .report import count_noun

if TYPE_CHECKING:
    from .result import BucketStats, SelectionResult

__all__ = ["ClassSection", "html_report", "save_html"]

logger = logging.getLogger(__name__)

THUMB_SIDE = 112
"""Longest side of a thumbnail in pixels: enough to tell day from night and a
deer from a fox, small enough (3-5 KB as JPEG) to embed thousands."""

THUMB_QUALITY = 70
"""JPEG quality of the thumbnails; artefacts are invisible at this size."""

MAX_KEPT_UNITS = 60
"""Kept bursts (or single images) shown per bucket; the rest are counted."""

MAX_EXCLUDED_UNITS = 12
"""Excluded bursts shown per bucket, spread over the bucket in path order."""

MAX_FRAMES_PER_UNIT = 4
"""Frames shown of one burst: the kept frame and its nearest neighbours."""

MAX_THUMBNAILS = 3000
"""Thumbnails in one report at most (about 12 MB embedded); buckets share it
so that every bucket is shown, small ones whole."""

MAX_UNREADABLE_LISTED = 1000
"""Unreadable files named in the report; the rest are counted."""

THUMB_WORKERS = 4
"""Threads decoding thumbnails (Pillow releases the GIL while decoding)."""

KEPT_COLOUR = "#2e8b57"
EXCLUDED_COLOUR = "#c0392b"


@dataclass(frozen=True)
class ClassSection:
    """One class of a ``balance`` run: its name, images and selection (None: kept whole).

    ``noun`` names what the class holds ("image", or "item" for detector output).
    """

    name: str
    paths: Sequence[str]
    result: SelectionResult | None
    noun: str = "image"


Box = tuple[float, float, float, float]
_Picture = tuple[str, "Box | None"]
"""What a thumbnail shows: a file, and the normalised box cut from it (None: all of it)."""


@dataclass
class _Unit:
    """A burst (or a single image) of one bucket: positions in natural order."""

    members: list[int]
    kept: list[int]


@dataclass
class _Page:
    """Thumbnails to make, and the HTML being built."""

    wanted: dict[_Picture, str] = field(default_factory=dict)
    """Each picture shown -> the slot its thumbnail fills in the text."""
    parts: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- thumbnails


def thumbnail_jpeg(path: str, side: int = THUMB_SIDE, box: Box | None = None) -> bytes | None:
    """A small JPEG of the image at ``path`` (EXIF orientation applied), or None.

    JPEGs are decoded at reduced size in the DCT domain (Pillow's ``draft``),
    so a full camera-trap frame costs a few milliseconds. With ``box``
    (normalised ``x, y, w, h`` of the oriented image, as detector output gives
    it) the thumbnail shows that box, decoded at the scale that leaves the box
    at least ``side`` pixels.

    Examples
    --------
    >>> import os, tempfile
    >>> from PIL import Image
    >>> path = os.path.join(tempfile.mkdtemp(), "a.jpg")
    >>> Image.new("RGB", (640, 480), "green").save(path)
    >>> data = thumbnail_jpeg(path)
    >>> data[:2] == b"\\xff\\xd8"
    True
    >>> Image.open(io.BytesIO(thumbnail_jpeg(path, box=(0.5, 0.5, 0.25, 0.5)))).size  # 160 x 240
    (75, 112)
    """
    from PIL import Image, ImageOps

    from .loading import box_pixels, to_rgb

    try:
        with Image.open(path) as image:
            # The box is in oriented coordinates: ask for its smaller side on both axes.
            scale = 1.0 if box is None else 1.0 / max(min(box[2], box[3]), 1e-3)
            wanted = min(int(side * scale) + 1, 1 << 16)
            image.draft("RGB", (wanted, wanted))
            oriented = ImageOps.exif_transpose(image)
            picture = to_rgb(oriented)  # 16-bit scaled, transparency on white, as features
            if box is not None:
                picture = picture.crop(box_pixels(box, *picture.size))
            picture.thumbnail((side, side))
            buffer = io.BytesIO()
            picture.save(buffer, "JPEG", quality=THUMB_QUALITY, optimize=True)
            return buffer.getvalue()
    except Exception as exc:  # noqa: BLE001 - a picture we cannot show is shown as missing
        logger.debug("no thumbnail for %s: %s", path, exc)
        return None


def _thumbnail_of(picture: _Picture) -> bytes | None:
    return thumbnail_jpeg(picture[0], THUMB_SIDE, picture[1])


def _make_thumbnails(pictures: Sequence[_Picture]) -> dict[_Picture, str | None]:
    """``data:`` URIs of the thumbnails of ``pictures`` (None where one cannot be made)."""
    with ThreadPoolExecutor(max_workers=THUMB_WORKERS) as pool:
        images = list(pool.map(_thumbnail_of, pictures))
    prefix = "data:image/jpeg;base64,"
    return {
        picture: None if data is None else prefix + base64.b64encode(data).decode()
        for picture, data in zip(pictures, images, strict=True)
    }


# ---------------------------------------------------------------- units


def _units(result: SelectionResult, key: int) -> list[_Unit]:
    """The bursts of bucket ``key`` in natural order, each with its kept members."""
    order = np.asarray(result.natural_order)
    in_bucket = result.bucket_ids[order] == key
    positions = order[in_bucket]
    bursts = result.burst_ids[positions]
    units: dict[int, _Unit] = {}
    for position, burst in zip(positions.tolist(), bursts.tolist(), strict=True):
        unit = units.setdefault(int(burst), _Unit([], []))
        unit.members.append(position)
        if result.selected[position]:
            unit.kept.append(position)
    return list(units.values())


def _frames_shown(unit: _Unit, limit: int) -> list[int]:
    """Every kept frame of a burst and their nearest neighbours, up to ``limit``, in order."""
    limit = max(limit, len(unit.kept))
    if len(unit.members) <= limit:
        return unit.members
    anchors = [unit.members.index(p) for p in unit.kept] or [len(unit.members) // 2]
    distance = np.min(
        np.abs(np.arange(len(unit.members))[:, None] - np.array(anchors)[None, :]), axis=1
    )
    chosen = np.sort(np.argsort(distance, kind="stable")[:limit])
    return [unit.members[int(i)] for i in chosen]


def _spread(items: Sequence[_Unit], count: int) -> list[_Unit]:
    """``count`` items spread evenly over ``items`` (all of them if fewer)."""
    if len(items) <= count:
        return list(items)
    picks = np.linspace(0, len(items) - 1, count).round().astype(np.int64)
    return [items[int(i)] for i in np.unique(picks)]


def _budgets(buckets: Sequence[BucketStats], total: int) -> dict[int, int]:
    """Thumbnails each bucket may show: an equal share, what small buckets leave to big ones."""
    budgets: dict[int, int] = {}
    wants = {b.key: min(b.size, (MAX_KEPT_UNITS + MAX_EXCLUDED_UNITS) * 2) for b in buckets}
    left, open_keys = total, sorted(wants, key=lambda k: wants[k])
    while open_keys:
        share = left // len(open_keys)
        key = open_keys.pop(0)
        budgets[key] = min(wants[key], max(share, 1))
        left -= budgets[key]
    return budgets


# ---------------------------------------------------------------- HTML pieces


def _e(text: object) -> str:
    """Text for HTML; NUL (which marks thumbnail slots, never in a path) is replaced."""
    return html.escape(str(text).replace("\x00", "\ufffd"), quote=True)


def _file_uri(path: str) -> str:
    try:
        return Path(os.path.abspath(path)).as_uri()
    except ValueError:
        return ""


def _picture(result: SelectionResult, position: int) -> tuple[_Picture, str]:
    """What the thumbnail of ``position`` shows, and its caption."""
    path = str(result.paths[position])
    name = os.path.basename(path)
    items = result.items
    if items is None:
        return (path, None), name
    from .formats import UNCLASSIFIED

    label = items.label[position]
    what = items.category[position] if label == UNCLASSIFIED else label
    confidence = float(items.confidence[position])
    caption = f"{what}{'' if np.isnan(confidence) else f' {confidence:.2f}'} · {name}"
    if np.isnan(items.box[position]).any():  # a whole-image item
        return (path, None), caption
    x, y, w, h = (float(v) for v in items.box[position])
    return (path, (x, y, w, h)), caption


def _thumb(page: _Page, result: SelectionResult, position: int) -> str:
    picture, caption = _picture(result, position)
    path = picture[0]
    state = "kept" if result.selected[position] else "excluded"
    slot = page.wanted.setdefault(picture, f"\x00{len(page.wanted)}\x00")
    return (
        f'<figure class="t {state}"><a href="{_e(_file_uri(path))}" title="{_e(path)}">'
        f"{slot}</a><figcaption>{_e(caption)}</figcaption></figure>"
    )


def _unit_html(page: _Page, result: SelectionResult, unit: _Unit, limit: int) -> str:
    shown = _frames_shown(unit, limit)
    frames = "".join(_thumb(page, result, p) for p in shown)
    more = len(unit.members) - len(shown)
    extra = f'<span class="more">+{more}</span>' if more > 0 else ""
    kind = "burst" if len(unit.members) > 1 else "single"
    title = f"burst of {len(unit.members)} frames" if kind == "burst" else "single image"
    return f'<div class="unit {kind}" title="{_e(title)}">{frames}{extra}</div>'


def _bucket_html(page: _Page, result: SelectionResult, bucket: BucketStats, budget: int) -> str:
    units = _units(result, bucket.key)
    kept_units = [u for u in units if u.kept]
    excluded_units = [u for u in units if not u.kept]
    shown_units = max(1, min(len(units), MAX_KEPT_UNITS + MAX_EXCLUDED_UNITS))
    per_unit = max(1, min(MAX_FRAMES_PER_UNIT, budget // shown_units))
    n_kept_shown = min(len(kept_units), MAX_KEPT_UNITS, max(1, budget * 3 // (4 * per_unit)))
    n_excluded_shown = min(
        len(excluded_units),
        MAX_EXCLUDED_UNITS,
        max(0, (budget - n_kept_shown * per_unit) // per_unit),
    )
    shown_kept = _spread(kept_units, n_kept_shown)
    shown_excluded = _spread(excluded_units, n_excluded_shown)
    kept_html = "".join(_unit_html(page, result, u, per_unit) for u in shown_kept)
    excluded_html = "".join(_unit_html(page, result, u, per_unit) for u in shown_excluded)
    kept_note = (
        f" (showing {len(shown_kept)} of {len(kept_units)} kept bursts)"
        if len(shown_kept) < len(kept_units)
        else ""
    )
    excluded_note = f"a sample of {len(shown_excluded)} of {len(excluded_units)} excluded bursts"
    return (
        f'<section class="bucket" id="bucket-{bucket.key}" data-key="{bucket.key}" '
        f'data-size="{bucket.size}" data-kept="{bucket.kept}">'
        f"<h3>#{bucket.rank} {_e(bucket_label(bucket.key))} "
        f'<span class="id">bucket id {bucket.key}</span></h3>'
        f'<p class="counts">{count_noun(bucket.size, "image")}, kept {bucket.kept:,} '
        f"({bucket.rate:.1%}); bursts covered {bucket.bursts_kept:,} of {bucket.n_bursts:,}</p>"
        f'<h4>kept{_e(kept_note)}</h4><div class="strip kept-strip">{kept_html or "none"}</div>'
        f"<h4>excluded: {_e(excluded_note)}</h4>"
        f'<div class="strip excluded-strip">{excluded_html or "none"}</div>'
        "</section>"
    )


def _chart_svg(result: SelectionResult) -> str:
    """Kept (green) over excluded (red) bars per bucket, largest first, as inline SVG."""
    buckets = result.buckets
    if not buckets:
        return ""
    width, height, pad = max(480, 14 * len(buckets) + 60), 180, 30
    tallest = max(b.size for b in buckets)
    bar = (width - 2 * pad) / len(buckets)
    shapes = []
    for i, b in enumerate(buckets):
        x = pad + i * bar
        full = (height - 2 * pad) * b.size / tallest
        kept = (height - 2 * pad) * b.kept / tallest
        y = height - pad - full
        shapes.append(
            f"<g><title>#{b.rank} {_e(bucket_label(b.key))}: {b.kept:,} kept of {b.size:,}"
            f"</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar * 0.8:.1f}" height="{full - kept:.1f}" '
            f'fill="{EXCLUDED_COLOUR}"/>'
            f'<rect x="{x:.1f}" y="{height - pad - kept:.1f}" width="{bar * 0.8:.1f}" '
            f'height="{kept:.1f}" fill="{KEPT_COLOUR}"/></g>'
        )
    return (
        f'<svg class="chart" role="img" aria-label="kept and excluded images per bucket" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<text x="{pad}" y="16" font-size="12">images per bucket, largest first '
        f"(green kept, red excluded)</text>{''.join(shapes)}"
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#555"/></svg>'
    )


def _failures_html(failures: Sequence[tuple[str, str]]) -> str:
    if not failures:
        return '<section id="failures"><h2>Unreadable files</h2><p>none</p></section>'
    rows = "".join(
        f'<tr><td><a href="{_e(_file_uri(path))}">{_e(path)}</a></td><td>{_e(reason)}</td></tr>'
        for path, reason in failures[:MAX_UNREADABLE_LISTED]
    )
    more = len(failures) - MAX_UNREADABLE_LISTED
    tail = f"<p>... and {more:,} more (all are in the report and manifest)</p>" if more > 0 else ""
    return (
        f'<section id="failures"><h2>Unreadable files ({len(failures):,})</h2>'
        f'<table class="failures"><tr><th>file</th><th>reason</th></tr>{rows}</table>{tail}'
        "</section>"
    )


def _selection_html(page: _Page, result: SelectionResult, budget: int) -> str:
    budgets = _budgets(result.buckets, budget)
    return _chart_svg(result) + "".join(
        _bucket_html(page, result, bucket, budgets[bucket.key]) for bucket in result.buckets
    )


def _run_table(run: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{_e(key)}</th><td>{_e(value)}</td></tr>"
        for key, value in run.items()
        if value is not None
    )
    return f'<table class="run">{rows}</table>'


_STYLE = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#222}
h1{font-size:22px}h2{font-size:19px;margin-top:1.6em}h3{font-size:16px;margin:1.2em 0 .2em}
h4{font-size:13px;margin:.5em 0 .2em;color:#555;font-weight:600}
.id{color:#777;font-weight:normal;font-size:13px}.counts{margin:0;color:#444}
table.run th{text-align:left;padding-right:1em;font-weight:600}
table.failures{border-collapse:collapse}table.failures td,table.failures th{border:1px solid #ccc;
padding:2px 6px;text-align:left}
.strip{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}
.unit{display:flex;gap:2px;padding:3px;border:1px dashed #bbb;border-radius:4px}
.unit.single{border-color:transparent}
.t{margin:0;width:118px}.t img{display:block;box-sizing:border-box;max-width:118px;
max-height:118px;border:3px solid #999}.t.kept img{border:4px solid #2e8b57}
.t.excluded img{border-color:#c0392b;opacity:.85}
.t figcaption{font-size:11px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.t.kept figcaption{color:#1e6b3f;font-weight:600}.t.kept figcaption::before{content:"kept \\00b7  "}
.more{align-self:center;color:#555;font-size:12px;padding:0 4px}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:-1px}
section.class{border-top:2px solid #ddd;margin-top:1.5em}
"""


def _document(title: str, body: str, run: Mapping[str, Any]) -> str:
    legend = (
        '<p class="legend">'
        f'<span style="background:{KEPT_COLOUR}"></span>kept'
        f'<span style="background:{EXCLUDED_COLOUR}"></span>excluded'
        '<span style="border:1px dashed #bbb"></span>frames of one burst</p>'
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1>{_run_table(run)}{legend}{body}</body></html>\n"
    )


def _fill_thumbnails(page: _Page, text: str) -> str:
    """Put each embedded thumbnail in its slot (a note where one cannot be made)."""
    uris = _make_thumbnails(list(page.wanted))
    pieces = text.split("\x00")
    slots = {slot.strip("\x00"): picture for picture, slot in page.wanted.items()}
    for i in range(1, len(pieces), 2):
        picture = slots[pieces[i]]
        uri = uris[picture]
        alt = _e(os.path.basename(picture[0]))
        pieces[i] = (
            f'<img alt="{alt}" src="{uri}">' if uri else '<span class="missing">no preview</span>'
        )
    return "".join(pieces)


def _run_info(result: SelectionResult | None, extra: Mapping[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = {}
    if result is not None:
        info.update(
            {
                ("images" if result.items is None else "items"): f"{len(result.paths):,}",
                "target": f"{result.target_count:,}",
                "kept": f"{result.n_selected:,}",
                "unreadable": f"{len(result.failures):,}",
                "strategy": result.strategy,
                "seed": result.random_seed,
                "buckets": len(result.buckets),
                "bursts found / covered": f"{result.n_bursts:,} / {result.bursts_covered:,}",
            }
        )
    info.update(extra)
    info.setdefault("created", dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %z"))
    info.setdefault("version", f"smartdownsample {__version__}")
    return info


def html_report(
    result: SelectionResult | None = None,
    *,
    classes: Sequence[ClassSection] = (),
    run: Mapping[str, Any] | None = None,
    title: str = "smartdownsample selection",
) -> str:
    """The report page as text: one selection, or the classes of a ``balance`` run.

    ``run`` adds rows to the header (inputs, time, ...) in the caller's words.
    """
    page = _Page()
    if result is not None:
        body = _selection_html(page, result, MAX_THUMBNAILS)
        failures = [(f.path, f.reason) for f in result.failures]
    else:
        body, failures = (
            _classes_html(page, classes),
            [(f.path, f.reason) for c in classes if c.result for f in c.result.failures],
        )
    body += _failures_html(failures)
    return _fill_thumbnails(page, _document(title, body, _run_info(result, run or {})))


def _classes_html(page: _Page, classes: Sequence[ClassSection]) -> str:
    cut = [c for c in classes if c.result is not None]
    budget = MAX_THUMBNAILS // max(1, len(cut))
    nouns = {c.noun for c in classes}
    noun = nouns.pop() if len(nouns) == 1 else "item"
    parts = [
        f"<h2>Classes</h2><table class='run'><tr><th>class</th><th>{noun}s</th><th>kept</th></tr>"
        + "".join(
            f"<tr><td><a href='#class-{i}'>{_e(c.name)}</a></td><td>{len(c.paths):,}</td>"
            f"<td>{(c.result.n_selected if c.result else len(c.paths)):,}</td></tr>"
            for i, c in enumerate(classes)
        )
        + "</table>"
    ]
    for i, section in enumerate(classes):
        if section.result is None:
            parts.append(
                f'<section class="class" id="class-{i}" data-class="{_e(section.name)}">'
                f"<h2>{_e(section.name)}</h2><p>kept whole: "
                f"{count_noun(len(section.paths), section.noun)}, not above the cap</p></section>"
            )
            continue
        parts.append(
            f'<section class="class" id="class-{i}" data-class="{_e(section.name)}">'
            f"<h2>{_e(section.name)}</h2>{_selection_html(page, section.result, budget)}"
            "</section>"
        )
    return "".join(parts)


def save_html(
    path: str | os.PathLike[str],
    result: SelectionResult | None = None,
    *,
    classes: Sequence[ClassSection] = (),
    run: Mapping[str, Any] | None = None,
    title: str = "smartdownsample selection",
) -> str:
    """Write the report page to ``path`` atomically; returns the path written."""
    text = html_report(result, classes=classes, run=run, title=title)
    with atomic_file(path) as handle:
        handle.write(text)
    return os.fspath(path)
