"""Tests of the persistent feature cache (real image files, real SQLite files)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from smartdownsample import cache as cache_module
from smartdownsample._exceptions import CacheError, InvalidArgumentError
from smartdownsample.api import downsample
from smartdownsample.cache import (
    FEATURE_LAYOUT,
    FEATURE_VERSION,
    CacheWarning,
    FeatureCache,
    cache_info,
    clear_cache,
    open_cache,
)
from smartdownsample.extraction import CacheToken, extract_batch, extract_features, local_runner
from smartdownsample.features import FEATURE_DTYPE
from smartdownsample.paths import STAT_CHUNK
from smartdownsample.result import SelectionResult
from unprivileged import run_python_unprivileged

N_IMAGES = 200
TARGET = 30
IMAGE_SIDE = 64


def _write_image(path: Path, rng: np.random.Generator, kind: str = "JPEG") -> None:
    """A random picture of coloured blocks (so hashes and buckets vary)."""
    blocks = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    brightness = rng.uniform(0.2, 1.0)
    pixels = (np.kron(blocks, np.ones((16, 16, 1), dtype=np.uint8)) * brightness).astype(np.uint8)
    Image.fromarray(pixels).save(path, kind)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(7)
    paths = []
    for index in range(N_IMAGES):
        folder = root / f"site{index % 4}"
        folder.mkdir(exist_ok=True)
        path = folder / f"IMG_{index:04d}.JPG"
        _write_image(path, rng)
        paths.append(str(path))
    return paths


@pytest.fixture()
def fresh_images(tmp_path: Path) -> list[str]:
    """Images a test may modify."""
    rng = np.random.default_rng(11)
    paths = []
    for index in range(24):
        path = tmp_path / "img" / f"IMG_{index:04d}.JPG"
        path.parent.mkdir(exist_ok=True)
        _write_image(path, rng)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def uncached(images: list[str]) -> SelectionResult:
    return downsample(images, TARGET, show_progress=False, n_workers=2)


@pytest.fixture()
def no_cache_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        yield


def _same_result(a: SelectionResult, b: SelectionResult) -> None:
    assert a.selected_paths == b.selected_paths
    assert a.features.tobytes() == b.features.tobytes()
    assert np.array_equal(a.ok, b.ok)
    assert np.array_equal(a.bucket_ids, b.bucket_ids)
    assert np.array_equal(a.burst_ids, b.burst_ids)


def _open(database: Path, **options: bool) -> FeatureCache:
    store = open_cache(database, hash_size=8, **options)
    assert store is not None
    return store


def _integrity(database: Path) -> str:
    with sqlite3.connect(database) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def _fill(database: Path, paths: list[str], hash_size: int = 8) -> None:
    store = FeatureCache(database, hash_size=hash_size)
    try:
        extract_features(paths, hash_size, cache=store)
    finally:
        store.close()


# -- basics ------------------------------------------------------------------------


LAYOUT_OF_VERSION = {
    3: "[('dhash', '<u8'), ('structure', '|u1'), ('ahash_bit', '|u1'), ('mean_rgb', '<f4', (3,)), "
    "('contrast', '<f4'), ('chroma', '<f4'), ('capture_time', '<f8'), ('width', '<i4'), "
    "('height', '<i4')]",
}
"""The feature row layout each FEATURE_VERSION was released with."""


def test_feature_version_is_bumped_with_the_row_layout() -> None:
    # If this fails: FEATURE_DTYPE changed, so bump FEATURE_VERSION in smartdownsample/cache.py
    # and add the new layout (FEATURE_LAYOUT) under the new version above.
    assert str(FEATURE_DTYPE.descr) == FEATURE_LAYOUT
    assert LAYOUT_OF_VERSION.get(FEATURE_VERSION) == FEATURE_LAYOUT


CHANGED_FEATURES = """
import sys
import numpy as np
from smartdownsample import cache, features
features.FEATURE_DTYPE = np.dtype(features.FEATURE_DTYPE.descr + [("extra", "<f4")])
cache = __import__("importlib").reload(cache)
with cache.FeatureCache(sys.argv[1], hash_size=8) as store:
    print(cache.FEATURE_LAYOUT, store.read_only)
