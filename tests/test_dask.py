"""Tests of the Dask backend on a real LocalCluster of two worker processes.

The cluster is started once for the module. Every result is compared with a
local run on the same files, bit for bit: the backend may only change where
features are computed, never what is selected.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import dask  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from faults.fault_injection import HANG, worker_pythonpath  # noqa: E402
from smartdownsample._exceptions import (  # noqa: E402
    ImageLoadError,
    InvalidArgumentError,
    MissingExtraError,
    SmartDownsampleError,
)
from smartdownsample._types import Strategy  # noqa: E402
from smartdownsample.api import downsample  # noqa: E402
from smartdownsample.extraction import BatchResult, extract_batch, extract_features  # noqa: E402
from smartdownsample.extraction import dask as _dask  # noqa: E402
from smartdownsample.extraction.dask import (  # noqa: E402
    DEFAULT_BATCH_SIZE,
    MIN_BATCH_SIZE,
    WORKER_MISSING_REASON,
    DaskRunner,
    dask_runner,
)
from smartdownsample.result import SelectionResult  # noqa: E402
from smartdownsample.synthetic import make_dataset  # noqa: E402

N_IMAGES = 240
"""Enough images for dozens of small batches and a few bursts per folder."""

TARGET = 50

KILL_SIGNAL = getattr(signal, "SIGKILL", signal.SIGTERM)

pytestmark = pytest.mark.timeout(180)


def _cluster(**config: Any) -> Any:
    with dask.config.set(config):
        return distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=_dask.LOCAL_DASHBOARD_ADDRESS,
        )


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster = _cluster()
    with cluster, distributed.Client(cluster) as dask_client:
        yield dask_client


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    data = make_dataset(tmp_path_factory.mktemp("dask-data"), N_IMAGES, seed=5, n_locations=4)
    return [str(path) for path in data.paths]


@pytest.fixture(scope="module")
def local(paths: list[str]) -> SelectionResult:
    return downsample(paths, TARGET, show_progress=False)


def assert_same(dask_result: SelectionResult, local_result: SelectionResult) -> None:
    """Identical outcome, bit for bit."""
    assert dask_result.paths == local_result.paths
    assert dask_result.selected_paths == local_result.selected_paths
    assert dask_result.selected_indices == local_result.selected_indices
    assert dask_result.features.tobytes() == local_result.features.tobytes()
    assert np.array_equal(dask_result.ok, local_result.ok)
    assert np.array_equal(dask_result.bucket_ids, local_result.bucket_ids)
    assert np.array_equal(dask_result.burst_ids, local_result.burst_ids)
    assert dask_result.failures == local_result.failures


def use_runner(monkeypatch: pytest.MonkeyPatch, runner: Callable[..., None]) -> None:
    """Make ``downsample(..., backend="dask")`` use ``runner``."""
    monkeypatch.setattr(_dask, "dask_runner", lambda client=None, **_: runner)


def make_crashing_task(marker_dir: str, victims: Sequence[str], *, every_time: bool) -> Any:
    """A task that kills its worker process on batches holding a victim file.

    With ``every_time=False`` only the first attempt dies (a marker file
    records it), as when a node is lost; with ``every_time=True`` every
    attempt dies, as with a file that crashes the decoder. The function is
    nested so that it is pickled by value: workers need not import tests.
    """
    numbers = {victim: number for number, victim in enumerate(victims)}

    def task(batch: Sequence[str], hash_size: int) -> BatchResult:
        import os

        from smartdownsample.extraction import extract_batch

        for path in batch:
            if path not in numbers:
                continue
            name = f"victim{numbers[path]}"
            marker = os.path.join(marker_dir, f"{name}.{os.getpid()}.killed")
            if every_time or not any(entry.startswith(name) for entry in os.listdir(marker_dir)):
                with open(marker, "w"):
                    pass
                os._exit(1)
        return extract_batch(batch, hash_size)

    return task


def wait_for_two(dask_client: Any) -> None:
    dask_client.wait_for_workers(2, timeout=60)


# --- same result as local ----------------------------------------------------


@pytest.mark.parametrize("strategy", ["burst", "spec"])
def test_same_selection_as_local(
    client: Any, paths: list[str], local: SelectionResult, strategy: Strategy
) -> None:
    reference = (
        local
        if strategy == "burst"
        else downsample(paths, TARGET, show_progress=False, strategy="spec")
    )
    result = downsample(
        paths, TARGET, show_progress=False, backend="dask", client=client, strategy=strategy
    )
    assert_same(result, reference)
    assert len(result.selected_paths) == TARGET


def test_current_client_is_used(
    client: Any, paths: list[str], local: SelectionResult, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="smartdownsample.extraction.dask")
    result = downsample(paths, TARGET, show_progress=False, backend="dask")
    assert_same(result, local)
    assert "starting a Dask LocalCluster" not in caplog.text
    assert "computing features of 240 images on Dask" in caplog.text


def test_small_batches_arrive_out_of_order(client: Any, paths: list[str]) -> None:
    seen: list[NDArray[np.int64]] = []
    runner = DaskRunner(client, batch_size=7)

    def spy(
        paths: Sequence[str],
        todo: NDArray[np.int64],
        hash_size: int,
        *,
        on_batch: Callable[[NDArray[np.int64], BatchResult], None],
    ) -> None:
        def record(batch: NDArray[np.int64], result: BatchResult) -> None:
            seen.append(batch.copy())
            on_batch(batch, result)

        runner(paths, todo, hash_size, on_batch=record)

    progress: list[int] = []
    remote = extract_features(paths, 8, runner=spy, progress=progress.append)
    here = extract_batch(paths, 8)
    assert remote.features.tobytes() == here.features.tobytes()
    assert remote.ok.all()
    assert sum(progress) == len(paths)
    assert max(len(batch) for batch in seen) == 7
    assert np.array_equal(np.sort(np.concatenate(seen)), np.arange(len(paths)))


def test_batch_size_choice(client: Any) -> None:
    runner = dask_runner(client)
    assert runner.batch_size_for(4000, 2) == 500
    assert runner.batch_size_for(10_000_000, 2) == DEFAULT_BATCH_SIZE
    assert runner.batch_size_for(100, 8) == MIN_BATCH_SIZE
    assert runner.batch_size_for(10, 0) == MIN_BATCH_SIZE
    assert dask_runner(client, batch_size=3).batch_size_for(10_000, 2) == 3


@pytest.mark.parametrize("bad", [0, -5, True, 2.5, "64"])
def test_invalid_batch_size(bad: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        dask_runner(batch_size=bad)


def test_invalid_client() -> None:
    with pytest.raises(InvalidArgumentError, match=r"distributed\.Client"):
        dask_runner(client="tcp://127.0.0.1:8786")  # type: ignore[arg-type]


# --- cache --------------------------------------------------------------------


def test_cache_skips_cached_images_and_stores_new_ones(
    client: Any, paths: list[str], local: SelectionResult, tmp_path: Path
) -> None:
    from smartdownsample.cache import open_cache

    database = tmp_path / "features.sqlite"
    half = paths[: len(paths) // 2]
    first = downsample(half, 20, show_progress=False, backend="dask", client=client, cache=database)
    assert first.n_cached == 0

    sent: list[str] = []
    runner = DaskRunner(client)

    def spy(
        paths: Sequence[str],
        todo: NDArray[np.int64],
        hash_size: int,
        *,
        on_batch: Callable[[NDArray[np.int64], BatchResult], None],
    ) -> None:
        sent.extend(paths[int(i)] for i in todo)
        runner(paths, todo, hash_size, on_batch=on_batch)

    store = open_cache(database, hash_size=8)
    assert store is not None
    try:
        absolute = [os.path.abspath(path) for path in paths]
        extraction = extract_features(absolute, 8, runner=spy, cache=store)
    finally:
        store.close()
    half_abs = {os.path.abspath(path) for path in half}
    assert extraction.n_cached == len(half)
    assert sorted(sent) == sorted(set(absolute) - half_abs)

    # Every row written back by the client: a third run sends nothing.
    result = downsample(paths, TARGET, show_progress=False, backend="dask", cache=database)
    assert result.n_cached == len(paths)
    assert_same(result, local)


# --- unreadable files ---------------------------------------------------------


def test_unreadable_skip_is_reported_like_local(
    client: Any, paths: list[str], unreadable: dict[str, Path]
) -> None:
    bad = [str(unreadable[kind]) for kind in ("corrupt", "truncated", "empty", "missing")]
    mixed = paths[:100] + bad + paths[100:]
    local = downsample(mixed, TARGET, show_progress=False, image_loading_errors="skip")
    result = downsample(
        mixed,
        TARGET,
        show_progress=False,
        image_loading_errors="skip",
        backend="dask",
        client=client,
    )
    assert_same(result, local)
    assert {failure.path for failure in result.failures} == set(bad)


def test_unreadable_raise_names_the_file(
    client: Any, paths: list[str], unreadable: dict[str, Path]
) -> None:
    corrupt = str(unreadable["corrupt"])
    with pytest.raises(ImageLoadError) as caught:
        downsample([*paths, corrupt], TARGET, show_progress=False, backend="dask", client=client)
    assert caught.value.path == corrupt
    assert corrupt in str(caught.value)


def test_file_missing_on_worker_says_paths_must_be_shared(client: Any, paths: list[str]) -> None:
    def elsewhere(batch: Sequence[str], hash_size: int) -> BatchResult:
        from smartdownsample.extraction import extract_batch

        return extract_batch([path + ".not-mounted-here" for path in batch], hash_size)

    runner = DaskRunner(client, task=elsewhere)
    extraction = extract_features(paths[:10], 8, runner=runner)
    assert not extraction.ok.any()
    assert set(extraction.errors.values()) == {WORKER_MISSING_REASON}


def test_task_error_is_raised_not_hidden(client: Any, paths: list[str]) -> None:
    def broken(batch: Sequence[str], hash_size: int) -> BatchResult:
        raise RuntimeError(f"bug while decoding {len(batch)} files")

    with pytest.raises(RuntimeError, match="bug while decoding 5 files"):
        extract_features(paths[:5], 8, runner=DaskRunner(client, task=broken))


def test_worker_without_the_package_gets_an_install_hint(client: Any, paths: list[str]) -> None:
    def needs_missing_module(batch: Sequence[str], hash_size: int) -> BatchResult:
        import smartdownsample_not_installed_anywhere  # type: ignore[import-not-found]  # noqa: F401

        raise AssertionError("unreachable")

    runner = DaskRunner(client, task=needs_missing_module)
    with pytest.raises(SmartDownsampleError, match="in the Python environment of every worker"):
        extract_features(paths[:5], 8, runner=runner)


# --- lost workers -------------------------------------------------------------


def test_worker_dying_on_first_attempt_loses_no_image(
    client: Any,
    paths: list[str],
    local: SelectionResult,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    victims = [os.path.abspath(paths[30]), os.path.abspath(paths[150])]
    task = make_crashing_task(str(tmp_path), victims, every_time=False)
    use_runner(monkeypatch, DaskRunner(client, batch_size=16, task=task))
    try:
        result = downsample(paths, TARGET, show_progress=False, backend="dask", client=client)
    finally:
        wait_for_two(client)
    assert len(list(tmp_path.glob("*.killed"))) >= 1, "no worker was killed"
    assert_same(result, local)
    assert result.ok.all()


def test_worker_killed_from_outside_mid_run_loses_no_image(
    client: Any, paths: list[str], local: SelectionResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    killed: list[int] = []
    runner = DaskRunner(client, batch_size=8)

    def killing_runner(
        paths: Sequence[str],
        todo: NDArray[np.int64],
        hash_size: int,
        *,
        on_batch: Callable[[NDArray[np.int64], BatchResult], None],
    ) -> None:
        def hook(batch: NDArray[np.int64], result: BatchResult) -> None:
            if not killed:
                pid = next(iter(client.run(os.getpid).values()))
                os.kill(pid, KILL_SIGNAL)
                killed.append(pid)
            on_batch(batch, result)

        runner(paths, todo, hash_size, on_batch=hook)

    use_runner(monkeypatch, killing_runner)
    try:
        result = downsample(paths, TARGET, show_progress=False, backend="dask", client=client)
    finally:
        wait_for_two(client)
    assert killed
    assert_same(result, local)


def test_file_that_always_kills_its_worker_is_reported(
    paths: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison = paths[77]
    task = make_crashing_task(str(tmp_path), [os.path.abspath(poison)], every_time=True)
    others = [path for path in paths if path != poison]
    local = downsample(others, TARGET, show_progress=False)
    # One death per KilledWorker and one task per worker thread keep this short.
    config = {
        "distributed.scheduler.allowed-failures": 0,
        "distributed.scheduler.worker-saturation": 1.0,
    }
    cluster = _cluster(**config)
    with cluster, distributed.Client(cluster, set_as_default=False) as own:
        use_runner(monkeypatch, DaskRunner(own, batch_size=4, task=task))
        result = downsample(
            paths, TARGET, show_progress=False, image_loading_errors="skip", backend="dask"
        )
    assert [failure.path for failure in result.failures] == [poison]
    assert "a Dask worker died each time it decoded this file" in result.failures[0].reason
    keep = np.array([path != poison for path in result.paths])
    assert np.array_equal(result.ok, keep)
    assert result.features[keep].tobytes() == local.features.tobytes()
    assert result.selected_paths == local.selected_paths


def test_a_file_that_hangs_the_decoder_times_out_on_its_worker(
    paths: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``image_timeout`` holds on Dask workers too: the hung image is reported, the
    task goes on with the rest of its batch, and the run ends."""
    hung = str(tmp_path / f"IMG_{HANG}.jpg")
    with open(paths[0], "rb") as source, open(hung, "wb") as copy:
        copy.write(source.read())
    some = [*paths[:20], hung, *paths[20:40]]
    # Worker processes start with this environment: the test faults make a file marked
    # HANG sleep forever in the decoder (tests/faults/).
    monkeypatch.setenv("PYTHONPATH", worker_pythonpath(os.environ.get("PYTHONPATH")))
    cluster = _cluster()
    with cluster, distributed.Client(cluster, set_as_default=False) as own:
        result = downsample(
            some,
            5,
            show_progress=False,
            image_loading_errors="skip",
            backend="dask",
            client=own,
            image_timeout=2.0,
        )
    assert [failure.path for failure in result.failures] == [hung]
    assert "timed out after 2 s" in result.failures[0].reason
    assert int(result.ok.sum()) == 40 and result.n_selected == 5


