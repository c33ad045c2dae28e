"""The burst finder on made-up sequences, and the burst-aware selection's guarantees."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartdownsample.bursts import (
    BURST_FLAT_CONTRAST,
    BURST_FLAT_MAX_COLOUR_SHIFT,
    BURST_MAX_COLOUR_SHIFT,
    BURST_MAX_HAMMING,
    BURST_MAX_SECONDS,
    BURST_TIMED_MAX_COLOUR_SHIFT,
    BurstRules,
    burst_links,
    find_bursts,
)
from smartdownsample.selection import (
    RARITY_CAP,
    RARITY_GAIN,
    home_buckets,
    rarity_weights,
    select_burst_aware,
    stride_positions,
    weighted_stride_positions,
)

NAN = float("nan")
GREY = (120.0, 120.0, 120.0)


def flip(value: int, bits: int, start: int = 0) -> int:
    """``value`` with ``bits`` consecutive bits flipped from bit ``start``."""
    return value ^ (((1 << bits) - 1) << start)


class Sequence:
    """Images in natural order, built frame by frame for a test."""

    def __init__(self) -> None:
        self.folders: list[int] = []
        self.hashes: list[int] = []
        self.colours: list[tuple[float, float, float]] = []
        self.times: list[float] = []
        self.contrast: list[float] = []

    def add(
        self,
        dhash: int,
        *,
        folder: int = 0,
        colour: tuple[float, float, float] = GREY,
        time: float = NAN,
        contrast: float = 10.0,
    ) -> Sequence:
        self.folders.append(folder)
        self.hashes.append(dhash)
        self.colours.append(colour)
        self.times.append(time)
        self.contrast.append(contrast)
        return self

    def bursts(self, *, with_contrast: bool = False, rules: BurstRules | None = None) -> list[int]:
        found = find_bursts(
            np.array(self.folders),
            np.array(self.hashes, dtype=np.uint64),
            np.array(self.colours),
            np.array(self.times),
            contrast=np.array(self.contrast) if with_contrast else None,
            rules=rules,
        )
        return [int(b) for b in found]


BASE = 0x0F0F_3C3C_A5A5_00FF
OTHER = BASE ^ 0xFFFF_FFFF  # 32 bits away: an unrelated image
THIRD = BASE ^ 0xFFFF_FFFF_0000_0000  # 32 bits from BASE, 64 from OTHER


def unrelated(count: int, seed: int, avoid: tuple[int, ...] = ()) -> list[int]:
    """``count`` random hashes more than 24 bits from each other and from ``avoid``."""
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    while len(chosen) < count:
        value = int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2))
        if all(bin(value ^ other).count("1") > 24 for other in (*chosen, *avoid)):
            chosen.append(value)
    return chosen


# --------------------------------------------------------------------------- found bursts


def test_three_bursts_of_near_identical_frames_are_found() -> None:
    seq = Sequence()
    for h in (BASE, flip(BASE, 3), flip(BASE, 5, 10)):
        seq.add(h)
    for h in (OTHER, flip(OTHER, 4), flip(OTHER, 2, 40), flip(OTHER, 6, 20)):
        seq.add(h)
    third = flip(BASE, 16, 48)  # a new animal: 16 bits from BASE, 48 from OTHER
    for h in (third, flip(third, 2)):
        seq.add(h)
    assert seq.bursts() == [0, 0, 0, 1, 1, 1, 1, 2, 2]


def test_burst_numbers_increase_from_zero_and_empty_input_works() -> None:
    seq = Sequence()
    for i in range(10):
        seq.add(BASE if i % 4 < 2 else OTHER)
    found = seq.bursts()
    assert found[0] == 0
    assert all(b - a in (0, 1) for a, b in itertools.pairwise(found))
    empty = find_bursts(np.zeros(0, int), np.zeros(0, np.uint64), np.zeros((0, 3)), np.zeros(0))
    assert empty.tolist() == []
    single = find_bursts(np.zeros(1, int), np.zeros(1, np.uint64), np.zeros((1, 3)), np.zeros(1))
    assert single.tolist() == [0]


def test_a_folder_change_breaks_a_burst_of_identical_images() -> None:
    seq = Sequence().add(BASE).add(BASE).add(BASE, folder=1).add(BASE, folder=1)
    assert seq.bursts() == [0, 0, 1, 1]
    timed = Sequence()
    for folder, second in ((0, 0.0), (0, 1.0), (1, 2.0), (1, 3.0)):
        timed.add(BASE, folder=folder, time=second)
    assert timed.bursts() == [0, 0, 1, 1]


def test_a_big_dhash_jump_breaks_a_burst_and_the_limit_is_inclusive() -> None:
    at_limit = flip(BASE, BURST_MAX_HAMMING)
    beyond = flip(BASE, BURST_MAX_HAMMING + 1)
    assert Sequence().add(BASE).add(at_limit).bursts() == [0, 0]
    assert Sequence().add(BASE).add(beyond).bursts() == [0, 1]
    assert Sequence().add(BASE).add(OTHER).add(OTHER).bursts() == [0, 1, 1]


def test_a_colour_jump_breaks_a_burst_and_small_drift_does_not() -> None:
    drift = [(120.0 + 4 * i, 118.0, 121.0 - 3 * i) for i in range(5)]  # steps of 4 levels
    seq = Sequence()
    for colour in drift:
        seq.add(BASE, colour=colour)
    assert seq.bursts() == [0] * 5
    limit = BURST_MAX_COLOUR_SHIFT
    ok = Sequence().add(BASE, colour=GREY).add(BASE, colour=(120.0 + limit, 120.0, 120.0))
    assert ok.bursts() == [0, 0]
    jump = Sequence().add(BASE, colour=GREY).add(BASE, colour=(120.0, 120.0 + limit + 0.5, 120.0))
    assert jump.bursts() == [0, 1]
    night_to_day = Sequence().add(BASE, colour=(40.0, 40.0, 40.0)).add(BASE, colour=(90, 140, 70))
    assert night_to_day.bursts() == [0, 1]


def test_an_exif_time_gap_breaks_identical_looking_frames() -> None:
    """Full frames of one place look alike; the camera's clock tells visits apart."""
    seq = Sequence()
    for second in (0.0, 1.0, 2.0, 300.0, 301.0, 302.0, 7200.0):
        seq.add(BASE, time=second)
    assert seq.bursts() == [0, 0, 0, 1, 1, 1, 2]
    at_limit = Sequence().add(BASE, time=0.0).add(BASE, time=BURST_MAX_SECONDS)
    assert at_limit.bursts() == [0, 0]
    beyond = Sequence().add(BASE, time=0.0).add(BASE, time=BURST_MAX_SECONDS + 0.5)
    assert beyond.bursts() == [0, 1]


