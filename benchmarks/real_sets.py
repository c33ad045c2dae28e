"""A set of real-photograph sequences for ``bench_quality.py --sweep``.

Built from the photographs (and one animated GIF, a real video clip) that
scikit-image ships in ``skimage/data`` (``pip install scikit-image``; nothing is
downloaded). Groups, defined here, play the part of bursts:

* every photograph gives ``REGIONS_PER_PHOTO`` groups, one per disjoint
  region of it: a sequence of 3-12 crops whose window slides and zooms over the
  region (as a detector's box follows an animal), each re-encoded as JPEG at
  quality 60-95 and stored at 64-600 px;
* every photograph also gives one group "the same picture at several sizes":
  the whole photograph at 4-6 sizes and JPEG qualities;
* the stereo pair of ``stereo_motorcycle`` is one group;
* the GIF clip ``no_time_for_that_tiny.gif`` (24 frames of a real video) is one
  group, its frames enlarged eight times.

The *rare* scenes are the grey-level photographs (their groups stand for night IR
among colour days): every photograph whose three channels are equal everywhere
(``camera``, ``moon``, ``coins``, and also ``brick``, ``grass``, ``gravel`` and
``page``, which scikit-image ships grey), decided from the pixels, not from a
list. Each photograph is cut ``DEPLOYMENTS`` times, into its own folder
``<source>/deployment<k>`` (a camera's visits to one site: the same scene, new
sequences), so that a 1% target is a dozen picks or more, not three. Files are
numbered in sequence order, so groups are consecutive in natural order. Truth
(``group``, ``rare``, ``source``) goes to ``truth.csv``, with the same columns as
:mod:`sweep_sets` (``burst`` = group).

A second family, ``"other"``, is cut the same way from photographs that played
no part in any design or threshold choice: matplotlib's and scikit-learn's
sample photographs (``grace_hopper``, ``Minduka_Present_Blue_Pack``, ``china``,
``flower``) and scikit-image files the first family does not use
(``logo``; grey and rare: ``chessboard_RGB``, ``cell``, ``text``,
``microaneurysms``). A source whose package is missing is left out.

History: until 2.1.0's last benchmark run the sets had one deployment (330-600
images, three to six picks at 1%), and ``rare`` was "listed as grey", which
marked five grey photographs (``brick``, ``grass``, ``gravel``, ``page``,
``chessboard_RGB``) as colour days.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

TRUTH_NAME = "truth.csv"
LAYOUT = 2  # bumped when the sets change, so cached sets of an older layout are not reused
REGIONS_PER_PHOTO = 4
DEPLOYMENTS = 4
# Photographs of each family, in the order they are cut (the order the random draws
# follow); which are grey is read from their pixels (``_is_grey``).
PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "colorwheel",
    "brick",
    "grass",
    "gravel",
    "page",
    "camera",
    "moon",
    "coins",
)
GIF_NAME = "no_time_for_that_tiny.gif"
OTHER_PHOTOS = (
    "mpl:grace_hopper.jpg",
    "mpl:Minduka_Present_Blue_Pack.png",
    "sklearn:china.jpg",
    "sklearn:flower.jpg",
    "skimage-file:chessboard_RGB.png",
    "skimage-file:logo.png",
    "skimage-file:cell.png",
    "skimage-file:text.png",
    "skimage-file:microaneurysms.png",
)
FAMILIES = ("skimage", "other")


def _read(name: str) -> np.ndarray:
    """A photograph by name: ``skimage`` data function, or ``package:file``."""
    kind, _, file = name.partition(":")
    if not file:
        from skimage import data

        return np.asarray(getattr(data, name)())
    if kind == "mpl":
        from matplotlib import cbook

        with cbook.get_sample_data(file) as handle:
            return np.asarray(Image.open(handle).convert("RGB"))
    if kind == "sklearn":
        from sklearn.datasets import load_sample_image

        return np.asarray(load_sample_image(file))
    import skimage

    with Image.open(Path(skimage.__file__).parent / "data" / file) as opened:
        return np.asarray(opened.convert("RGB") if opened.mode != "L" else opened)


def _load(name: str) -> np.ndarray | None:
    try:
        image = _read(name)
    except Exception:  # noqa: BLE001 - a source that needs a download or a package is left out
        return None
    if image.dtype != np.uint8:
        image = np.clip(image * (255.0 / max(float(image.max()), 1e-9)), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return image[:, :, :3]


def _is_grey(photo: np.ndarray) -> bool:
    """Whether a photograph has no colour: its three channels are equal everywhere."""
    return bool(np.all(photo[..., 0] == photo[..., 1]) and np.all(photo[..., 1] == photo[..., 2]))


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _region_sequence(photo: np.ndarray, region: int, rng: np.random.Generator) -> list[Image.Image]:
    """Crops sliding and zooming inside one quarter-width band of the photo."""
    height, width = photo.shape[:2]
    band = width // REGIONS_PER_PHOTO
    x0 = region * band
    length = int(rng.integers(3, 13))
    box = rng.uniform(0.5, 0.9) * min(band, height)
    cx, cy = x0 + band / 2, height / 2
    out = []
    for _ in range(length):
        size = box * rng.uniform(0.85, 1.15)
        left = np.clip(cx + rng.uniform(-0.15, 0.15) * size - size / 2, x0, x0 + band - size)
        top = np.clip(cy + rng.uniform(-0.15, 0.15) * size - size / 2, 0, height - size)
        crop = photo[int(top) : int(top + size), int(left) : int(left + size)]
        side = int(rng.integers(64, 601))
        out.append(Image.fromarray(crop).resize((side, side), Image.Resampling.BILINEAR))
    return out


def make_real_set(root: str | os.PathLike[str], seed: int = 0, family: str = "skimage") -> Path:
    """Write the real-photograph set of ``family`` into ``root`` with ``truth.csv``."""
    import skimage

    out = Path(root)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    group = 0

    def write(folder: Path, source: str, images: list[Image.Image], rare: bool) -> None:
        nonlocal group
        folder.mkdir(parents=True, exist_ok=True)
        start = len(list(folder.iterdir()))
        for offset, image in enumerate(images):
            path = folder / f"{source}_{start + offset + 1:04d}.jpg"
            path.write_bytes(_jpeg(image, int(rng.integers(60, 96))))
            rows.append({"path": str(path), "burst": group, "rare": int(rare), "source": source})
        group += 1

    names = PHOTOS if family == "skimage" else OTHER_PHOTOS
    for full_name in names:
        photo = _load(full_name)
        if photo is None:
            continue
        name = Path(full_name.partition(":")[2] or full_name).stem
        rare = _is_grey(photo)
        for deployment in range(DEPLOYMENTS):
            folder = out / name / f"deployment{deployment + 1}"
            for region in range(REGIONS_PER_PHOTO):
                write(folder, name, _region_sequence(photo, region, rng), rare)
            whole = Image.fromarray(photo)
            sizes = rng.integers(64, 601, size=int(rng.integers(4, 7)))
            scaled = [
                whole.resize((int(s), max(16, int(s * photo.shape[0] / photo.shape[1]))))
                for s in sizes
            ]
            write(folder, name, scaled, rare)
    if family != "skimage":
        return _write_truth(out, rows)
    from skimage import data

    left, right, _ = data.stereo_motorcycle()
    write(out / "stereo", "stereo", [Image.fromarray(left), Image.fromarray(right)], False)
    gif = Path(skimage.__file__).parent / "data" / GIF_NAME
    if gif.exists():
        clip = Image.open(gif)
        frames = []
        for index in range(clip.n_frames):
            clip.seek(index)
            frame = clip.convert("RGB")
            frames.append(frame.resize((frame.size[0] * 8, frame.size[1] * 8)))
        write(out / "clip", "clip", frames, False)
    return _write_truth(out, rows)


def _write_truth(out: Path, rows: list[dict[str, object]]) -> Path:
    with open(out / TRUTH_NAME, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "burst", "rare", "source"])
        writer.writeheader()
        writer.writerows(rows)
    return out


def real_set_name(seed: int, family: str = "skimage") -> str:
    return f"real-s{seed}" if family == "skimage" else f"real-{family}-s{seed}"


def ensure_real_set(data_dir: Path, seed: int = 0, family: str = "skimage") -> Path | None:
    """The cached real set's folder (made atomically if missing); None without scikit-image."""
    try:
        import skimage  # noqa: F401
    except ImportError:
        return None
    root = data_dir / f"{real_set_name(seed, family)}.layout{LAYOUT}"
    if (root / TRUTH_NAME).exists():
        return root
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=".real.", dir=data_dir))
    try:
        make_real_set(partial, seed, family)
        text = (partial / TRUTH_NAME).read_text().replace(str(partial), str(root))
        (partial / TRUTH_NAME).write_text(text)
        os.replace(partial, root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return root