"""


def test_layout_follows_a_feature_change_by_itself(tmp_path: Path) -> None:
    """Issue 12: FEATURE_LAYOUT was a hand-kept string; a new feature column made the
    cache refuse to open until someone edited it."""
    database = tmp_path / "with space" / "features.sqlite"
    run = subprocess.run(
        [sys.executable, "-c", CHANGED_FEATURES, str(database)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "('extra', '<f4')" in run.stdout and run.stdout.endswith("False\n")


def test_lookup_hits_after_store(
    tmp_path: Path, images: list[str], no_cache_warnings: None
) -> None:
    database = tmp_path / "sub" / "dir" / "features.sqlite"
    paths = images[:50]
    plain = extract_features(paths, 8)
    with FeatureCache(database, hash_size=8) as store:
        rows, hit, _ = store.lookup(paths)
        assert not hit.any()
        cold = extract_features(paths, 8, cache=store)
    assert database.is_file()
    assert cold.n_cached == 0
    with FeatureCache(database, hash_size=8) as store:
        rows, hit, _ = store.lookup(paths)
        assert hit.all()
        assert rows.tobytes() == plain.features.tobytes()
        warm = extract_features(paths, 8, cache=store)
    assert warm.n_cached == len(paths)
    assert warm.features.tobytes() == plain.features.tobytes()
    assert _integrity(database) == "ok"


def test_large_lookup_with_missing_files(
    tmp_path: Path, images: list[str], no_cache_warnings: None
) -> None:
    # More paths than one stat chunk, so several threads stat them.
    database = tmp_path / "features.sqlite"
    _fill(database, images)
    missing = [str(tmp_path / "gone" / f"IMG_{i:05d}.JPG") for i in range(3000)]
    paths = [path for pair in zip(missing, [*images] * 15, strict=True) for path in pair]
    paths = list(dict.fromkeys(paths))
    expected = [not path.startswith(str(tmp_path)) for path in paths]
    assert len(paths) > 2 * STAT_CHUNK
    plain = extract_features(images, 8)
    with FeatureCache(database, hash_size=8) as store:
        rows, hit, _ = store.lookup(paths)
    assert hit.tolist() == expected
    first = {path: i for i, path in enumerate(paths) if hit[i]}
    order = [first[path] for path in images]
    assert rows[order].tobytes() == plain.features.tobytes()


def test_relative_paths_share_entries(
    tmp_path: Path, images: list[str], monkeypatch: pytest.MonkeyPatch, no_cache_warnings: None
) -> None:
    database = tmp_path / "features.sqlite"
    _fill(database, images[:5])
    monkeypatch.chdir(Path(images[0]).parent)
    with FeatureCache(database, hash_size=8) as store:
        _, hit, _ = store.lookup([os.path.basename(images[0])])
    assert hit.tolist() == [True]


def test_changed_size_mtime_or_missing_file_is_a_miss(
    tmp_path: Path, fresh_images: list[str], no_cache_warnings: None
) -> None:
    database = tmp_path / "features.sqlite"
    _fill(database, fresh_images)
    touched, rewritten, deleted, kept = fresh_images[:4]
    info = os.stat(touched)
    os.utime(touched, ns=(info.st_atime_ns, info.st_mtime_ns + 1))  # 1 ns later
    old = os.stat(rewritten)
    _write_image(Path(rewritten), np.random.default_rng(99))
    os.utime(rewritten, ns=(old.st_atime_ns, old.st_mtime_ns))  # mtime kept, size differs
    assert os.path.getsize(rewritten) != old.st_size
    os.remove(deleted)
    with FeatureCache(database, hash_size=8) as store:
        _, hit, _ = store.lookup(fresh_images)
        assert hit.tolist()[:4] == [False, False, False, True]
        assert hit[4:].all()
        result = extract_features(fresh_images, 8, cache=store)
    assert result.ok.tolist()[:4] == [True, True, False, True]
    expected = extract_batch([rewritten], 8).features
    assert result.features[1:2].tobytes() == expected.tobytes()
    # The recomputed rows were stored with the new stamps; the missing file was not.
    with FeatureCache(database, hash_size=8) as store:
        _, hit, _ = store.lookup(fresh_images)
    assert hit.tolist()[:4] == [True, True, False, True]
    assert kept in fresh_images


def test_other_hash_size_or_feature_version_is_a_miss(
    tmp_path: Path,
    fresh_images: list[str],
    monkeypatch: pytest.MonkeyPatch,
    no_cache_warnings: None,
) -> None:
    database = tmp_path / "features.sqlite"
    _fill(database, fresh_images, hash_size=8)
    with FeatureCache(database, hash_size=16) as store:
        assert not store.lookup(fresh_images)[1].any()
    monkeypatch.setattr(cache_module, "FEATURE_VERSION", cache_module.FEATURE_VERSION + 1)
    with FeatureCache(database, hash_size=8) as store:
        assert not store.lookup(fresh_images)[1].any()
        extract_features(fresh_images, 8, cache=store)
    monkeypatch.undo()
    info = cache_info(database)
    assert info["entries"] == 2 * len(fresh_images)
    assert info["current_entries"] == len(fresh_images)
    version = cache_module.FEATURE_VERSION
    assert [(v["feature_version"], v["hash_size"]) for v in info["versions"]] == [
        (version, 8),
        (version + 1, 8),
    ]


def test_failed_images_are_not_stored(tmp_path: Path, images: list[str]) -> None:
    database = tmp_path / "features.sqlite"
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really a jpeg")
    paths = [*images[:10], str(bad)]
    with FeatureCache(database, hash_size=8) as store:
        result = extract_features(paths, 8, cache=store)
    assert result.ok.tolist() == [True] * 10 + [False]
    with FeatureCache(database, hash_size=8) as store:
        _, hit, _ = store.lookup(paths)
    assert hit.tolist() == [True] * 10 + [False]
    assert cache_info(database)["entries"] == 10


def test_store_needs_the_lookup_token(tmp_path: Path, images: list[str]) -> None:
    with FeatureCache(tmp_path / "features.sqlite", hash_size=8) as store:
        batch = extract_batch(images[:2], 8)
        with pytest.raises(InvalidArgumentError, match="token"):
            store.store(images[:2], np.arange(2), batch, None)  # type: ignore[arg-type]
        _, _, token = store.lookup(images[:2])
        # Issue 12: the token was an untyped object; it is the protocol's CacheToken.
        assert isinstance(token, CacheToken)
        assert token.keys == [os.path.abspath(path) for path in images[:2]]
        store.store(images[:2], np.arange(2), batch, token)
        store.flush()
        assert store.lookup(images[:2])[1].all()


# -- through the public API ----------------------------------------------------------


def test_downsample_same_result_with_cache_cold_warm_and_off(
    tmp_path: Path, images: list[str], uncached: SelectionResult, no_cache_warnings: None
) -> None:
    database = tmp_path / "cache" / "features.sqlite"
    cold = downsample(images, TARGET, cache=str(database), show_progress=False, n_workers=2)
    warm = downsample(images, TARGET, cache=database, show_progress=False, n_workers=2)
    assert cold.n_cached == 0
    assert warm.n_cached == N_IMAGES
    _same_result(cold, uncached)
    _same_result(warm, uncached)


def test_adding_files_computes_only_the_new_ones(
    tmp_path: Path, images: list[str], no_cache_warnings: None
) -> None:
    database = tmp_path / "features.sqlite"
    downsample(images[:180], TARGET, cache=str(database), show_progress=False, n_workers=2)
    grown = downsample(images, TARGET, cache=str(database), show_progress=False, n_workers=2)
    assert grown.n_cached == 180
    _same_result(grown, downsample(images, TARGET, show_progress=False, n_workers=2))


# -- damaged, foreign, unwritable, locked -------------------------------------------


def test_random_bytes_file_warns_and_is_left_untouched(
    tmp_path: Path, images: list[str], uncached: SelectionResult
) -> None:
    database = tmp_path / "features.sqlite"
    junk = np.random.default_rng(3).integers(0, 256, 8192, dtype=np.uint8).tobytes()
    database.write_bytes(junk)
    with pytest.warns(CacheWarning, match=r"features\.sqlite.*cache=None"):
        result = downsample(images, TARGET, cache=str(database), show_progress=False)
    _same_result(result, uncached)
    assert result.n_cached == 0
    assert database.read_bytes() == junk
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.sqlite"]


def test_truncated_cache_is_moved_aside_and_replaced(
    tmp_path: Path, images: list[str], uncached: SelectionResult
) -> None:
    database = tmp_path / "features.sqlite"
    _fill(database, images)
    size = database.stat().st_size
    with open(database, "r+b") as handle:
        handle.truncate(size // 2)
    with pytest.warns(CacheWarning, match="damaged.*moved to"):
        first = downsample(images, TARGET, cache=str(database), show_progress=False)
    _same_result(first, uncached)
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("features.sqlite.corrupt-")]
    assert len(moved) == 1
    assert moved[0].stat().st_size == size // 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        second = downsample(images, TARGET, cache=str(database), show_progress=False)
    assert second.n_cached == N_IMAGES
    _same_result(second, uncached)


def _scribble_features_leaf(database: Path) -> None:
    """Damage the header of a leaf page of the features table.

    The page is found from the database itself (``dbstat``), so which page
    it is does not depend on the lengths of the stored paths, which change
    with the machine's temporary folder.
    """
    with contextlib.closing(sqlite3.connect(database)) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = [
            row[0]
            for row in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'features' AND pagetype = 'leaf' "
                "ORDER BY pageno"
            )
        ]
    assert pages, "the features table has no leaf page"
    page = pages[len(pages) // 2]
    with open(database, "r+b") as handle:
        handle.seek((page - 1) * page_size)
        handle.write(b"\x07" * 8)  # not a b-tree page type, nonsense cell counts


def test_damaged_leaf_page_found_at_open(
    tmp_path: Path, images: list[str], uncached: SelectionResult
) -> None:
    database = tmp_path / "features.sqlite"
    _fill(database, images)
    _scribble_features_leaf(database)
    with pytest.warns(CacheWarning, match="damaged.*moved to"):
        result = downsample(images, TARGET, cache=str(database), show_progress=False)
    _same_result(result, uncached)
    assert cache_info(database)["entries"] == N_IMAGES  # the fresh cache was filled


def test_failure_during_the_run_turns_the_cache_off(
    tmp_path: Path, images: list[str], uncached: SelectionResult
) -> None:
    database = tmp_path / "features.sqlite"
    _fill(database, images)
    store = FeatureCache(database, hash_size=8)  # opens fine
    with sqlite3.connect(database) as other:  # then the table vanishes under it
        other.execute("DROP TABLE features")
    other.close()
    with pytest.warns(CacheWarning, match="reading it failed.*no such table"):
        result = downsample(images, TARGET, cache=store, show_progress=False)
    _same_result(result, uncached)
    assert result.n_cached == 0


def test_other_sqlite_database_is_not_touched(tmp_path: Path, images: list[str]) -> None:
    database = tmp_path / "other.sqlite"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")
        conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.close()
    before = database.read_bytes()
    with pytest.warns(CacheWarning, match="another program"):
        assert open_cache(database, hash_size=8) is None
    assert database.read_bytes() == before
    with pytest.raises(CacheError, match="refusing"):
        clear_cache(database)
    with pytest.raises(CacheError, match="not a smartdownsample"):
        cache_info(database)


def test_schema_of_another_version_warns(
    tmp_path: Path, images: list[str], uncached: SelectionResult
) -> None:
    database = tmp_path / "features.sqlite"
    _fill(database, images[:10])
    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.warns(CacheWarning, match="another version"):
        result = downsample(images, TARGET, cache=str(database), show_progress=False)
    _same_result(result, uncached)
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 99
    conn.close()


def test_location_that_cannot_be_created(
    tmp_path: Path, images: list[str], uncached: SelectionResult
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("a regular file where a folder is needed")
    database = blocker / "cache" / "features.sqlite"
    with pytest.warns(CacheWarning, match="cannot create"):
        result = downsample(images, TARGET, cache=str(database), show_progress=False)
    _same_result(result, uncached)
    directory = tmp_path / "a_dir.sqlite"
    directory.mkdir()
    with pytest.warns(CacheWarning, match="not a file"):
        assert open_cache(directory, hash_size=8) is None
    too_long = tmp_path / ("x" * 300) / "features.sqlite"  # beyond NAME_MAX: ENAMETOOLONG
    with pytest.warns(CacheWarning, match="name too long"):
        assert open_cache(too_long, hash_size=8) is None


_READ_ONLY_RUN = """
import json, sys, warnings
from smartdownsample import downsample
from smartdownsample.cache import open_cache
images, database, target = json.loads(sys.argv[1])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    result = downsample(images, target, cache=database, show_progress=False)
    fresh = open_cache(database.replace("features.sqlite", "new/features.sqlite"), hash_size=8)