def test_timed_frames_seconds_apart_stay_one_burst_whatever_their_dhash() -> None:
    """A blown-out or blocked frame's dHash is noise; its time still places it."""
    seq = Sequence().add(BASE, time=10.0).add(OTHER, time=11.0).add(flip(OTHER, 9), time=12.0)
    assert seq.bursts() == [0, 0, 0]


def test_timed_frames_with_a_light_switch_are_split() -> None:
    bright = (120.0 + BURST_TIMED_MAX_COLOUR_SHIFT + 1, 120.0, 120.0)
    seq = Sequence().add(BASE, time=0.0).add(BASE, time=1.0, colour=bright)
    assert seq.bursts() == [0, 1]


def test_images_without_exif_are_judged_on_looks() -> None:
    seq = Sequence()
    seq.add(BASE).add(flip(BASE, 4)).add(OTHER).add(flip(OTHER, 3))
    assert seq.bursts() == [0, 0, 1, 1]
    # One frame with a time and one without: looks decide too.
    mixed = Sequence().add(BASE, time=0.0).add(flip(BASE, 2)).add(OTHER, time=500.0)
    assert mixed.bursts() == [0, 0, 1]


def test_one_odd_frame_inside_a_burst_does_not_split_it_but_two_do() -> None:
    one = Sequence().add(BASE).add(flip(BASE, 2)).add(OTHER).add(flip(BASE, 3)).add(BASE)
    assert one.bursts() == [0, 0, 0, 0, 0]
    links = burst_links(
        np.zeros(5, int),
        np.array(one.hashes, dtype=np.uint64),
        np.array(one.colours),
        np.full(5, NAN),
    )
    assert links.tolist() == [False, True, True, True, True]
    two = Sequence().add(BASE).add(BASE).add(OTHER).add(THIRD).add(BASE).add(BASE)
    assert two.bursts() == [0, 0, 1, 2, 3, 3]


