"""Worker processes: a decoder that crashes or hangs costs one image, never the run.

Real crashes and hangs are injected with the test-only fault markers of
:mod:`smartdownsample._processes`: with ``SMARTDOWNSAMPLE_TEST_FAULTS=1`` in a
worker's environment, a file named ``*__sds_crash__*`` makes it die of a real
segmentation fault, ``*__sds_exit__*`` exit at once, ``*__sds_hang__*`` sleep
forever.
"""

from __future__ import annotations

import functools
import logging
import shutil
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from images import quadrants, write_jpeg
from smartdownsample import api, downsample
from smartdownsample._exceptions import ImageLoadError
from smartdownsample._processes import (
    FAULT_MARKERS,
    TEST_FAULTS_ENV,
    WorkerPool,
    WorkerStartError,
    _Task,
)
from smartdownsample._types import ExecutorKind
from smartdownsample.extract import BatchResult, extract_batch, local_runner, run_batches
from smartdownsample.features import empty_features

CRASH, EXIT, HANG = FAULT_MARKERS
TIMEOUT = 1.5
"""Per-image time limit in these tests (seconds): short, so a hang costs little."""


def _images(folder: Path, count: int, faults: dict[int, str] | None = None) -> list[str]:
    """``count`` small distinct JPEGs; ``faults`` puts a marker in some file names."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        marker = (faults or {}).get(index, "")
        image = quadrants((64 + index % 7, 48 + index % 5)).rotate(index * 13 % 360)
        paths.append(str(write_jpeg(folder / f"img_{index:03d}{marker}.jpg", image)))
    return paths


class _Collector:
    """``on_batch`` that records every image's row, ok flag and failure reason."""

    def __init__(self, count: int) -> None:
        self.features = empty_features(count)
        self.ok = np.zeros(count, dtype=bool)
        self.reasons: dict[int, str] = {}
        self.seen = np.zeros(count, dtype=int)

    def __call__(self, indices: NDArray[np.int64], result: BatchResult) -> None:
        self.seen[indices] += 1
        self.features[indices] = result.features
        self.ok[indices] = result.ok
        for position, reason in result.errors:
            self.reasons[int(indices[position])] = reason


@pytest.fixture
def armed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TEST_FAULTS_ENV, "1")


def test_crash_exit_and_hang_cost_one_image_each(tmp_path: Path, armed: None) -> None:
    # Two faults share a batch (positions 3 and 5 of the first), others are alone.
    faults = {3: CRASH, 5: EXIT, 40: HANG, 70: CRASH}
    paths = _images(tmp_path, 90, faults)
    collect = _Collector(len(paths))
    started = time.monotonic()
    run_batches(
        paths,
        np.arange(len(paths), dtype=np.int64),
        8,
        workers=2,
        executor="process",
        on_batch=collect,
        image_timeout=TIMEOUT,
    )
    elapsed = time.monotonic() - started
    assert (collect.seen == 1).all(), "every image reported exactly once"
    assert sorted(collect.reasons) == sorted(faults)
    for index in (3, 70):
        assert "decoder crashed" in collect.reasons[index]
        assert "SIGSEGV" in collect.reasons[index] or sys.platform == "win32"
    assert "decoder crashed" in collect.reasons[5] and "exit status 70" in collect.reasons[5]
    assert collect.reasons[40].startswith(f"timed out after {TIMEOUT:g} s")
    good = np.setdiff1d(np.arange(len(paths)), list(faults))
    assert collect.ok[good].all()
    reference = extract_batch([paths[i] for i in good], 8).features
    assert collect.features[good].tobytes() == reference.tobytes()
    # The hang is stopped within 1.25 x the limit (plus worker restarts), not waited out.
    assert elapsed < 30


