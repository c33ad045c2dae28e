"""The HTML report, opened in a real browser (headless Chromium driven by Playwright)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from PIL import Image

from images import solid, write_corrupt, write_jpeg
from smartdownsample import SelectionResult, downsample
from smartdownsample.buckets import bucket_label, decode_bucket
from smartdownsample.htmlreport import ClassSection, html_report, save_html
from smartdownsample.synthetic import make_dataset

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install pytest-playwright)"
)

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
"""As root in a container Chromium needs --no-sandbox; the network flags stop
background connections that this closed network would refuse."""


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright launches the system Chromium (no browser download)."""
    executable = next(filter(None, map(shutil.which, CHROMIUM_CANDIDATES)), None)
    if executable is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium)")
    return {**browser_type_launch_args, "executable_path": executable, "args": BROWSER_ARGS}


@pytest.fixture(scope="module")
def selection(tmp_path_factory: pytest.TempPathFactory) -> tuple[SelectionResult, list[Path]]:
    root = tmp_path_factory.mktemp("html")
    data = make_dataset(root / "camera", 160, seed=5)
    broken = [root / "camera" / "broken one.jpg", root / "camera" / "broken<two>.jpg"]
    for i, path in enumerate(broken):
        write_corrupt(path, seed=i)
    paths = [*data.paths, *map(str, broken)]
    result = downsample(paths, 20, show_progress=False, image_loading_errors="skip")
    return result, broken


def _open(page: Any, path: Path) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return errors


def _not_blank(png: Path) -> None:
    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    assert pixels.std() > 10, "the screenshot is blank"


def test_report_in_a_browser(
    page: Any, selection: tuple[SelectionResult, list[Path]], tmp_path: Path
) -> None:
    result, broken = selection
    report = tmp_path / "report.html"
    result.save_html(report)
    errors = _open(page, report)
    assert errors == []
    images = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
    assert len(images) > len(result.buckets) and min(images) > 0
    sections = page.evaluate(
        "Array.from(document.querySelectorAll('section.bucket')).map(s => "
        "[+s.dataset.key, +s.dataset.size, +s.dataset.kept, s.querySelector('h3').textContent])"
    )
    assert [(k, size, kept) for k, size, kept, _ in sections] == [
        (b.key, b.size, b.kept) for b in result.buckets
    ]
    for key, _, _, heading in sections:
        assert bucket_label(key) in heading and f"bucket id {key}" in heading
    kept_marked = page.evaluate("document.querySelectorAll('figure.t.kept').length")
    assert kept_marked == result.n_selected  # every kept image of 20 is shown, marked
    inputs = {os.path.realpath(p) for p in result.paths}
    hrefs = page.evaluate(
        "Array.from(document.querySelectorAll('figure.t a')).map(a => a.getAttribute('href'))"
    )
    for href in hrefs:
        target = unquote(urlparse(href).path)
        assert os.path.isfile(target) and os.path.realpath(target) in inputs
    failures = page.inner_text("#failures")
    for path in broken:
        assert str(path) in failures
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    _not_blank(shot)


def test_bursts_are_grouped_with_the_kept_frame_marked(
    page: Any, selection: tuple[SelectionResult, list[Path]], tmp_path: Path
) -> None:
    result, _ = selection
    report = tmp_path / "report.html"
    result.save_html(report)
    assert _open(page, report) == []
    units = page.evaluate(
        "Array.from(document.querySelectorAll('.kept-strip .unit')).map(u => "
        "Array.from(u.querySelectorAll('figure')).map(f => "
        "[f.querySelector('a').title, f.classList.contains('kept')]))"
    )
    by_path = {path: i for i, path in enumerate(result.paths)}
    for unit in units:
        bursts = {int(result.burst_ids[by_path[path]]) for path, _ in unit}
        assert len(bursts) == 1, "frames of one group come from one burst"
        assert any(kept for _, kept in unit), "a kept group shows its kept frame"