def test_flat_frames_are_judged_on_colour_when_contrast_is_known() -> None:
    """Blown-out frames have noise for a dHash: with contrast, colour decides."""
    seq = Sequence()
    noisy = unrelated(5, seed=4)
    for h in noisy[:4]:
        seq.add(h, colour=(240.0, 238.0, 236.0), contrast=BURST_FLAT_CONTRAST / 3)
    seq.add(noisy[4], colour=(60.0, 90.0, 40.0), contrast=BURST_FLAT_CONTRAST / 3)
    assert seq.bursts(with_contrast=True) == [0, 0, 0, 0, 1]
    assert seq.bursts() == [0, 1, 2, 3, 4]  # without contrast: a burst per frame
    textured = Sequence().add(BASE, contrast=8.0).add(OTHER, contrast=8.0)
    assert textured.bursts(with_contrast=True) == [0, 1]


def test_rules_and_keyword_overrides_change_the_thresholds() -> None:
    seq = Sequence().add(BASE, time=0.0).add(BASE, time=25.0)
    assert seq.bursts() == [0, 1]
    assert seq.bursts(rules=BurstRules(max_seconds=30.0)) == [0, 0]
    found = find_bursts(
        np.zeros(2, int),
        np.array([BASE, flip(BASE, 8)], dtype=np.uint64),
        np.zeros((2, 3)),
        np.full(2, NAN),
        max_hamming=4,
    )
    assert found.tolist() == [0, 1]