def test_downsample_skips_a_crashing_file_and_still_returns_the_target(
    tmp_path: Path, armed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # downsample() has no time-limit parameter: give its runner the short test limit.
    monkeypatch.setattr(api, "local_runner", functools.partial(local_runner, image_timeout=TIMEOUT))
    paths = _images(tmp_path, 40, {7: CRASH, 21: HANG})
    result = downsample(
        paths,
        30,
        show_progress=False,
        image_loading_errors="skip",
        executor="process",
        n_workers=2,
    )
    assert result.n_selected == 30
    failed = {failure.path: failure.reason for failure in result.failures}
    assert set(failed) == {paths[7], paths[21]}
    assert "decoder crashed" in failed[paths[7]]
    assert "timed out" in failed[paths[21]]


def test_downsample_raise_names_the_crashing_file(
    tmp_path: Path, armed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _images(tmp_path, 20, {11: EXIT})
    with pytest.raises(ImageLoadError, match="decoder crashed") as error:
        downsample(paths, 5, show_progress=False, executor="process", n_workers=2)
    assert error.value.path == paths[11]


def test_markers_do_nothing_unless_armed_and_in_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _images(tmp_path, 12, {2: CRASH, 5: EXIT, 8: HANG})
    monkeypatch.delenv(TEST_FAULTS_ENV, raising=False)
    collect = _Collector(len(paths))
    todo = np.arange(len(paths), dtype=np.int64)
    run_batches(paths, todo, 8, workers=2, executor="process", on_batch=collect)
    assert collect.ok.all()
    # Armed, threads and serial runs ignore the crash and exit markers (they would end
    # the caller's process); the hang marker is honoured there too (see the next test).
    paths = [p for p in paths if HANG not in p]
    todo = np.arange(len(paths), dtype=np.int64)
    monkeypatch.setenv(TEST_FAULTS_ENV, "1")
    executors: tuple[ExecutorKind, ...] = ("thread", "serial")
    for executor in executors:
        collect = _Collector(len(paths))
        run_batches(paths, todo, 8, workers=2, executor=executor, on_batch=collect)
        assert collect.ok.all()


THREAD_TIMEOUT = 0.5
"""Per-image time limit of the thread and serial hang tests (seconds)."""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("executor", ["thread", "serial"])
def test_hang_in_a_thread_costs_one_image_after_the_time_limit(
    tmp_path: Path, armed: None, executor: ExecutorKind
) -> None:
    """Issue 11, item 14: ``image_timeout`` was ignored in thread mode (a hang hung the run)."""
    faults = {2: HANG, 30: HANG}  # two hangs: the first one's thread is replaced
    paths = _images(tmp_path, 40, faults)
    collect = _Collector(len(paths))
    started = time.monotonic()
    run_batches(
        paths,
        np.arange(len(paths), dtype=np.int64),
        8,
        workers=2,
        executor=executor,
        on_batch=collect,
        image_timeout=THREAD_TIMEOUT,
    )
    elapsed = time.monotonic() - started
    assert (collect.seen == 1).all(), "every image reported exactly once"
    assert sorted(collect.reasons) == sorted(faults)
    for index in faults:
        assert collect.reasons[index].startswith(f"timed out after {THREAD_TIMEOUT:g} s")
    good = np.setdiff1d(np.arange(len(paths)), list(faults))
    assert collect.ok[good].all()
    reference = extract_batch([paths[i] for i in good], 8).features
    assert collect.features[good].tobytes() == reference.tobytes()
    assert elapsed < 20


@pytest.mark.timeout(60)
def test_downsample_in_threads_honours_image_timeout(tmp_path: Path, armed: None) -> None:
    paths = _images(tmp_path, 20, {7: HANG})
    result = downsample(
        paths,
        5,
        image_loading_errors="skip",
        show_progress=False,
        executor="thread",
        n_workers=2,
        image_timeout=THREAD_TIMEOUT,
    )
    assert result.n_selected == 5
    assert [failure.path for failure in result.failures] == [paths[7]]
    assert "timed out" in result.failures[0].reason


def test_pool_processes_are_gone_after_an_error(tmp_path: Path) -> None:
    paths = _images(tmp_path, 30)
    processes: list[subprocess.Popen[bytes]] = []

    def on_batch(indices: NDArray[np.int64], result: BatchResult) -> None:
        processes.extend(w.process for w in pool._workers if w is not None)
        raise KeyboardInterrupt  # as Ctrl-C in the middle of a run

    pool = WorkerPool(2)
    with pytest.raises(KeyboardInterrupt), pool:
        batches = iter([np.arange(0, 15), np.arange(15, 30)])
        pool.run(paths, batches, 8, on_batch)
    assert processes and all(process.poll() is not None for process in processes)


def test_worker_that_cannot_start_falls_back_to_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    false = shutil.which("false")
    if false is None:
        pytest.skip("needs a 'false' program")
    paths = _images(tmp_path, 20)
    monkeypatch.setattr(sys, "executable", false)  # every worker exits at once
    collect = _Collector(len(paths))
    with caplog.at_level(logging.WARNING, logger="smartdownsample.extract"):
        run_batches(
            paths,
            np.arange(len(paths), dtype=np.int64),
            8,
            workers=2,
            executor="process",
            on_batch=collect,
        )
    assert collect.ok.all() and (collect.seen == 1).all()
    assert "could not start smartdownsample worker processes" in caplog.text


def test_start_failure_gives_back_the_unfinished_indices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    false = shutil.which("false")
    if false is None:
        pytest.skip("needs a 'false' program")
    monkeypatch.setattr(sys, "executable", false)
    with pytest.raises(WorkerStartError) as error, WorkerPool(1) as pool:
        pool.run(["a.jpg", "b.jpg"], iter([np.array([0, 1])]), 8, lambda i, r: None)
    assert sorted(error.value.remaining.tolist()) == [0, 1]


def test_failure_outside_an_image_is_retried_then_bisected() -> None:
    """When the dead worker's progress does not name an image, retry, then split."""
    failed: list[tuple[list[int], BatchResult]] = []
    pending: deque[_Task] = deque()
    with WorkerPool(1) as pool:
        task = _Task(1, np.arange(10, 14, dtype=np.int64))
        recover = pool._recover
        recover(task, 1, -1, "crash", lambda i, r: failed.append((i.tolist(), r)), pending)
        assert [t.indices.tolist() for t in pending] == [[10, 11, 12, 13]]
        retry = pending.popleft()
        recover(retry, retry.task_id, 4, "crash", lambda i, r: None, pending)  # after the images
        assert [t.indices.tolist() for t in pending] == [[10, 11], [12, 13]]
        single = _Task(9, np.array([12], dtype=np.int64), unpinned_failures=1)
        recover(single, 9, -1, "crash", lambda i, r: failed.append((i.tolist(), r)), pending)
    assert [(indices, r.errors) for indices, r in failed] == [([12], ((0, "crash"),))]


def test_pillow_limits_and_warnings_reach_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.png"
    Image.new("RGB", (150, 100), "red").save(big)  # 15,000 pixels
    huge = tmp_path / "huge.png"
    Image.new("RGB", (300, 200), "red").save(huge)  # 60,000 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    collect = _Collector(2)
    with pytest.warns(Image.DecompressionBombWarning):
        run_batches(
            [str(big), str(huge)],
            np.arange(2, dtype=np.int64),
            8,
            workers=1,
            executor="process",
            on_batch=collect,
        )
    assert collect.ok.tolist() == [True, False]
    assert "decompression bomb" in collect.reasons[1]
