"""Worker processes: a decoder that crashes or hangs costs one image, never the run.

Real crashes and hangs are injected from outside the product by the ``faults``
fixture (see ``tests/faults/fault_injection.py``): in worker processes a file
named ``*__sds_crash__*`` makes the decoder die of a real segmentation fault,
``*__sds_exit__*`` exit at once, ``*__sds_hang__*`` sleep forever; in thread
and serial runs only the hang marker acts.
"""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from faults.fault_injection import CRASH, EXIT, EXIT_CODE, HANG, hanging_decoder, worker_pythonpath
from images import quadrants, write_jpeg
from smartdownsample import downsample
from smartdownsample._exceptions import ImageLoadError
from smartdownsample._types import ExecutorKind
from smartdownsample.extraction import BatchResult, extract_batch, run_batches
from smartdownsample.extraction import batch as batch_module
from smartdownsample.extraction.processes import WorkerPool, WorkerStartError, _Task
from smartdownsample.features import empty_features

SRC = Path(__file__).resolve().parent.parent / "src" / "smartdownsample"
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
def armed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Install the test faults for one test, in worker processes and in this process.

    Worker processes are fresh interpreters started with this process's
    environment, so ``PYTHONPATH`` makes them run ``tests/faults/sitecustomize.py``;
    here the decoder that ``extract_batch`` calls is replaced. Both are undone
    after the test, and threads still blocked on a hang marker are let go.
    """
    monkeypatch.setenv("PYTHONPATH", worker_pythonpath(os.environ.get("PYTHONPATH")))
    release = threading.Event()
    decoder = hanging_decoder(batch_module.decode_file, release)
    monkeypatch.setattr(batch_module, "decode_file", decoder)
    yield
    release.set()


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
    assert "decoder crashed" in collect.reasons[5]
    assert f"exit status {EXIT_CODE}" in collect.reasons[5]
    assert collect.reasons[40].startswith(f"timed out after {TIMEOUT:g} s")
    good = np.setdiff1d(np.arange(len(paths)), list(faults))
    assert collect.ok[good].all()
    reference = extract_batch([paths[i] for i in good], 8).features
    assert collect.features[good].tobytes() == reference.tobytes()
    # The hang is stopped within 1.25 x the limit (plus worker restarts), not waited out.
    assert elapsed < 30


def test_downsample_skips_a_crashing_file_and_still_returns_the_target(
    tmp_path: Path, armed: None
) -> None:
    paths = _images(tmp_path, 40, {7: CRASH, 21: HANG})
    result = downsample(
        paths,
        30,
        show_progress=False,
        image_loading_errors="skip",
        executor="process",
        n_workers=2,
        image_timeout=TIMEOUT,
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


def test_marked_files_are_ordinary_files_without_the_fault_fixture(tmp_path: Path) -> None:
    """The markers mean nothing to the product: only the test fixture gives them a meaning
    (and it is undone after each test, whatever ran before this one)."""
    paths = _images(tmp_path, 12, {2: CRASH, 5: EXIT, 8: HANG})
    todo = np.arange(len(paths), dtype=np.int64)
    executors: tuple[ExecutorKind, ...] = ("process", "thread", "serial")
    for executor in executors:
        collect = _Collector(len(paths))
        run_batches(
            paths, todo, 8, workers=2, executor=executor, on_batch=collect, image_timeout=TIMEOUT
        )
        assert collect.ok.all(), executor


def test_threads_ignore_the_crash_and_exit_markers(tmp_path: Path, armed: None) -> None:
    """Armed, thread and serial runs decode crash- and exit-marked files normally (in this
    process those faults would end the test run); hangs are tested below."""
    paths = _images(tmp_path, 12, {2: CRASH, 5: EXIT})
    todo = np.arange(len(paths), dtype=np.int64)
    executors: tuple[ExecutorKind, ...] = ("thread", "serial")
    for executor in executors:
        collect = _Collector(len(paths))
        run_batches(paths, todo, 8, workers=2, executor=executor, on_batch=collect)
        assert collect.ok.all(), executor


FAULT_HOOK_WORDS = ("__sds_", "string_at", "TEST_FAULTS", "inject_fault", "os._exit(")
"""What the fault injection of tests looked like when it lived in the product."""


def test_the_product_has_no_fault_hooks() -> None:
    """Issue 12: the worker's test-only fault injection is no longer shipped."""
    found = [
        f"{path.relative_to(SRC)}: {word}"
        for path in sorted(SRC.rglob("*.py"))
        for word in FAULT_HOOK_WORDS
        if word in path.read_text(encoding="utf-8")
    ]
    assert found == []


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


def test_pool_close_kills_busy_and_idle_workers_alike() -> None:
    """Issue 12: ``close(kill=...)`` took a flag that changed nothing; it is gone."""
    assert list(inspect.signature(WorkerPool.close).parameters) == ["self"]


def test_worker_that_cannot_start_falls_back_to_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    false = shutil.which("false")
    if false is None:
        pytest.skip("needs a 'false' program")
    paths = _images(tmp_path, 20)
    monkeypatch.setattr(sys, "executable", false)  # every worker exits at once
    collect = _Collector(len(paths))
    with caplog.at_level(logging.WARNING, logger="smartdownsample.extraction.local"):
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