# --- without a client, and without the extra -----------------------------------

OWN_CLUSTER_SCRIPT = """
import sys, time
import psutil
from distributed import Client
from smartdownsample import ImageLoadError
from smartdownsample.api import downsample

def workers_alive():
    return [
        child for child in psutil.Process().children(recursive=True)
        if child.is_running() and "spawn_main" in " ".join(child.cmdline())
    ]

if __name__ == "__main__":
    bad, paths = sys.argv[1], sys.argv[2:]
    local = downsample(paths, 10, show_progress=False)
    remote = downsample(paths, 10, show_progress=False, backend="dask")
    assert remote.selected_paths == local.selected_paths, "selection differs"
    assert remote.features.tobytes() == local.features.tobytes(), "features differ"
    try:
        downsample(paths + [bad], 10, show_progress=False, backend="dask")
    except ImageLoadError as exc:
        assert exc.path == bad, exc.path
    else:
        raise SystemExit("no ImageLoadError")
    deadline = time.monotonic() + 20
    while workers_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not workers_alive(), "the LocalCluster's workers outlived the run"
    try:
        Client.current()
    except ValueError:
        print("OK")
    else:
        raise SystemExit("a client is still open")
"""


def test_local_cluster_started_and_closed_without_client(
    paths: list[str], unreadable: dict[str, Path], tmp_path: Path
) -> None:
    script = tmp_path / "own_cluster.py"
    script.write_text(OWN_CLUSTER_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(unreadable["corrupt"]), *paths[:60]],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "OK"


MISSING_EXTRA_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["distributed"] = None
    from smartdownsample._exceptions import MissingExtraError
    from smartdownsample.extraction.dask import dask_runner, require_distributed
    from smartdownsample.api import downsample
    messages = []
    for attempt in (require_distributed, dask_runner, lambda: downsample([], 0, backend="dask")):
        try:
            attempt()
        except MissingExtraError as exc:
            messages.append(str(exc))
    print("\\n".join(messages))
    """
)


def test_missing_extra_gives_one_line_error() -> None:
    done = subprocess.run(
        [sys.executable, "-c", MISSING_EXTRA_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3, done.stdout + done.stderr
    assert len(set(lines)) == 1, "one import guard, one message"
    assert "the Dask backend needs the optional package" in lines[0]
    assert 'pip install "smartdownsample[dask]"' in lines[0]
    assert "distributed" in lines[0]
    assert issubclass(MissingExtraError, ImportError)
