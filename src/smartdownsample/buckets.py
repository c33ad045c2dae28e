"""Stage 3: one bucket id per image from its features.

A bucket id packs five coarse features into 7 bits (at most 128 buckets)::

    bit 6-5  structure   two dHash centre bits (edges where the animal is)
    bit 4    pattern     top-left aHash bit (brightness layout)
    bit 3    colour      1 = colour, 0 = grayscale (night infrared)
    bit 2    dark        1 = dark, 0 = bright
    bit 1-0  theme       0 neutral, 1 red, 2 green, 3 blue (colour images only)

Thresholds are those of the 1.x release, so a bucket means the same thing to
users coming from it, with one exception: with the default strategy
(``"burst"``) grayscale is judged per pixel (mean chroma below
:data:`GRAYSCALE_CHROMA_THRESHOLD`), because the 1.x rule (variance of the
three channel means below 100), kept for ``strategy="spec"``, lets colours
cancel out: an orange animal on a blue sky has channel means 136/149/148.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "MAX_BUCKETS",
    "bucket_ids",
    "bucket_label",
    "decode_bucket",
    "is_colour",
    "key_distance",
    "scene_of",
]

GRAYSCALE_VARIANCE_THRESHOLD = 100.0
"""1.x rule (``strategy="spec"``): variance of the three channel means below
which an image is grayscale. IR night images have R = G = B (variance ~0),
but so, nearly, does a colourful picture whose colours balance out."""

GRAYSCALE_CHROMA_THRESHOLD = 12.0
"""Default rule: mean per-pixel chroma (``features.chroma``: ``max - min`` of
R, G, B per thumbnail pixel, grey levels) below which an image is grayscale.
Measured with ``benchmarks/grayscale_threshold.py`` through the package's
decoder: 84 gray frames (scikit-image's camera, moon, coins, brick, grass,
gravel, page, clock_motion and six colour photos turned gray, as quality-75
JPEGs, plain, with faint IR tints of 3-6 grey levels and with sensor noise)
measure 0.0-8.0; 31 colour frames (astronaut, coffee, chelsea, rocket,
motorcycle, grace_hopper, whole and as quarter crops) 17.9-152.5. 12 lies
between with a margin of 4 and 6 grey levels (near the geometric mean of 8
and 17.9). The 1.x rule misjudged 8 of those colour frames. On the
synthetic data set night IR frames measure 0.0 and day frames 22-120."""

DARK_THRESHOLD = 128.0
"""Mean of all RGB values below which an image counts as dark (mid-scale)."""

THEME_MIN_CHANNEL_MEAN = 140.0
"""A colour image has a red/green/blue theme only if that channel's mean is the
largest and above this; otherwise it is neutral."""

STRUCTURE_SHIFT = 5
PATTERN_SHIFT = 4
COLOUR_SHIFT = 3
DARK_SHIFT = 2
THEME_MASK = 0b11
STRUCTURE_MASK = 0b11

THEME_NEUTRAL, THEME_RED, THEME_GREEN, THEME_BLUE = 0, 1, 2, 3
THEME_NAMES = ("neutral", "red", "green", "blue")

MAX_BUCKETS = 128
"""4 structure x 2 pattern x 2 colour x 2 dark x 4 theme."""


def is_colour(features: NDArray[np.void], strategy: str = "burst") -> NDArray[np.bool_]:
    """Whether each image counts as colour (not grayscale) under a strategy's rule.

    ``"spec"``: variance of the channel means at least
    :data:`GRAYSCALE_VARIANCE_THRESHOLD` (1.x); any other strategy: mean
    per-pixel chroma at least :data:`GRAYSCALE_CHROMA_THRESHOLD`.

    Examples
    --------
    >>> from smartdownsample.features import empty_features
    >>> rows = empty_features(1)
    >>> rows["mean_rgb"] = [[136, 149, 148]]; rows["chroma"] = 120  # orange on blue
    >>> is_colour(rows).tolist(), is_colour(rows, "spec").tolist()
    ([True], [False])
    """
    if strategy == "spec":
        variance = features["mean_rgb"].astype(np.float64).var(axis=1)
        spec: NDArray[np.bool_] = variance >= GRAYSCALE_VARIANCE_THRESHOLD
        return spec
    chroma: NDArray[np.bool_] = features["chroma"] >= GRAYSCALE_CHROMA_THRESHOLD
    return chroma


def bucket_ids(features: NDArray[np.void], strategy: str = "burst") -> NDArray[np.int16]:
    """Bucket id (0..127) of every feature row.

    ``strategy`` chooses the grayscale rule (see :func:`is_colour`); the
    other fields are the same for every strategy.

    Examples
    --------
    >>> from smartdownsample.features import empty_features
    >>> rows = empty_features(2)
    >>> rows["mean_rgb"] = [[40, 40, 40], [60, 180, 70]]
    >>> rows["chroma"] = [0, 110]
    >>> [bucket_label(int(b)) for b in bucket_ids(rows)]  # doctest: +NORMALIZE_WHITESPACE
    ['night IR (grey), dark, plain centre, dark top-left',
     'day colour, dark, green, plain centre, dark top-left']
    """
    means = features["mean_rgb"].astype(np.float64)
    colour = is_colour(features, strategy)
    dark = means.mean(axis=1) < DARK_THRESHOLD
    strongest = means.argmax(axis=1)
    themed = colour & (means.max(axis=1) > THEME_MIN_CHANNEL_MEAN)
    theme = np.where(themed, strongest + 1, THEME_NEUTRAL)
    ids = (
        (features["structure"].astype(np.int16) & STRUCTURE_MASK) << STRUCTURE_SHIFT
        | (features["ahash_bit"].astype(np.int16) & 1) << PATTERN_SHIFT
        | colour.astype(np.int16) << COLOUR_SHIFT
        | dark.astype(np.int16) << DARK_SHIFT
        | theme.astype(np.int16)
    )
    result: NDArray[np.int16] = ids.astype(np.int16)
    return result


def decode_bucket(bucket: int) -> dict[str, int]:
    """Split a bucket id into its fields.

    Examples
    --------
    >>> decode_bucket(0b1011110)
    {'structure': 2, 'pattern': 1, 'colour': 1, 'dark': 1, 'theme': 2}
    """
    return {
        "structure": (bucket >> STRUCTURE_SHIFT) & STRUCTURE_MASK,
        "pattern": (bucket >> PATTERN_SHIFT) & 1,
        "colour": (bucket >> COLOUR_SHIFT) & 1,
        "dark": (bucket >> DARK_SHIFT) & 1,
        "theme": bucket & THEME_MASK,
    }


STRUCTURE_WORDS = (
    "plain centre",
    "edge below centre",
    "edge above centre",
    "edges through centre",
)
"""The structure bits in words: at the two centre cells of the dHash grid, is
there an edge (the left side brighter than the right), as an animal's outline
makes? Index = the 2-bit structure value (upper bit, lower bit)."""

THEME_WORDS = ("neutral tones", "red-brown", "green", "blue")
"""The colour theme in words: the dominant channel of a colour image (red
for soil, bark and fur; green for vegetation; blue for sky, snow, water)."""


def bucket_label(bucket: int) -> str:
    """Every field of a bucket id in words a camera-trap user reads at a glance.

    Unique per bucket id (colour images name their theme, grey ones cannot
    have one), e.g. ``"night IR (grey), dark, plain centre, dark top-left"``.
    Shown in the summary, charts, thumbnails, manifest, report and HTML
    report, next to the numeric id.

    Examples
    --------
    >>> bucket_label(0)
    'night IR (grey), bright, plain centre, dark top-left'
    >>> bucket_label(0b1111110)
    'day colour, dark, green, edges through centre, bright top-left'
    """
    fields = decode_bucket(bucket)
    parts = ["day colour" if fields["colour"] else "night IR (grey)"]
    parts.append("dark" if fields["dark"] else "bright")
    if fields["colour"]:
        parts.append(THEME_WORDS[fields["theme"]])
    elif fields["theme"]:
        parts.append(f"theme {fields['theme']}")  # never made by bucket_ids; still unique
    parts.append(STRUCTURE_WORDS[fields["structure"]])
    parts.append("bright top-left" if fields["pattern"] else "dark top-left")
    return ", ".join(parts)


def scene_of(keys: NDArray[np.integer]) -> NDArray[np.int64]:
    """Scene of each bucket id: 0 night IR (grey), 1 day colour.

    Examples
    --------
    >>> import numpy as np
    >>> scene_of(np.array([0b0100, 0b1001, 0b1101100])).tolist()
    [0, 1, 1]
    """
    result: NDArray[np.int64] = (np.asarray(keys, dtype=np.int64) >> COLOUR_SHIFT) & 1
    return result


def key_distance(a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.int64]:
    """Distance between bucket ids: how many of their features differ.

    Structure counts its two bits separately; the scene features (colour,
    dark, theme) count double, because they separate looks that matter most
    (night vs day, snow vs forest).

    Examples
    --------
    >>> import numpy as np
    >>> key_distance(np.array([0]), np.array([0b1101100])).tolist()
    [6]
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    diff = a ^ b
    structure = ((diff >> STRUCTURE_SHIFT) & 1) + ((diff >> (STRUCTURE_SHIFT + 1)) & 1)
    pattern = (diff >> PATTERN_SHIFT) & 1
    scene = ((diff >> COLOUR_SHIFT) & 1) + ((diff >> DARK_SHIFT) & 1) + ((diff & THEME_MASK) != 0)
    result: NDArray[np.int64] = structure + pattern + 2 * scene
    return result
