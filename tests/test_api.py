"""The public API on real files: exact, unique, deterministic, every parameter working."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from images import Sample, solid, write_jpeg
from smartdownsample import (
    ImageLoadError,
    InvalidArgumentError,
    SelectionResult,
    downsample,
    sample_diverse,
)
from smartdownsample.synthetic import SyntheticDataset

QUIET: dict[str, Any] = {"show_progress": False, "show_summary": False}


def _run(paths: list[Any], target: int, **options: Any) -> SelectionResult:
    options.setdefault("show_progress", False)
    return downsample(paths, target, **options)


def _check_selection(selected: list[str], given: list[Any], target: int, readable: int) -> None:
    assert len(selected) == min(target, readable)
    assert len(set(selected)) == len(selected), "a path was returned twice"
    assert set(selected) <= {os.fspath(p) for p in given}
    assert all(isinstance(path, str) for path in selected)


def _in_input_order(selected: list[str], given: list[str]) -> bool:
    chosen = set(selected)
    return [path for path in dict.fromkeys(given) if path in chosen] == selected


@pytest.fixture(scope="module")
def paths(dataset: SyntheticDataset) -> list[str]:
    return dataset.paths


@pytest.fixture(scope="module")
def n_buckets(paths: list[str]) -> dict[str, int]:
    return {
        strategy: len(_run(paths, 10, strategy=strategy).buckets) for strategy in ("burst", "spec")
    }


# --------------------------------------------------------------------------- exact counts


@pytest.mark.parametrize("strategy", ["burst", "spec"])
def test_exact_count_for_edge_targets(
    paths: list[str], n_buckets: dict[str, int], strategy: str
) -> None:
    n, buckets = len(paths), n_buckets[strategy]
    assert 3 <= buckets < n, "the data set should have several buckets"
    for target in sorted({0, 1, 2, buckets - 1, buckets, buckets + 1, 37, n - 1, n, n + 1, 999}):
        result = _run(paths, target, strategy=strategy)
        _check_selection(result.selected_paths, paths, target, n)
        assert result.n_selected == min(target, n)
        kept_buckets = {b.key for b in result.buckets if b.kept}
        if target >= len(result.buckets):
            assert kept_buckets == {b.key for b in result.buckets}, "a bucket was left out"
        else:
            assert len(kept_buckets) == target
        assert sum(b.size for b in result.buckets) == n
        assert sum(b.kept for b in result.buckets) == min(target, n)
        assert all(b.kept <= b.size for b in result.buckets)


def test_sample_diverse_returns_a_list_of_paths(paths: list[str]) -> None:
    selected = sample_diverse(paths, 25, **QUIET)
    assert isinstance(selected, list)
    _check_selection(selected, paths, 25, len(paths))


def test_target_zero_and_empty_input(paths: list[str]) -> None:
    assert sample_diverse(paths, 0, **QUIET) == []
    assert sample_diverse([], 5, **QUIET) == []
    assert sample_diverse([], 0, **QUIET, return_indices=True) == []
    result = _run([], 3)
    assert result.selected_paths == []
    assert result.buckets == ()


@pytest.mark.parametrize("strategy", ["burst", "spec"])
@pytest.mark.parametrize("hash_size", [2, 4, 8, 16])
def test_strategies_and_hash_sizes(paths: list[str], strategy: str, hash_size: int) -> None:
    selected = sample_diverse(paths, 30, hash_size=hash_size, strategy=strategy, **QUIET)
    _check_selection(selected, paths, 30, len(paths))
    assert _in_input_order(selected, paths)


def test_every_image_mode_goes_through(catalogue: list[Sample]) -> None:
    files = [str(sample.path) for sample in catalogue]
    result = _run(files, len(files))
    assert result.failures == ()
    assert result.n_readable == len(files)
    assert sorted(result.selected_paths) == sorted(files)


# --------------------------------------------------------------------------- determinism


def test_same_result_whatever_workers_and_executor(paths: list[str]) -> None:
    baseline = _run(paths, 30, n_workers=1, executor="serial")
    for n_workers in (1, 2, 4):
        for executor in ("serial", "thread", "process", "auto"):
            result = _run(paths, 30, n_workers=n_workers, executor=executor)
            assert result.selected_paths == baseline.selected_paths, (n_workers, executor)
            np.testing.assert_array_equal(result.bucket_ids, baseline.bucket_ids)
            np.testing.assert_array_equal(result.features["dhash"], baseline.features["dhash"])


def test_sample_diverse_same_result_whatever_n_workers(paths: list[str]) -> None:
    results = [sample_diverse(paths, 40, n_workers=w, **QUIET) for w in (1, 2, 4, None)]
    assert all(result == results[0] for result in results)


@pytest.mark.parametrize("strategy", ["burst", "spec"])
def test_input_order_does_not_change_the_selection(paths: list[str], strategy: str) -> None:
    reference = set(sample_diverse(paths, 33, strategy=strategy, **QUIET))
    rng = np.random.default_rng(0)
    for _ in range(3):
        shuffled = [paths[i] for i in rng.permutation(len(paths))]
        selected = sample_diverse(shuffled, 33, strategy=strategy, **QUIET)
        assert set(selected) == reference
        assert _in_input_order(selected, shuffled), "results come back in the caller's order"


@pytest.mark.parametrize("strategy", ["burst", "spec"])
def test_same_seed_same_result_and_seed_matters(paths: list[str], strategy: str) -> None:
    # Below the number of bursts, so that the seed's stride offsets decide.
    target = min(30, _run(paths, 1).n_bursts - 2)
    options: dict[str, Any] = {"strategy": strategy, **QUIET}
    first = sample_diverse(paths, target, random_seed=7, **options)
    assert sample_diverse(paths, target, random_seed=7, **options) == first
    others = [sample_diverse(paths, target, random_seed=seed, **options) for seed in (1, 2, 3)]
    assert any(set(other) != set(first) for other in others), "random_seed has no effect"
    unseeded = sample_diverse(paths, target, random_seed=None, **options)
    _check_selection(unseeded, paths, target, len(paths))


# --------------------------------------------------------------------------- paths


def test_duplicates_count_once_and_indices_are_first_occurrences(paths: list[str]) -> None:
    with_duplicates = paths[:60] + paths[10:20] + paths[60:] + paths[:5]
    reference = sample_diverse(paths, 40, **QUIET)
    selected = sample_diverse(with_duplicates, 40, **QUIET)
    indices = sample_diverse(with_duplicates, 40, **QUIET, return_indices=True)
    assert set(selected) == set(reference)
    _check_selection(selected, with_duplicates, 40, len(paths))
    for path, index in zip(selected, indices, strict=True):
        assert index == with_duplicates.index(path)
    result = _run(with_duplicates, 40)
    assert result.n_input == len(with_duplicates)
    assert len(result.paths) == len(paths)
    assert sample_diverse(with_duplicates, 10_000, **QUIET) == paths


def test_the_same_file_spelled_differently_counts_once(
    dataset: SyntheticDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(dataset.root)
    absolute = dataset.paths[:10]
    relative = [os.path.join(".", os.path.relpath(path)) for path in absolute]
    as_path = [Path(path) for path in absolute]
    selected = sample_diverse(absolute + relative + as_path, 100, **QUIET)
    assert selected == absolute


def test_path_objects_are_accepted(paths: list[str]) -> None:
    as_paths = [Path(path) for path in paths]
    selected = sample_diverse(as_paths, 20, **QUIET)
    indices = sample_diverse(as_paths, 20, **QUIET, return_indices=True)
    assert selected == sample_diverse(paths, 20, **QUIET)
    assert all(isinstance(path, str) for path in selected)
    assert [os.fspath(as_paths[i]) for i in indices] == selected


def test_any_iterable_of_paths(paths: list[str]) -> None:
    assert sample_diverse(tuple(paths), 10, **QUIET) == sample_diverse(paths, 10, **QUIET)
    assert sample_diverse(iter(paths), 10, **QUIET) == sample_diverse(paths, 10, **QUIET)


def test_return_indices(paths: list[str]) -> None:
    reversed_paths = paths[::-1]
    selected = sample_diverse(reversed_paths, 25, **QUIET)
    indices = sample_diverse(reversed_paths, 25, **QUIET, return_indices=True)
    assert isinstance(indices, list) and len(indices) == 25
    assert all(type(index) is int for index in indices)
    assert [reversed_paths[i] for i in indices] == selected
    result = _run(reversed_paths, 25)
    assert result.selected_indices == indices
    assert result.selected_paths == selected


@pytest.mark.parametrize("target", [3, 8, 100])
def test_return_indices_with_unreadable_files(
    paths: list[str], tmp_path: Path, target: int
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a picture")
    given = [*paths[:4], str(broken), *paths[4:9], str(tmp_path / "missing.jpg")]
    options = {**QUIET, "image_loading_errors": "skip"}
    indices = sample_diverse(given, target, **options, return_indices=True)
    readable = 9
    assert len(indices) == min(target, readable)
    assert [given[i] for i in indices] == sample_diverse(given, target, **options)
    assert not {4, 10} & set(indices), "an unreadable file was returned"


def test_upstream_keyword_calls_mean_the_same(paths: list[str]) -> None:
    """Calls written for the 1.9.x and 2.0.x releases, every shared parameter by keyword."""
    common = {
        "image_paths": paths,
        "target_count": 12,
        "n_workers": None,
        "show_progress": False,
        "show_summary": False,
        "save_distribution": None,
        "save_thumbnails": None,
        "image_loading_errors": "raise",
    }
    by_paths = sample_diverse(**common, hash_size=8, return_indices=False)
    by_index = sample_diverse(**common, hash_size=8, return_indices=True)
    assert [paths[i] for i in by_index] == by_paths
    with pytest.warns(UserWarning, match="distance_threshold=0.5 has no effect"):
        from_2_0 = sample_diverse(**common, distance_threshold=0.5, return_indices=True)
    assert from_2_0 == by_index


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # 1.9.x order: ..., show_progress, show_summary, save_distribution, ...
        ((8, 4, False, True), "random_seed must be a whole number or None"),
        ((8, 4, False, False, "chart.png"), "show_summary must be True or False"),
        ((8, 4, False, 42, False, "chart.png"), "show_distribution must be True or False"),
        # 2.0.x order: image_paths, target_count, distance_threshold, ...
        ((0.5,), "hash_size must be a whole number.*distance_threshold"),
    ],
)
def test_upstream_positional_order_is_refused_clearly(
    paths: list[str], args: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        sample_diverse(paths, 5, *args)


def test_selection_result_is_consistent(paths: list[str]) -> None:
    result = _run(paths, 30)
    assert len(result) == 30
    assert list(result) == result.selected_paths
    assert len(result.paths) == len(result.ok) == len(result.bucket_ids) == len(result.features)
    assert int(result.selected.sum()) == 30
    assert result.ok.all()
    assert (result.bucket_ids >= 0).all() and (result.bucket_ids < 128).all()
    assert result.features["width"].min() > 0
    for bucket in result.buckets:
        members = result.bucket_members(bucket.key)
        assert len(members) == bucket.size
        assert int(result.selected[members].sum()) == bucket.kept
    sizes = [bucket.size for bucket in result.buckets]
    assert sizes == sorted(sizes, reverse=True)
    assert [bucket.rank for bucket in result.buckets] == list(range(1, len(sizes) + 1))


# --------------------------------------------------------------------------- arguments

MISSING = ["/definitely/not/here/a.jpg", "/definitely/not/here/b.jpg"]


@pytest.mark.parametrize(
    ("options", "shown"),
    [
        ({"target_count": -1}, "-1"),
        ({"target_count": 2.5}, "2.5"),
        ({"target_count": True}, "True"),
        ({"target_count": "10"}, "'10'"),
        ({"target_count": None}, "None"),
        ({"hash_size": 1}, "hash_size"),
        ({"hash_size": 0}, "hash_size"),
        ({"hash_size": -8}, "-8"),
        ({"hash_size": 8.0}, "8.0"),
        ({"image_loading_errors": "ignore"}, "'ignore'"),
        ({"image_loading_errors": None}, "image_loading_errors"),
        ({"strategy": "random"}, "'random'"),
        ({"n_workers": -2}, "-2"),
        ({"random_seed": "abc"}, "'abc'"),
    ],
)
@pytest.mark.parametrize("function", [downsample, sample_diverse])
def test_invalid_arguments_raise_a_clear_error(
    function: Any, options: dict[str, Any], shown: str
) -> None:
    arguments: dict[str, Any] = {"target_count": 1, "show_progress": False, **options}
    # The files do not exist: arguments must be checked before anything is read.
    with pytest.raises(InvalidArgumentError) as info:
        function(MISSING, **arguments)
    assert shown in str(info.value)
    name = next(iter(options))
    assert name in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "image_paths", ["/a/single/path.jpg", Path("/a/single/path.jpg"), [1, 2], None, 42]
)
def test_invalid_image_paths(image_paths: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        sample_diverse(image_paths, 1, **QUIET)


def test_invalid_executor_and_backend() -> None:
    with pytest.raises(InvalidArgumentError, match="'gpu'"):
        downsample(MISSING, 1, executor="gpu", show_progress=False)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="'spark'"):
        downsample(MISSING, 1, backend="spark", show_progress=False)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- unreadable files


@pytest.mark.parametrize(
    "kind", ["corrupt", "truncated", "empty", "text", "missing", "folder", "broken-symlink"]
)
def test_raise_names_the_file_and_how_to_skip(
    paths: list[str], unreadable: dict[str, Path], kind: str
) -> None:
    bad = str(unreadable[kind])
    with pytest.raises(ImageLoadError) as info:
        sample_diverse([*paths[:20], bad, *paths[20:30]], 5, **QUIET)
    assert info.value.path == bad
    assert bad in str(info.value)
    assert "skip" in str(info.value)


def test_raise_is_the_default(paths: list[str], unreadable: dict[str, Path]) -> None:
    with pytest.raises(ImageLoadError):
        sample_diverse([*paths[:5], str(unreadable["corrupt"])], 2, **QUIET)


def test_skip_keeps_the_exact_count_and_reports_failures(
    paths: list[str], unreadable: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    bad = [str(path) for path in unreadable.values()]
    mixed = list(paths)
    for offset, path in enumerate(bad):
        mixed.insert(offset * 17, path)
    with caplog.at_level(logging.WARNING, logger="smartdownsample"):
        result = _run(mixed, 50, image_loading_errors="skip")
    assert result.n_selected == 50
    assert not set(result.selected_paths) & set(bad)
    _check_selection(result.selected_paths, mixed, 50, len(paths))
    assert {failure.path for failure in result.failures} == set(bad)
    for failure in result.failures:
        assert mixed[failure.index] == failure.path
        assert failure.reason
    logged = caplog.text
    for path in bad:
        assert path in logged, f"{path} was skipped without a log message"
    assert result.n_readable == len(paths)
    assert not result.ok[[result.paths.index(path) for path in bad]].any()


def test_skip_with_too_few_readable_keeps_all_readable(
    paths: list[str], unreadable: dict[str, Path]
) -> None:
    mixed = [*paths[:8], str(unreadable["empty"]), str(unreadable["truncated"])]
    selected = sample_diverse(mixed, 9, image_loading_errors="skip", **QUIET)
    assert sorted(selected) == sorted(paths[:8])
    assert sample_diverse(mixed, 8, image_loading_errors="skip", **QUIET) == paths[:8]
    only_bad = [str(unreadable["empty"]), str(unreadable["corrupt"])]
    assert sample_diverse(only_bad, 3, image_loading_errors="skip", **QUIET) == []


def test_skip_failures_appear_in_the_summary(
    paths: list[str], unreadable: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = str(unreadable["corrupt"])
    sample_diverse(
        [*paths[:30], bad], 10, image_loading_errors="skip", show_progress=False, show_summary=True
    )
    out = capsys.readouterr().out
    assert bad in out


# --------------------------------------------------------------------------- output


def test_show_summary_prints_the_bucket_table(
    paths: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    selected = sample_diverse(paths, 30, show_progress=False)  # show_summary defaults to True
    out = capsys.readouterr().out
    result = _run(paths, 30)
    assert set(selected) == set(result.selected_paths)
    for word in ("size", "kept", "rate", "stride"):
        assert word in out.lower()
    for bucket in result.buckets:
        assert bucket.label in out
        line = next(line for line in out.splitlines() if bucket.label in line)
        assert str(bucket.size) in line
        assert str(bucket.kept) in line
    assert "30" in out and str(len(paths)) in out


def test_show_summary_false_prints_nothing(
    paths: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    sample_diverse(paths, 30, show_summary=False, show_progress=False)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_show_progress_writes_to_stderr_only_when_asked(
    paths: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    sample_diverse(paths, 30, show_summary=False, show_progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip(), "show_progress=True should draw a progress bar on stderr"


def test_downsample_never_prints(paths: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    _run(paths, 10)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


# --------------------------------------------------------------------------- warnings


def test_import_does_not_touch_warning_filters() -> None:
    # numpy adds its own filters when imported: import the dependencies first.
    code = (
        "import warnings\n"
        "import numpy, PIL.Image, tqdm.auto, matplotlib\n"
        "before = list(warnings.filters)\n"
        "import smartdownsample, smartdownsample.api, smartdownsample.loading\n"
        "import smartdownsample.plotting, smartdownsample.synthetic\n"
        "assert list(warnings.filters) == before, 'warning filters changed by import'\n"
        "for action, message, category, module, _ in warnings.filters:\n"
        "    muted = action == 'ignore' and category is Warning and message is None\n"
        "    assert not muted, 'every warning is muted'\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('default')\n"
        "    warnings.warn('still shown', UserWarning)\n"
        "assert [str(w.message) for w in caught] == ['still shown']\n"
    )
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120
    )
    assert completed.returncode == 0, completed.stderr


def test_warnings_still_show_after_a_run(
    paths: list[str], recwarn: pytest.WarningsRecorder
) -> None:
    before = list(warnings.filters)
    sample_diverse(paths[:20], 5, **QUIET)
    assert list(warnings.filters) == before
    warnings.warn("visible after a run", UserWarning, stacklevel=1)
    assert any("visible after a run" in str(w.message) for w in recwarn)


def test_decompression_bomb_warning_reaches_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1.x muted this warning and dropped the image; it must be shown and the image kept."""
    big = str(write_jpeg(tmp_path / "big.jpg", solid((50, 60, 70), (40, 40))))
    small = str(write_jpeg(tmp_path / "small.jpg", solid((50, 60, 70), (30, 30))))
    monkeypatch.setattr("PIL.Image.MAX_IMAGE_PIXELS", 1000)  # 1600 px: warn, not fail
    with pytest.warns(Warning, match="decompression bomb|pixels"):
        selected = sample_diverse([big, small], 2, n_workers=1, **QUIET)
    assert sorted(selected) == sorted([big, small])