print(json.dumps({
    "cached": result.n_cached,
    "selected": result.selected_paths,
    "warnings": [str(w.message) for w in caught],
    "fresh": fresh is None,
}))
"""


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX file modes")
def test_read_only_folder_uses_cache_read_only(
    tmp_path: Path, images: list[str], uncached: SelectionResult
) -> None:
    """As an ordinary user (root ignores file modes): a read-only cache is read, never written."""
    folder = tmp_path / "ro"
    folder.mkdir()
    database = folder / "features.sqlite"
    _fill(database, images[:100])
    folder.chmod(0o555)
    database.chmod(0o444)
    try:
        run = run_python_unprivileged(_READ_ONLY_RUN, json.dumps([images, str(database), TARGET]))
    finally:
        folder.chmod(0o755)
        database.chmod(0o644)
    assert run.returncode == 0, run.stderr
    outcome = json.loads(run.stdout)
    assert outcome["cached"] == 100
    assert outcome["selected"] == uncached.selected_paths
    assert any("read-only" in w for w in outcome["warnings"]), outcome["warnings"]
    assert any("cannot create" in w for w in outcome["warnings"]), outcome["warnings"]
    assert outcome["fresh"] is True
    assert cache_info(database)["entries"] == 100


def test_read_only_mode_looks_up_but_never_writes(
    tmp_path: Path, images: list[str], no_cache_warnings: None
) -> None:
    database = tmp_path / "features.sqlite"
    _fill(database, images[:20])
    before = database.read_bytes()
    store = open_cache(database, hash_size=8, read_only=True)
    assert store is not None and store.read_only
    with store:
        result = extract_features(images[:40], 8, cache=store)
    assert result.n_cached == 20
    assert database.read_bytes() == before
    assert cache_info(database)["entries"] == 20
    missing = tmp_path / "missing.sqlite"
    with pytest.warns(CacheWarning, match="does not exist"):
        assert open_cache(missing, hash_size=8, read_only=True) is None


def test_locked_database_at_open_warns(tmp_path: Path, images: list[str]) -> None:
    database = tmp_path / "features.sqlite"
    _fill(database, images[:5])
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("DELETE FROM meta WHERE key = 'nothing'")
        with pytest.warns(CacheWarning, match="locked by another process"):
            assert open_cache(database, hash_size=8, busy_timeout=0.1) is None
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_lock_held_while_storing_warns_once_and_run_is_right(
    tmp_path: Path, images: list[str]
) -> None:
    database = tmp_path / "features.sqlite"
    store = FeatureCache(database, hash_size=8, busy_timeout=0.05, commit_rows=16)
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # holds the write lock; readers still work (WAL)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = extract_features(images[:100], 8, cache=store, runner=local_runner(1))
            store.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    cache_warnings = [w for w in caught if issubclass(w.category, CacheWarning)]
    assert len(cache_warnings) == 1
    assert "locked" in str(cache_warnings[0].message)
    assert result.ok.all()
    assert result.features.tobytes() == extract_features(images[:100], 8).features.tobytes()
    assert _integrity(database) == "ok"


def test_write_failure_warns_once_and_stops_writing(
    tmp_path: Path, images: list[str], uncached: SelectionResult
) -> None:
    database = tmp_path / "features.sqlite"
    store = FeatureCache(database, hash_size=8, commit_rows=8)
    assert store._conn is not None
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")  # a full disk, for this connection
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = downsample(images, TARGET, cache=store, show_progress=False)
    cache_warnings = [w for w in caught if issubclass(w.category, CacheWarning)]
    assert len(cache_warnings) == 1
    assert "full" in str(cache_warnings[0].message)
    _same_result(result, uncached)
    assert _integrity(database) == "ok"


# -- content verification -----------------------------------------------------------


needs_change_time = pytest.mark.skipif(
    not cache_module.CTIME_IS_CHANGE_TIME, reason="st_ctime is the creation time on Windows"
)


def _rewrite_keeping_size_and_times(path: Path, colour: tuple[int, int, int]) -> None:
    """Write another 48x48 BMP (same byte size) in place and restore the old times."""
    stamp = os.stat(path)
    time.sleep(0.01)  # a later change time even where the clock is coarse
    Image.new("RGB", (48, 48), colour).save(path, "BMP")
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (stamp.st_size, stamp.st_mtime_ns)
    if after.st_ctime_ns == stamp.st_ctime_ns:
        pytest.skip("this file system keeps no change time")


@needs_change_time
def test_rewrite_keeping_size_and_mtime_is_a_miss(tmp_path: Path, no_cache_warnings: None) -> None:
    """Issue 11, item 7: a sync tool restoring size and mtime got the stale features."""
    path = tmp_path / "frame.bmp"  # BMPs of one size have one byte size, whatever their pixels
    Image.new("RGB", (48, 48), (250, 250, 250)).save(path, "BMP")
    database = tmp_path / "features.sqlite"
    with _open(database) as store:
        first = extract_features([str(path)], 8, cache=store)
    _rewrite_keeping_size_and_times(path, (5, 5, 5))
    truth = extract_features([str(path)], 8)
    assert truth.features.tobytes() != first.features.tobytes()
    with _open(database) as store:  # stat only (the default): the change time differs
        fresh = extract_features([str(path)], 8, cache=store)
    assert fresh.n_cached == 0
    assert fresh.features.tobytes() == truth.features.tobytes()
    with _open(database) as store:
        assert extract_features([str(path)], 8, cache=store).n_cached == 1


def test_file_replaced_by_rename_keeping_size_and_times_is_a_miss(
    tmp_path: Path, no_cache_warnings: None
) -> None:
    """A copy tool writes a new file (new inode) and renames it over the old one."""
    path = tmp_path / "frame.bmp"
    Image.new("RGB", (48, 48), (250, 250, 250)).save(path, "BMP")
    database = tmp_path / "features.sqlite"
    with _open(database) as store:
        first = extract_features([str(path)], 8, cache=store)
    stamp = os.stat(path)
    replacement = tmp_path / ".frame.bmp.partial"
    Image.new("RGB", (48, 48), (5, 5, 5)).save(replacement, "BMP")
    os.utime(replacement, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    os.replace(replacement, path)
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (stamp.st_size, stamp.st_mtime_ns)
    assert after.st_ino != stamp.st_ino
    with _open(database) as store:
        fresh = extract_features([str(path)], 8, cache=store)
    assert fresh.n_cached == 0
    assert fresh.features.tobytes() != first.features.tobytes()
    assert fresh.features.tobytes() == extract_features([str(path)], 8).features.tobytes()


def test_verify_content_rejects_a_row_whose_digest_differs(
    tmp_path: Path, no_cache_warnings: None
) -> None:
    """What stat cannot see (same size, times and inode): only the digest tells."""
    path = tmp_path / "frame.bmp"
    Image.new("RGB", (48, 48), (250, 250, 250)).save(path, "BMP")
    database = tmp_path / "features.sqlite"
    with _open(database, verify_content=True) as store:
        assert extract_features([str(path)], 8, cache=store).n_cached == 0
    with _open(database, verify_content=True) as store:
        assert extract_features([str(path)], 8, cache=store).n_cached == 1
    # The stored digest no longer matches the content: as if the file had changed unseen.
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE features SET digest = ?", (b"\x00" * cache_module.DIGEST_SIZE,))
    conn.close()
    with _open(database) as store:  # stat only: the row is trusted
        assert extract_features([str(path)], 8, cache=store).n_cached == 1
    with _open(database, verify_content=True) as store:
        assert extract_features([str(path)], 8, cache=store).n_cached == 0


def test_verify_content_hashes_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    data = bytearray(os.urandom(3 * cache_module.VERIFY_CHUNK + 17))
    path.write_bytes(bytes(data))
    digest = cache_module._content_digest(str(path), len(data))
    for where in (0, len(data) // 2, len(data) - 1):  # start, middle (missed before), end
        data[where] ^= 0xFF
        path.write_bytes(bytes(data))
        assert cache_module._content_digest(str(path), len(data)) != digest
        data[where] ^= 0xFF
    path.write_bytes(bytes(data))
    assert cache_module._content_digest(str(path), len(data)) == digest


def test_downsample_and_cli_verify_cache(
    tmp_path: Path, fresh_images: list[str], no_cache_warnings: None
) -> None:
    from smartdownsample.cli import main

    database = tmp_path / "features.sqlite"
    cold = downsample(fresh_images, 6, cache=str(database), verify_cache=True, show_progress=False)
    warm = downsample(fresh_images, 6, cache=str(database), verify_cache=True, show_progress=False)
    assert (cold.n_cached, warm.n_cached) == (0, len(fresh_images))
    assert warm.selected_paths == cold.selected_paths
    report = tmp_path / "report.json"
    folder = str(Path(fresh_images[0]).parent)
    options = ["--cache", str(database), "--verify-cache", "-q", "--report", str(report)]
    code = main(["select", folder, "--target", "6", *options])
    assert code == 0
    assert json.loads(report.read_text())["parameters"]["verify_cache"] is True
    with _open(database) as store, pytest.raises(InvalidArgumentError, match="verify_content"):
        downsample(fresh_images, 6, cache=store, verify_cache=True, show_progress=False)


SCHEMA_1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE features (path TEXT NOT NULL, hash_size INTEGER NOT NULL,"
    " feature_version INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
    " digest BLOB, row BLOB NOT NULL, PRIMARY KEY (path, hash_size, feature_version))"
    " WITHOUT ROWID",
)
"""The tables of a cache written by smartdownsample 2.0 before issue 11 (schema 1)."""


def test_schema_1_cache_is_rebuilt_with_a_log_message(
    tmp_path: Path,
    fresh_images: list[str],
    caplog: pytest.LogCaptureFixture,
    no_cache_warnings: None,
) -> None:
    database = tmp_path / "features.sqlite"
    conn = sqlite3.connect(database)
    for statement in SCHEMA_1:
        conn.execute(statement)
    conn.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("application", "smartdownsample feature cache"), ("schema_version", "1")],
    )
    row = bytes(FEATURE_DTYPE.itemsize)
    conn.executemany(
        "INSERT INTO features VALUES (?, 8, ?, ?, ?, NULL, ?)",
        [
            (path, cache_module.FEATURE_VERSION, os.path.getsize(path), 0, row)
            for path in fresh_images
        ],
    )
    conn.execute(f"PRAGMA application_id = {cache_module.APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with caplog.at_level("WARNING", logger="smartdownsample.cache"), _open(database) as store:
        result = extract_features(fresh_images, 8, cache=store)
    assert result.n_cached == 0
    assert "schema 1" in caplog.text and f"its {len(fresh_images)} rows were dropped" in caplog.text
    info = cache_info(database)
    assert info["schema_version"] == cache_module.SCHEMA_VERSION == 2
    assert info["entries"] == len(fresh_images)
    with _open(database) as store:
        assert extract_features(fresh_images, 8, cache=store).n_cached == len(fresh_images)


# -- interruptions and concurrency --------------------------------------------------


class _Stop(KeyboardInterrupt):
    pass


def test_interrupted_run_leaves_a_usable_cache(
    tmp_path: Path, images: list[str], uncached: SelectionResult, no_cache_warnings: None
) -> None:
    database = tmp_path / "features.sqlite"
    done = 0

    def interrupt(count: int) -> None:
        nonlocal done
        done += count
        if done >= 96:
            raise _Stop

    store = FeatureCache(database, hash_size=8, commit_rows=10_000)
    with pytest.raises(KeyboardInterrupt):
        try:
            extract_features(images, 8, cache=store, progress=interrupt, runner=local_runner(1))
        finally:
            store.close()  # what downsample does on the way out
    assert _integrity(database) == "ok"
    saved = cache_info(database)["entries"]
    assert 96 <= saved < N_IMAGES
    result = downsample(images, TARGET, cache=str(database), show_progress=False)
    assert result.n_cached == saved
    _same_result(result, uncached)


_KILLED_CHILD = textwrap.dedent(
    """
    import os, sys, json
    from smartdownsample.cache import FeatureCache
    from smartdownsample.extraction import extract_features, local_runner
    paths, database = json.loads(sys.argv[1]), sys.argv[2]
    store = FeatureCache(database, hash_size=8, commit_rows=32)
    done = 0
    def crash(count):
        global done
        done += count
        if done >= 128:
            os._exit(9)  # no close, no commit of the pending rows: a hard crash
    extract_features(paths, 8, cache=store, progress=crash, runner=local_runner(1))
    """
)


def test_hard_crash_loses_only_uncommitted_rows(
    tmp_path: Path, images: list[str], uncached: SelectionResult
) -> None:
    database = tmp_path / "features.sqlite"
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_CHILD, json.dumps(images), str(database)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 9, child.stderr
    assert _integrity(database) == "ok"
    saved = cache_info(database)["entries"]
    assert 96 <= saved <= 128
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        result = downsample(images, TARGET, cache=str(database), show_progress=False)
    assert result.n_cached == saved
    _same_result(result, uncached)


_SHARING_CHILD = textwrap.dedent(
    """
    import json, sys, time, warnings
    from smartdownsample.api import downsample
    from smartdownsample.cache import CacheWarning, FeatureCache
    warnings.simplefilter("error", CacheWarning)
    paths, database, start = json.loads(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    target = int(sys.argv[4])
    time.sleep(max(0.0, start - time.time()))
    # Commit every 4 rows, so both processes write many small transactions at once.
    store = FeatureCache(database, hash_size=8, commit_rows=4)
    cold = downsample(paths, target, cache=store, show_progress=False, n_workers=1)
    warm = downsample(paths, target, cache=database, show_progress=False, n_workers=1)
    print(json.dumps({"cold": cold.selected_paths, "warm": warm.selected_paths,
                      "warm_cached": warm.n_cached}))
    """
)


def test_two_processes_share_one_cache(tmp_path: Path, images: list[str]) -> None:
    database = tmp_path / "shared" / "features.sqlite"
    sets = [images[:140], images[60:]]
    start = time.time() + 3.0  # both start decoding at the same moment
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _SHARING_CHILD,
                json.dumps(paths),
                str(database),
                str(start),
                str(TARGET),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for paths in sets
    ]
    outputs = [child.communicate(timeout=180) for child in children]
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    for paths, (out, _) in zip(sets, outputs, strict=True):
        report = json.loads(out)
        expected = downsample(paths, TARGET, show_progress=False).selected_paths
        assert report["cold"] == expected
        assert report["warm"] == expected
        assert report["warm_cached"] == len(paths)
    assert _integrity(database) == "ok"
    assert cache_info(database)["entries"] == N_IMAGES


# -- info and clear ------------------------------------------------------------------


def test_cache_info_and_clear(tmp_path: Path, images: list[str], no_cache_warnings: None) -> None:
    database = tmp_path / "features.sqlite"
    assert clear_cache(database) == 0
    _fill(database, images[:30])
    info = cache_info(database)
    assert info["exists"] and info["entries"] == 30 and info["current_entries"] == 30
    assert info["schema_version"] == cache_module.SCHEMA_VERSION
    assert info["size_bytes"] >= database.stat().st_size > 0
    assert info["created_by"].startswith("smartdownsample")
    assert clear_cache(database) == 30
    assert cache_info(database)["entries"] == 0
    with FeatureCache(database, hash_size=8) as store:
        assert not store.lookup(images[:30])[1].any()


def test_clear_refuses_non_sqlite_and_deletes_damaged_cache(
    tmp_path: Path, images: list[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database " * 100)
    with pytest.raises(CacheError, match="not an SQLite database"):
        clear_cache(notes)
    assert notes.exists()
    database = tmp_path / "features.sqlite"
    _fill(database, images)
    with open(database, "r+b") as handle:
        handle.truncate(database.stat().st_size // 3)
    assert clear_cache(database) == 0
    assert not database.exists()


def test_opening_while_another_process_reads_in_the_old_mode(
    tmp_path: Path, images: list[str], uncached: SelectionResult
) -> None:
    """Two runs creating one cache at once: SQLite refuses the switch to WAL at once while
    the other reads in rollback mode; the run goes on in that mode, and a later run
    switches."""
    database = tmp_path / "features.sqlite"
    _fill(database, images[:20])
    with contextlib.closing(sqlite3.connect(database)) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    reader = sqlite3.connect(database, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM features").fetchone()  # holds a shared lock
        with warnings.catch_warnings():
            warnings.simplefilter("error", CacheWarning)
            store = FeatureCache(database, hash_size=8)  # opened while the other reads
    finally:
        reader.close()  # the other run's read ends
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        try:
            result = downsample(images, TARGET, cache=store, show_progress=False)
        finally:
            store.close()
    _same_result(result, uncached)
    assert result.n_cached == 20
    with contextlib.closing(sqlite3.connect(database)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    downsample(images, TARGET, cache=str(database), show_progress=False)
    with contextlib.closing(sqlite3.connect(database)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert cache_info(database)["entries"] == N_IMAGES