def test_mismatched_inputs_are_refused_with_the_array_named() -> None:
    with pytest.raises(ValueError, match="capture_time"):
        find_bursts(np.zeros(3, int), np.zeros(3, np.uint64), np.zeros((3, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="contrast"):
        find_bursts(
            np.zeros(3, int),
            np.zeros(3, np.uint64),
            np.zeros((3, 3)),
            np.zeros(3),
            contrast=np.zeros(4),
        )


@st.composite
def made_up_bursts(draw: st.DrawFn) -> tuple[list[int], Sequence]:
    """Bursts of 1-8 frames, each set apart from the one before by one cause.

    Causes: a new folder, a new animal (over 24 dHash bits from the last two),
    a light change (a cycle of three colours), or, between two timed bursts,
    ten minutes of clock.
    Frames inside a burst differ by one dHash bit and, if timed, a second.
    """
    lengths = draw(st.lists(st.integers(1, 8), min_size=1, max_size=25))
    rng_seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(rng_seed)
    seq = Sequence()
    truth: list[int] = []
    colours = (GREY, (30.0, 200.0, 30.0), (200.0, 40.0, 40.0))  # > 40 levels apart
    folder, clock, shade, was_timed = 0, 0.0, 0, False
    bases = [BASE, BASE]  # this burst's and the one before's
    for number, length in enumerate(lengths):
        timed = draw(st.booleans())
        cause = draw(st.sampled_from(["folder", "hash", "colour", "time"]))
        if cause == "time" and not (timed and was_timed):
            cause = "hash"  # the clock only separates two timed bursts
        if number and cause == "folder":
            folder += 1
        elif number and cause == "hash":
            fresh = unrelated(1, seed=rng_seed + number, avoid=tuple(bases))[0]
            bases = [fresh, bases[0]]
        elif number and cause == "colour":
            shade = (shade + 1) % len(colours)
        clock += 600.0
        for frame in range(length):
            bit = 1 << int(rng.integers(0, 64))
            seq.add(
                bases[0] ^ bit if frame % 2 else bases[0],
                folder=folder,
                colour=colours[shade],
                time=clock + frame if timed else NAN,
            )
            truth.append(number)
        was_timed = timed
    return truth, seq


@given(made_up_bursts())
def test_made_up_bursts_are_found_exactly(case: tuple[list[int], Sequence]) -> None:
    truth, seq = case
    found = np.array(seq.bursts())
    assert found.tolist() == truth
    folders = np.array(seq.folders)
    changed = np.flatnonzero(folders[1:] != folders[:-1]) + 1
    assert np.all(found[changed] == found[changed - 1] + 1)


# --------------------------------------------------------------------------- selection


@st.composite
def bucketed(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int, int]:
    lengths = draw(st.lists(st.integers(1, 9), min_size=1, max_size=40))
    keys = draw(st.lists(st.integers(0, 127), min_size=1, max_size=8, unique=True))
    buckets: list[int] = []
    bursts: list[int] = []
    for number, length in enumerate(lengths):
        home = draw(st.sampled_from(keys))
        stray = draw(st.sampled_from(keys))
        for frame in range(length):
            buckets.append(stray if frame == length - 1 and length > 2 else home)
            bursts.append(number)
    target = draw(st.integers(0, len(buckets) + 3))
    seed = draw(st.integers(0, 2**31 - 1))
    return np.array(buckets), np.array(bursts), target, seed


@given(bucketed())
def test_selection_is_exact_unique_sorted_and_deterministic(
    case: tuple[np.ndarray, np.ndarray, int, int],
) -> None:
    buckets, bursts, target, seed = case
    picked = select_burst_aware(buckets, bursts, target, seed)
    assert len(picked) == min(target, len(buckets))
    assert len(np.unique(picked)) == len(picked)
    assert np.all(np.diff(picked) > 0)
    assert picked.min(initial=0) >= 0 and picked.max(initial=0) < max(1, len(buckets))
    assert np.array_equal(picked, select_burst_aware(buckets, bursts, target, seed))


@given(bucketed())
def test_no_burst_is_picked_twice_while_another_has_no_pick_in_any_bucket(
    case: tuple[np.ndarray, np.ndarray, int, int],
) -> None:
    buckets, bursts, target, seed = case
    picked = select_burst_aware(buckets, bursts, target, seed)
    per_burst = Counter(bursts[picked].tolist())
    if per_burst and max(per_burst.values()) >= 2:
        assert set(per_burst) == set(bursts.tolist()), "a burst got two while another got none"
    # Inside every bucket too (a weaker form, checked separately for clarity).
    homes = home_buckets(buckets, bursts)
    for home in np.unique(homes):
        counts = [per_burst.get(b, 0) for b in set(bursts[homes == home].tolist())]
        assert not (max(counts) >= 2 and min(counts) == 0)


def test_second_picks_go_nowhere_until_every_bucket_has_all_bursts_covered() -> None:
    """Across buckets: a bucket with few long bursts does not take second frames early."""
    long_bursts = np.repeat(np.arange(3), 30)  # bucket 5: 3 bursts, 90 frames
    short_bursts = np.repeat(np.arange(3, 23), 3)  # bucket 9: 20 bursts, 60 frames
    bursts = np.concatenate([long_bursts, short_bursts])
    buckets = np.array([5] * 90 + [9] * 60)
    for target in range(2, 24):
        per_burst = Counter(bursts[select_burst_aware(buckets, bursts, target, 3)].tolist())
        assert max(per_burst.values()) == 1
        assert len(per_burst) == target
    per_burst = Counter(bursts[select_burst_aware(buckets, bursts, 30, 3)].tolist())
    assert set(per_burst) == set(range(23))


def test_one_pick_per_burst_is_its_middle_frame() -> None:
    bursts = np.repeat(np.arange(4), [3, 5, 4, 1])
    picked = select_burst_aware(np.zeros(13, int), bursts, 4, seed=11)
    assert picked.tolist() == [1, 5, 9, 12]


def test_more_picks_spread_over_a_burst() -> None:
    bursts = np.zeros(9, int)
    assert select_burst_aware(np.zeros(9, int), bursts, 3, seed=0).tolist() == [1, 4, 7]


def test_a_burst_straddling_buckets_is_picked_once() -> None:
    """Frames of one burst in two buckets: the burst lives in its majority bucket."""
    buckets = np.array([3, 3, 7, 3, 3, 7, 7, 7])
    bursts = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    picked = select_burst_aware(buckets, bursts, 2, seed=0)
    assert sorted(bursts[picked].tolist()) == [0, 1]


def test_rare_buckets_get_a_pick_before_large_buckets_get_more() -> None:
    bursts = np.repeat(np.arange(60), 5)
    buckets = np.where(bursts < 57, 10, 77)  # 3 rare bursts in bucket 77
    picked = select_burst_aware(buckets, bursts, 6, seed=1)
    assert (buckets[picked] == 77).sum() >= 1
    proportional = select_burst_aware(buckets, bursts, 20, seed=1, weight_power=1.0)
    sqrt_shares = select_burst_aware(buckets, bursts, 20, seed=1)
    assert (buckets[sqrt_shares] == 77).sum() >= (buckets[proportional] == 77).sum()


def test_few_picks_spread_over_folders() -> None:
    """Fewer picks than buckets: one burst per chosen bucket, spread in natural order."""
    bursts = np.repeat(np.arange(40), 4)
    buckets = np.tile(np.repeat(np.arange(8), 4), 5)  # every bucket in every 'folder'
    picked = select_burst_aware(buckets, bursts, 4, seed=2)
    assert len(picked) == 4
    gaps = np.diff(picked)
    assert gaps.min() >= 20  # spread out, not clustered at the start


def test_a_flat_pair_may_drift_further_in_colour_than_a_textured_one() -> None:
    flat = BURST_FLAT_CONTRAST / 2
    noisy = unrelated(3, seed=9)
    drift = BURST_MAX_COLOUR_SHIFT + 4  # beyond the textured limit, within the flat one
    assert drift <= BURST_FLAT_MAX_COLOUR_SHIFT
    seq = Sequence()
    for i, h in enumerate(noisy):
        seq.add(h, colour=(230.0 - drift * i, 230.0, 230.0), contrast=flat)
    assert seq.bursts(with_contrast=True) == [0, 0, 0]
    jump = BURST_FLAT_MAX_COLOUR_SHIFT + 1
    split = (
        Sequence()
        .add(noisy[0], contrast=flat)
        .add(noisy[1], colour=(120.0 + jump, 120.0, 120.0), contrast=flat)
    )
    assert split.bursts(with_contrast=True) == [0, 1]


# --------------------------------------------------------------------------- colour weighting


@given(bucketed(), st.integers(0, 2**32 - 1))
def test_colour_weighted_selection_keeps_every_guarantee(
    case: tuple[np.ndarray, np.ndarray, int, int], colour_seed: int
) -> None:
    buckets, bursts, target, seed = case
    colour = np.random.default_rng(colour_seed).uniform(0, 255, (len(buckets), 3))
    picked = select_burst_aware(buckets, bursts, target, seed, colour=colour)
    assert len(picked) == min(target, len(buckets))
    assert np.all(np.diff(picked) > 0)
    assert np.array_equal(picked, select_burst_aware(buckets, bursts, target, seed, colour=colour))
    per_burst = Counter(bursts[picked].tolist())
    if per_burst and max(per_burst.values()) >= 2:
        assert set(per_burst) == set(bursts.tolist())


def test_a_burst_of_unusual_colour_is_picked_more_often() -> None:
    """Fog in a bucket of green forest: picked in more seeds than a typical burst."""
    bursts = np.repeat(np.arange(40), 4)
    colour = np.full((160, 3), [70.0, 140.0, 60.0])
    colour[:, 1] += np.repeat(np.arange(40) % 2, 4)  # typical bursts: within a level
    fog = bursts == 17
    colour[fog] = [190.0, 195.0, 200.0]
    buckets = np.zeros(160, int)
    seeds = range(200)
    with_colour = sum(
        bool(fog[select_burst_aware(buckets, bursts, 8, seed, colour=colour)].any())
        for seed in seeds
    )
    plain = sum(bool(fog[select_burst_aware(buckets, bursts, 8, seed)].any()) for seed in seeds)
    assert plain < 0.3 * len(seeds)  # 8 of 40 bursts: about one seed in five
    assert with_colour > 0.6 * len(seeds)  # four times the weight: about three in four


def test_colour_must_be_one_rgb_mean_per_image() -> None:
    with pytest.raises(ValueError, match="colour"):
        select_burst_aware(np.zeros(4, int), np.arange(4), 2, 0, colour=np.zeros((3, 3)))


@pytest.mark.parametrize(
    ("argument", "value"),
    [("clusters", np.zeros(3, int)), ("change", np.zeros(5)), ("colour", np.zeros((4, 2)))],
)
def test_per_image_arguments_are_checked_even_for_no_picks(argument: str, value: object) -> None:
    """A misaligned array is a caller's bug: named at once, whatever the target."""
    for target in (0, 2):
        with pytest.raises(ValueError, match=rf"{argument} must have .* shape \(4"):
            select_burst_aware(np.zeros(4, int), np.arange(4), target, 0, **{argument: value})


def test_rarity_weights_and_weighted_stride() -> None:
    typical = [[100.0, 100.0, 100.0]] * 6
    weights = rarity_weights(np.array([*typical, [250.0, 250.0, 250.0]]))
    assert weights[:6].tolist() == [1.0] * 6
    assert weights[6] == 1.0 + RARITY_GAIN * RARITY_CAP
    assert rarity_weights(np.zeros((0, 3))).size == 0
    for size, picks, offset in ((10, 3, 0.5), (7, 7, 0.2), (9, 0, 0.9), (12, 5, 0.0)):
        assert np.array_equal(
            weighted_stride_positions(np.ones(size), picks, offset),
            stride_positions(size, picks, offset),
        )
    heavy = np.ones(20)
    heavy[13] = 50.0
    for offset in np.linspace(0, 0.99, 12):
        chosen = weighted_stride_positions(heavy, 4, offset)
        assert 13 in chosen.tolist() and len(set(chosen.tolist())) == 4