def test_hostile_names_are_text_not_markup(page: Any, tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    names = ["<img src=x onerror=alert(1)>.jpg", "a&b \"quoted\" 'single'.jpg", "caf\u00e9 #1.jpg"]
    for i, name in enumerate(names):
        write_jpeg(folder / name, solid((40 * i, 120, 200 - 40 * i)))
    result = downsample([str(folder / n) for n in names], 2, show_progress=False)
    report = tmp_path / "odd.html"
    result.save_html(report)
    assert _open(page, report) == []
    captions = page.evaluate(
        "Array.from(document.querySelectorAll('figcaption')).map(c => c.textContent)"
    )
    assert sorted(captions) == sorted(names)
    assert page.evaluate("document.querySelectorAll('img[src=x]').length") == 0


def test_balance_report_has_a_section_per_class(page: Any, tmp_path: Path) -> None:
    deer = make_dataset(tmp_path / "deer", 60, seed=1).paths
    owl = make_dataset(tmp_path / "owl", 8, seed=2).paths
    cut = downsample(deer, 10, show_progress=False)
    report = tmp_path / "balance.html"
    save_html(
        report,
        classes=[ClassSection("deer", deer, cut), ClassSection("owl", owl, None)],
        run={"command": "balance", "max per class": 10},
    )
    assert _open(page, report) == []
    classes = page.evaluate(
        "Array.from(document.querySelectorAll('section.class')).map(s => "
        "[s.dataset.class, s.querySelectorAll('section.bucket').length])"
    )
    assert classes == [["deer", len(cut.buckets)], ["owl", 0]]
    assert "kept whole" in page.inner_text("section.class[data-class=owl]")


# ---------------------------------------------------------------- without a browser


def test_bucket_names_are_unique_and_say_every_field() -> None:
    made = [b for b in range(128) if decode_bucket(b)["colour"] or not decode_bucket(b)["theme"]]
    names = [bucket_label(b) for b in range(128)]
    assert len(set(names)) == 128
    for bucket in made:
        name, fields = bucket_label(bucket), decode_bucket(bucket)
        assert ("night IR" in name) != bool(fields["colour"])
        assert ("dark," in name) == bool(fields["dark"])
        assert "top-left" in name and "centre" in name
        assert not re.search(r"\bs\d\b|\bp\d\b", name), "no codes in a readable name"


def test_report_size_is_bounded(selection: tuple[SelectionResult, list[Path]]) -> None:
    result, _ = selection
    text = html_report(result)
    assert text.count("<img ") <= 3000
    assert len(text.encode()) < 20 * 1024 * 1024
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert "\x00" not in text, "a thumbnail slot was left unfilled"


# ---------------------------------------------------------------- the command line


def _main(*args: object) -> int:
    from smartdownsample.cli import main

    return main([os.fspath(a) if isinstance(a, Path) else str(a) for a in args])


CLI_FAST = ["--no-progress", "--no-cache", "--workers", "2", "-q"]


def test_select_html_in_a_browser(page: Any, tmp_path: Path) -> None:
    photos = make_dataset(tmp_path / "photos", 90, seed=6).paths
    page_path = tmp_path / "out" / "report.html"
    kept = tmp_path / "out" / "kept.txt"
    assert _main("select", tmp_path / "photos", "--target", 9, "--html", page_path,
                 "--out", kept, *CLI_FAST) == 0  # fmt: skip
    assert _open(page, page_path) == []
    header = page.inner_text("table.run")
    assert "smartdownsample select" in header and str(tmp_path / "photos") in header
    assert page.evaluate("document.querySelectorAll('figure.t.kept').length") == 9
    assert min(page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")) > 0
    assert len(photos) == 90


def test_balance_html_in_a_browser(page: Any, tmp_path: Path) -> None:
    make_dataset(tmp_path / "crops" / "deer", 50, seed=1)
    make_dataset(tmp_path / "crops" / "owl", 6, seed=2)
    page_path = tmp_path / "balance.html"
    assert _main("balance", tmp_path / "crops", "--max-per-class", 10, "--html", page_path,
                 "--out", tmp_path / "kept.txt", *CLI_FAST) == 0  # fmt: skip
    assert _open(page, page_path) == []
    classes = page.evaluate(
        "Array.from(document.querySelectorAll('section.class')).map(s => s.dataset.class)"
    )
    assert classes == ["deer", "owl"]


def test_html_is_checked_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_dataset(tmp_path / "photos", 10, seed=3)
    existing = tmp_path / "report.html"
    existing.write_text("mine", encoding="utf-8")
    code = _main("select", tmp_path / "photos", "--target", 2, "--html", existing, *CLI_FAST)
    assert code == 2
    assert "--html" in capsys.readouterr().err and existing.read_text(encoding="utf-8") == "mine"
    assert _main("select", tmp_path / "photos", "--target", 2, "--html", tmp_path / "r.txt",
                 *CLI_FAST) == 2  # fmt: skip


def test_demo_writes_a_report_page(page: Any, tmp_path: Path) -> None:
    assert _main("demo", tmp_path / "demo", "--n-images", 120, *CLI_FAST) == 0
    report = tmp_path / "demo" / "report.html"
    assert _open(page, report) == []
    sections = page.evaluate("document.querySelectorAll('section.bucket').length")
    assert sections >= 3
    assert page.evaluate("document.querySelectorAll('.excluded-strip figure').length") > 0
    assert page.evaluate("document.querySelectorAll('.kept-strip figure').length") > 0
    shot = tmp_path / "demo.png"
    page.screenshot(path=str(shot))
    _not_blank(shot)


def _embedded_pictures(text: str) -> list[np.ndarray]:
    import base64
    import io

    found = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', text)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(b))).convert("RGB")) for b in found]


def test_detection_thumbnails_show_the_box_not_the_frame(tmp_path: Path) -> None:
    import json

    rng = np.random.default_rng(3)
    images = []
    for index in range(12):
        frame = np.zeros((240, 320, 3), dtype=np.uint8)
        frame[:] = (30, 160, 40)  # green vegetation
        x, y = rng.uniform(0.05, 0.6, size=2)
        left, top = int(x * 320), int(y * 240)
        frame[top : top + 96, left : left + 96] = (200, 30, 170) if index % 2 else (220, 60, 20)
        name = f"cam1/IMG_{index:04d}.jpg"
        (tmp_path / "cam1").mkdir(exist_ok=True)
        Image.fromarray(frame).save(tmp_path / name, quality=92)
        box = [left / 320, top / 240, 96 / 320, 96 / 240]
        images.append({"file": name, "detections": [{"category": "1", "conf": 0.9, "bbox": box}]})
    document = {
        "info": {"format_version": "1.4"},
        "detection_categories": {"1": "animal"},
        "images": images,
    }
    source = tmp_path / "md.json"
    source.write_text(json.dumps(document), encoding="utf-8")
    page_path = tmp_path / "report.html"
    sheet = tmp_path / "sheet.png"
    assert _main("select", source, "--target", 4, "--html", page_path, "--thumbnails", sheet,
                 "--out", tmp_path / "kept.txt", *CLI_FAST) == 0  # fmt: skip
    # The PNG sheet too: its tiles are boxes, so the frames' green is nowhere in it.
    pixels = np.asarray(Image.open(sheet).convert("RGB"), dtype=np.int64)
    vegetation = np.abs(pixels - np.array([30, 160, 40])).max(axis=2) < 25
    box_colour = (pixels[..., 0] > 150) & (pixels[..., 1] < 100)
    assert box_colour.sum() > 1000 and vegetation.sum() < 0.01 * box_colour.sum()
    text = page_path.read_text(encoding="utf-8")
    pictures = _embedded_pictures(text)
    assert len(pictures) >= 4  # at least the kept ones
    for picture in pictures:
        red, green, _ = picture.reshape(-1, 3).mean(axis=0)
        assert red > 150 and green < 100, "a thumbnail shows the frame, not its box"
    assert "animal 0.90 · IMG_" in text  # the category, as no species label was given
    assert "<th>items</th>" in text


def test_thumbnails_convert_colours_as_the_features_do(tmp_path: Path) -> None:
    """16-bit images are scaled (not clipped to white), transparency goes on white."""
    import io

    from smartdownsample.htmlreport import thumbnail_jpeg

    deep = tmp_path / "deep.png"
    Image.fromarray(np.full((40, 40), 117 * 257, dtype=np.uint16)).save(deep)
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (40, 40), (0, 200, 0, 128)).save(clear)
    means = {}
    for path in (deep, clear):
        data = thumbnail_jpeg(str(path))
        assert data is not None
        means[path.name] = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).mean(axis=(0, 1))
    assert np.allclose(means["deep.png"], 117, atol=3)
    assert np.allclose(means["clear.png"], (127, 227, 127), atol=4)
