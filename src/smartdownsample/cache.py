"""Persistent feature cache: an SQLite file so that re-runs skip decoding.

Every image whose features were computed once is stored with what ``stat``
tells of the file (size, modification time, inode, change time); the next
run over the same files reads the rows back (hundreds of thousands per
second) instead of decoding the images.

What is detected
----------------
A cached row is used only when all of these match the row's key and stamp:

* the absolute **path** of the file, as passed;
* the file's **size** in bytes and its **modification time** in nanoseconds
  (``os.stat(path).st_size`` / ``st_mtime_ns``);
* the file's **inode** number (``st_ino``: the file index on Windows), so a
  file replaced by another one (a copy or sync tool writing a new file and
  renaming it over the old one) is recomputed even if it keeps the old
  size and times;
* on POSIX systems, the file's **change time** (``st_ctime_ns``), which the
  kernel sets on every write, rename or metadata change and which no
  program can set back (unlike the modification time, which ``touch -r``,
  ``os.utime``, ``rsync -t`` or ``cp -p`` restore), so a file rewritten in
  place is recomputed too. On Windows ``st_ctime`` is the creation time,
  which a rewrite keeps, so it is not used there (stored as 0);
* the **hash size** and the **feature version** (:data:`FEATURE_VERSION`,
  bumped whenever feature definitions change).

All of these are taken *before* the image is decoded, so a file that
changes while a run reads it is recomputed by the next run. They cost
nothing beyond the ``stat`` call the cache makes anyway.

What is *not* detected by default: a file rewritten in place, with its size
and modification time kept, on Windows or on a file system without a real
change time (FAT and exFAT volumes, some network shares); and a change time
that repeats (the system clock set back). Such a file keeps its old
features. Pass ``verify_content=True`` to :func:`open_cache`
(``verify_cache=True`` to :func:`~smartdownsample.downsample`,
``--verify-cache`` on the command line) to also compare a BLAKE2b digest of
the whole file: a warm run then reads every file once more (no decoding),
so it is several times slower but still faster than decoding.

Caches written with schema version 1 (without inode and change time) are
rebuilt on first use: their rows are dropped, with a log message, and
recomputed.

Failures never give a wrong result and never stop a run
-------------------------------------------------------
:func:`open_cache` returns ``None`` with a :class:`CacheWarning` naming the
file and the fix (the run then goes on without a cache) when the file

* is not an SQLite database, or is an SQLite database of another program:
  it is left untouched;
* is a smartdownsample cache that is damaged (a truncated copy, a failed
  integrity check): it is **moved aside** to
  ``<name>.corrupt-<YYYYmmdd-HHMMSS>`` (with its ``-wal``/``-shm``
  companions), never deleted, and a fresh cache is started in its place,
  so this run still caches (the warning names the moved file);
* was written by another version of the cache schema;
* is locked by another process for longer than the busy timeout, or lies in
  a folder that cannot be created.

An existing cache in a place this process cannot write to (a read-only
folder or file) is opened read-only: lookups work, nothing is stored. A
failure while storing (disk full, lock held too long, file damaged during
the run) warns once and stops writing for the rest of the run; the run's
result is unaffected.

Concurrency: the database uses write-ahead logging (WAL), so readers never
wait for writers, and writers wait (``busy_timeout``) and retry on a lock.
Several runs, in several processes, may share one file on a local disk. WAL
needs shared memory between the processes, so on a network file system all
processes sharing the cache must run on the same machine.

Rows are committed in transactions of :data:`COMMIT_ROWS` rows or every
:data:`COMMIT_SECONDS` seconds and when the cache is closed, so an
interrupted run (Ctrl-C, a crash, a power cut) loses at most the last
uncommitted rows and never leaves a damaged database.

Examples
--------
>>> import os, tempfile
>>> import numpy as np
>>> from PIL import Image
>>> from smartdownsample.extraction import extract_features
>>> folder = tempfile.mkdtemp()
>>> image = os.path.join(folder, "a.png"); Image.new("RGB", (40, 40), "red").save(image)
>>> database = os.path.join(folder, "cache", "features.sqlite")
>>> with open_cache(database, hash_size=8) as cache:
...     first = extract_features([image], 8, cache=cache)
>>> with open_cache(database, hash_size=8) as cache:
...     second = extract_features([image], 8, cache=cache)
>>> first.n_cached, second.n_cached, first.features.tobytes() == second.features.tobytes()
(0, 1, True)
>>> cache_info(database)["entries"]
1
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import stat
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import numpy as np
from numpy.typing import NDArray

from ._exceptions import CacheError, CacheWarning, InvalidArgumentError
from ._version import __version__
from .extraction import BatchResult, CacheToken
from .extraction.batch import RegionPath
from .features import FEATURE_DTYPE, empty_features
from .loading import MAX_IMAGE_FILE_BYTES
from .paths import STAT_CHUNK, STAT_THREADS, in_threads, stat_paths

__all__ = [
    "COMMIT_ROWS",
    "COMMIT_SECONDS",
    "FEATURE_LAYOUT",
    "FEATURE_VERSION",
    "SCHEMA_VERSION",
    "CacheWarning",
    "FeatureCache",
    "cache_info",
    "clear_cache",
    "open_cache",
]

logger = logging.getLogger(__name__)

FEATURE_VERSION = 3  # 2: contrast column, 4-level structure step; 3: chroma column
"""Version of the feature definitions stored in the cache. Bump it whenever
a change (in loading, thumbnails or features) changes the value of any
feature row, so that rows computed by older code are not reused."""

FEATURE_LAYOUT = str(FEATURE_DTYPE.descr)
"""The layout of the stored rows (their raw bytes), derived from
:data:`~smartdownsample.features.FEATURE_DTYPE`, so that a change of the
feature row changes it by itself. Rows are stored under
:data:`FEATURE_VERSION`, which must be bumped with such a change;
``tests/test_cache.py`` keeps the layout of every version and fails until it is."""

SCHEMA_VERSION = 2  # 2: inode and change time in the key
"""Version of the database tables (stored as ``PRAGMA user_version`` and in
the ``meta`` table). A file of an older schema version is rebuilt (its rows
dropped) when it can be written; a newer or unwritable one is not used."""

APPLICATION_ID = 0x53444331
"""``PRAGMA application_id`` of our cache files ("SDC1"): tells a damaged
cache of ours (moved aside) from some other SQLite file (left alone)."""

APPLICATION_NAME = "smartdownsample feature cache"

SQLITE_MAGIC = b"SQLite format 3\x00"
"""First 16 bytes of every SQLite database file."""

SQLITE_HEADER_SIZE = 100
APPLICATION_ID_OFFSET = 68
"""Byte offset of the big-endian application id in the SQLite file header."""

DEFAULT_BUSY_TIMEOUT = 10.0
"""Seconds a statement waits for another process's lock before failing.
Writers hold the lock for one short transaction (milliseconds), so 10 s is
only reached when another process is stuck."""

LOCK_RETRIES = 3
"""Attempts to write a batch of rows while the database stays locked before
the cache stops writing for the run (each attempt waits the busy timeout)."""

COMMIT_ROWS = 4096
"""Rows per write transaction: about a second of decoding on a laptop, and
large enough that the commit's cost (~1 ms in WAL mode) is negligible."""

COMMIT_SECONDS = 5.0
"""Longest time new rows stay uncommitted, bounding what a crash loses."""

LOOKUP_CHUNK = 500
"""Paths per ``IN (...)`` lookup query: below SQLite's historical limit of
999 bound parameters. Measured on 100,000 paths: as fast as larger chunks, a
temporary-table join or ``json_each`` (all within 15%); what matters is
querying the keys in sorted order (2-3x faster)."""

CACHE_SIZE_KIB = 32768
"""SQLite page cache per connection (32 MiB), enough for the index pages of
a few million rows."""

VERIFY_CHUNK = 1024 * 1024
"""Bytes read at a time while hashing a whole file with ``verify_content=True``."""

INODE_MASK = (1 << 64) - 1
INODE_SIGN = 1 << 63
"""An inode number is stored as a signed 64-bit SQLite integer: the low 64
bits (Windows ReFS has 128-bit file ids), reinterpreted as signed."""

CTIME_IS_CHANGE_TIME = os.name == "posix"
"""Whether ``st_ctime_ns`` is the inode change time (POSIX) rather than the
creation time (Windows), and so belongs in the key."""

DIGEST_SIZE = 16
"""BLAKE2b digest length in bytes (collisions are astronomically unlikely)."""

SQLITE_CORRUPT = 11
SQLITE_NOTADB = 26
"""Primary SQLite result codes of a damaged or foreign file."""

CORRUPT_MESSAGES = ("malformed", "not a database", "corrupt")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS features ("
    " path TEXT NOT NULL,"
    " hash_size INTEGER NOT NULL,"
    " feature_version INTEGER NOT NULL,"
    " size INTEGER NOT NULL,"
    " mtime_ns INTEGER NOT NULL,"
    " inode INTEGER NOT NULL,"
    " ctime_ns INTEGER NOT NULL,"
    " digest BLOB,"
    " row BLOB NOT NULL,"
    " PRIMARY KEY (path, hash_size, feature_version)"
    ") WITHOUT ROWID",
)
_FEATURE_COLUMNS = (
    "path",
    "hash_size",
    "feature_version",
    "size",
    "mtime_ns",
    "inode",
    "ctime_ns",
    "digest",
    "row",
)
_INSERT = (
    "INSERT OR REPLACE INTO features"
    f" ({', '.join(_FEATURE_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(_FEATURE_COLUMNS))})"
)
_Row = tuple[str, int, int, int, int, int, int, bytes | None, bytes]
"""One row to insert, in :data:`_FEATURE_COLUMNS` order."""

_FIX = "delete it (it only holds cached features) or run without the cache (cache=None)"


def _is_corruption(exc: sqlite3.Error) -> bool:
    """Whether an SQLite error means a damaged or non-database file."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB)
    message = str(exc).lower()
    return any(word in message for word in CORRUPT_MESSAGES)


def _is_lock(exc: sqlite3.Error) -> bool:
    message = str(exc).lower()
    return "locked" in message or "busy" in message


WAL_SWITCH_SECONDS = 2.0
"""How long opening a cache keeps trying to switch it to WAL mode. SQLite refuses
the switch at once (no busy wait) while another process reads the file in the
old mode, as when two runs create one cache at the same moment; after this the
run goes on in the file's current mode, which works as well, and the next run
makes the switch."""


def _switch_to_wal(conn: sqlite3.Connection) -> str:
    """Put the database in WAL mode if it can be done now; the journal mode in force."""
    deadline = time.monotonic() + WAL_SWITCH_SECONDS
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if not _is_lock(exc) or time.monotonic() > deadline:
                if not _is_lock(exc):
                    raise
                return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
            time.sleep(0.05)


NOT_UTF8_KEY_PREFIX = "\0"
"""Starts the ``path`` key of a name that is not UTF-8: no real path holds a NUL."""


BOX_KEY_SEPARATOR = "\0box:"
"""Joins a file's key and a box (:class:`RegionPath`): no real path holds a NUL."""

BOX_KEY_DECIMALS = 6
"""Decimals of a box in its key: finer than a pixel of a 100-megapixel frame,
coarse enough that the same box read from JSON twice gives the same key."""


def _db_key(path: str) -> str:
    """The ``path`` column value: the path, or for a name that is not UTF-8 (surrogate
    escapes, which SQLite text cannot hold) NUL + its file-system bytes as Latin-1
    (one character per byte), so no two files share a key. A :class:`RegionPath`
    (one box of a file) adds its box, rounded; a whole file keeps its plain key,
    so runs on a folder and on detections with whole images share rows."""
    key = str(path)
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        key = NOT_UTF8_KEY_PREFIX + os.fsencode(key).decode("latin-1")
    if isinstance(path, RegionPath):
        box = ",".join(f"{value:.{BOX_KEY_DECIMALS}f}" for value in path.box)
        key += BOX_KEY_SEPARATOR + box
    return key


def _absolute(path: str | os.PathLike[str]) -> str:
    """The absolute form of a path (unchanged when it is already absolute; a
    relative :class:`RegionPath` stays one, with the same box)."""
    if isinstance(path, RegionPath) and not os.path.isabs(path):
        return RegionPath(os.path.abspath(str(path)), path.box)
    text = path if isinstance(path, str) else os.fspath(path)
    if os.name == "posix" and text.startswith("/"):  # the common case, 5x faster than isabs
        return text
    return text if os.path.isabs(text) else os.path.abspath(text)


@dataclass(frozen=True)
class _StatArrays:
    """Size (-1: missing or not a regular file), mtime, inode and change time of files."""

    size: NDArray[np.int64]
    mtime_ns: NDArray[np.int64]
    inode: NDArray[np.int64]
    ctime_ns: NDArray[np.int64]

    @classmethod
    def empty(cls, count: int) -> _StatArrays:
        size = np.full(count, -1, dtype=np.int64)
        return cls(size, np.zeros_like(size), np.zeros_like(size), np.zeros_like(size))


def _signed_inode(inode: int) -> int:
    """``st_ino`` as a signed 64-bit integer (see :data:`INODE_MASK`)."""
    return ((inode & INODE_MASK) ^ INODE_SIGN) - INODE_SIGN


def _stat_arrays(infos: Sequence[os.stat_result | None]) -> _StatArrays:
    """The key fields of :func:`~smartdownsample.paths.stat_paths` results; -1 size
    for missing files and for anything but a regular file."""
    out = _StatArrays.empty(len(infos))
    for index, info in enumerate(infos):
        if info is not None and stat.S_ISREG(info.st_mode):
            out.size[index] = info.st_size
            out.mtime_ns[index] = info.st_mtime_ns
            out.inode[index] = _signed_inode(info.st_ino)
            out.ctime_ns[index] = info.st_ctime_ns if CTIME_IS_CHANGE_TIME else 0
    return out


def _content_digest(path: str, size: int) -> bytes | None:
    """BLAKE2b of the size and the whole content of a regular file (None if unreadable).

    Files over :data:`~smartdownsample.loading.MAX_IMAGE_FILE_BYTES` are not
    read (they are never decoded, so never cached).
    """
    if size > MAX_IMAGE_FILE_BYTES:
        return None
    digest = hashlib.blake2b(size.to_bytes(8, "little"), digest_size=DIGEST_SIZE)
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(path, flags)
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                return None  # swapped for a FIFO or device since it was stat'ed
            left = MAX_IMAGE_FILE_BYTES + 1
            while left > 0 and (chunk := handle.read(min(VERIFY_CHUNK, left))):
                digest.update(chunk)
                left -= len(chunk)
    except OSError as exc:
        logger.debug("cannot read %s for its content digest: %s", path, exc)
        return None
    return digest.digest()


def _digest_all(keys: Sequence[str], size: NDArray[np.int64]) -> list[bytes | None]:
    """:func:`_content_digest` of every stat'ed file (None elsewhere), in threads."""
    sizes = size.tolist()
    digests: list[bytes | None] = [None] * len(keys)

    def digest_range(start: int, stop: int) -> None:
        for index in range(start, stop):
            if sizes[index] >= 0:
                digests[index] = _content_digest(keys[index], sizes[index])

    chunk = max(1, STAT_CHUNK // STAT_THREADS)  # reads are slower than stats
    in_threads(
        [
            partial(digest_range, start, min(len(keys), start + chunk))
            for start in range(0, len(keys), chunk)
        ]
    )
    return digests


def _companions(path: Path) -> list[Path]:
    """The database file and its WAL and shared-memory files."""
    return [path, Path(f"{path}-wal"), Path(f"{path}-shm")]


def _read_header(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(SQLITE_HEADER_SIZE)
    except OSError:
        return b""


def _header_is_ours(header: bytes) -> bool:
    """An SQLite header whose application id marks one of our caches."""
    if len(header) < APPLICATION_ID_OFFSET + 4 or not header.startswith(SQLITE_MAGIC):
        return False
    found = int.from_bytes(header[APPLICATION_ID_OFFSET : APPLICATION_ID_OFFSET + 4], "big")
    return found == APPLICATION_ID


def _move_aside(path: Path) -> Path:
    """Rename a damaged cache (and its WAL files) to ``<name>.corrupt-<time>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while target.exists():
        counter += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
    for source, moved in zip(_companions(path), _companions(target), strict=True):
        if source.exists():
            os.replace(source, moved)
    return target


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


class FeatureCache:
    """Feature rows of image files in an SQLite database (a :class:`FeatureStore`).

    Use :func:`open_cache`, which turns every failure into a warning; this
    constructor raises :class:`~smartdownsample.CacheError` instead.

    Parameters
    ----------
    path : str or os.PathLike
        Database file; created (with its folders) if missing.
    hash_size : int
        Hash size of the rows looked up and stored.
    verify_content : bool, default False
        Also compare a digest of each file's whole content, which detects
        changes that ``stat`` cannot see (see the module documentation).
    read_only : bool, default False
        Only look rows up. Chosen automatically when the file or its folder
        cannot be written.
    busy_timeout : float, default 10.0
        Seconds to wait for another process's lock.
    commit_rows : int, default :data:`COMMIT_ROWS`
        Rows per write transaction.
    commit_seconds : float, default :data:`COMMIT_SECONDS`
        Longest time rows stay uncommitted.

    Raises
    ------
    CacheError
        When the file cannot be used (the message names it and the fix).

    Examples
    --------
    >>> import os, tempfile
    >>> database = os.path.join(tempfile.mkdtemp(), "features.sqlite")
    >>> with FeatureCache(database, hash_size=8) as cache:
    ...     rows, hit, token = cache.lookup([database + ".missing.jpg"])
    >>> hit.tolist()
    [False]
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        hash_size: int,
        verify_content: bool = False,
        read_only: bool = False,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        commit_rows: int = COMMIT_ROWS,
        commit_seconds: float = COMMIT_SECONDS,
    ) -> None:
        if commit_rows < 1:
            raise InvalidArgumentError(f"commit_rows must be at least 1, got {commit_rows}")
        self.path = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
        self.hash_size = int(hash_size)
        self.verify_content = verify_content
        self.busy_timeout = float(busy_timeout)
        self.commit_rows = commit_rows
        self.commit_seconds = float(commit_seconds)
        self.moved_to: Path | None = None
        """Where a damaged cache found at ``path`` was moved, if it was."""
        self.n_hits = 0
        self.n_stored = 0
        self._lock = threading.Lock()
        self._pending: list[_Row] = []
        self._last_commit = time.monotonic()
        self._lock_failures = 0
        self._warned = False
        self._conn: sqlite3.Connection | None = None
        try:
            if read_only and not self.path.is_file():
                raise CacheError(
                    f"feature cache {str(self.path)!r} does not exist, and read-only use was "
                    "asked; run once without read-only to create it, or run without the cache "
                    "(cache=None)"
                )
            self.read_only = read_only or not self._writable()
            self._conn = self._connect_checked()
        except OSError as exc:
            raise CacheError(
                f"cannot use feature cache {str(self.path)!r}: {exc}; choose another cache path "
                "or run without the cache (cache=None)"
            ) from exc

    # -- opening -----------------------------------------------------------------

    def _writable(self) -> bool:
        """Whether the database (and its WAL files) can be created or written here."""
        path = self.path
        if path.exists():
            if not path.is_file():
                raise CacheError(
                    f"feature cache {str(path)!r} exists but is not a file; "
                    "choose another cache path or run without the cache (cache=None)"
                )
            return os.access(path, os.R_OK | os.W_OK) and os.access(path.parent, os.W_OK)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(
                f"cannot create the folder of feature cache {str(path)!r}: {exc}; "
                "choose a writable cache path or run without the cache (cache=None)"
            ) from exc
        if not os.access(path.parent, os.W_OK):
            raise CacheError(
                f"cannot create feature cache {str(path)!r}: its folder is not writable; "
                "choose a writable cache path or run without the cache (cache=None)"
            )
        return True

    def _connect_checked(self) -> sqlite3.Connection:
        """Connect and validate; move a damaged cache of ours aside and start afresh."""
        try:
            return self._connect()
        except sqlite3.Error as exc:
            if not _is_corruption(exc):
                raise self._error(exc) from exc
            header = _read_header(self.path)
            if self.read_only or not _header_is_ours(header):
                kind = (
                    "is not a smartdownsample feature cache (not an SQLite database)"
                    if not header.startswith(SQLITE_MAGIC)
                    else "is damaged"
                )
                raise CacheError(
                    f"feature cache {str(self.path)!r} {kind}: {exc}; it was left untouched; {_FIX}"
                ) from exc
            try:
                self.moved_to = _move_aside(self.path)
            except OSError as failure:
                raise CacheError(
                    f"feature cache {str(self.path)!r} is damaged ({exc}) and could not be moved "
                    f"aside ({failure}); {_FIX}"
                ) from failure
            logger.warning(
                "feature cache %s is damaged (%s); moved it to %s and started a new one",
                self.path,
                exc,
                self.moved_to,
            )
            try:
                return self._connect()
            except sqlite3.Error as again:
                raise self._error(again) from again

    def _error(self, exc: sqlite3.Error) -> CacheError:
        where = str(self.path)
        if _is_lock(exc):
            return CacheError(
                f"feature cache {where!r} is locked by another process (waited "
                f"{self.busy_timeout:g} s): {exc}; try again when the other run has finished, "
                "or run without the cache (cache=None)"
            )
        if _is_corruption(exc):
            return CacheError(f"feature cache {where!r} is damaged: {exc}; {_FIX}")
        return CacheError(
            f"cannot use feature cache {where!r}: {exc}; choose another cache path or run "
            "without the cache (cache=None)"
        )

    def _open_connection(self) -> sqlite3.Connection:
        if self.read_only:
            return _connect_read_only(self.path, self.busy_timeout)
        return sqlite3.connect(
            str(self.path),
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )

    def _connect(self) -> sqlite3.Connection:
        conn = self._open_connection()
        try:
            conn.execute(f"PRAGMA cache_size = -{CACHE_SIZE_KIB}")
            tables = {
                name
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            application = conn.execute("PRAGMA application_id").fetchone()[0]
            if not tables and application in (0, APPLICATION_ID):
                if self.read_only:
                    raise CacheError(
                        f"feature cache {str(self.path)!r} is empty and cannot be written; "
                        "choose a writable cache path or run without the cache (cache=None)"
                    )
                self._create(conn)
            elif application != APPLICATION_ID:
                raise CacheError(
                    f"{str(self.path)!r} is an SQLite database of another program, not a "
                    "smartdownsample feature cache; it was left untouched; choose another "
                    "cache path or run without the cache (cache=None)"
                )
            self._upgrade(conn)
            self._validate(conn)
            if not self.read_only:
                mode = _switch_to_wal(conn)
                if str(mode).lower() != "wal":
                    logger.info(
                        "feature cache %s: WAL mode unavailable here, using %s", self.path, mode
                    )
                conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _create(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.executemany(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                [
                    ("application", APPLICATION_NAME),
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("created", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
                    ("created_by", f"smartdownsample {__version__}"),
                ],
            )
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        logger.info("created feature cache %s", self.path)

    def _upgrade(self, conn: sqlite3.Connection) -> None:
        """Rebuild a cache of an older schema: its rows lack parts of today's key.

        Schema 1 rows have no inode and change time, so they cannot be
        checked against a rewritten file; they are dropped (and recomputed by
        this run), never trusted. Another schema, or a cache this process
        cannot write, is left to :meth:`_validate` to refuse.
        """
        if self.read_only or not 0 < _user_version(conn) < SCHEMA_VERSION:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            old = _user_version(conn)  # again under the lock: another run may have done it
            if not 0 < old < SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            dropped = int(conn.execute("SELECT COUNT(*) FROM features").fetchone()[0])
            conn.execute("DROP TABLE features")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("upgraded", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
                    ("upgraded_by", f"smartdownsample {__version__}"),
                ],
            )
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        logger.warning(
            "feature cache %s was written with cache schema %d, whose key lacks the inode and "
            "change time; its %d rows were dropped and are recomputed by this run",
            self.path,
            old,
            dropped,
        )

    def _validate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        columns = tuple(row[1] for row in conn.execute("PRAGMA table_info(features)"))
        if version != SCHEMA_VERSION or meta.get("schema_version") != str(SCHEMA_VERSION):
            raise CacheError(
                f"feature cache {str(self.path)!r} was written by another version of "
                f"smartdownsample ({meta.get('created_by', 'unknown')}, cache schema {version}; "
                f"this version uses schema {SCHEMA_VERSION}); {_FIX}"
            )
        if sorted(columns) != sorted(_FEATURE_COLUMNS):
            raise CacheError(
                f"feature cache {str(self.path)!r} has an unexpected table layout {columns}; {_FIX}"
            )
        problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError(
                "database disk image is malformed (integrity check: "
                + "; ".join(str(p) for p in problems[:3])
                + ")"
            )

    # -- FeatureStore protocol ---------------------------------------------------

    def lookup(
        self, paths: Sequence[str], stats: Sequence[os.stat_result | None] | None = None
    ) -> tuple[NDArray[np.void], NDArray[np.bool_], CacheToken]:
        """Cached feature rows of ``paths`` that are still valid.

        Each file is stat'ed (a missing or unreadable file is a miss); a row
        is a hit when its size, modification time, inode and change time
        (and digest, with ``verify_content``) equal the file's.

        Parameters
        ----------
        paths : sequence of str
            Image files (relative paths are made absolute).
        stats : sequence of os.stat_result or None, optional
            ``os.stat`` of each path taken just before (None where it failed),
            so that the files are not stat'ed twice; taken here if not given.

        Returns
        -------
        rows : numpy.ndarray
            ``(N,)`` :data:`~smartdownsample.features.FEATURE_DTYPE` rows,
            zero where missed.
        hit : numpy.ndarray
            ``(N,)`` bool.
        token : CacheToken
            The stats taken now, before decoding; pass it to :meth:`store`.
        """
        count = len(paths)
        keys = [_absolute(p) for p in paths]
        seen = _stat_arrays(stat_paths(keys) if stats is None else stats)
        digests = _digest_all(keys, seen.size) if self.verify_content else None
        stamps = CacheToken(keys, seen.size, seen.mtime_ns, seen.inode, seen.ctime_ns, digests)
        rows = empty_features(count)
        hit = np.zeros(count, dtype=bool)
        with self._lock:
            if self._conn is None:
                return rows, hit, stamps
            try:
                self._fetch(stamps, rows, hit)
            except sqlite3.Error as exc:
                self._disable(f"reading it failed ({exc})")
                return empty_features(count), np.zeros(count, dtype=bool), stamps
        self.n_hits += int(hit.sum())
        return rows, hit, stamps

    def _fetch(self, stamps: CacheToken, rows: NDArray[np.void], hit: NDArray[np.bool_]) -> None:
        assert self._conn is not None
        candidates = np.flatnonzero(stamps.size >= 0)
        keys = stamps.keys
        # Sorted keys walk the primary-key B-tree in order: measured 2-3x faster.
        ordered = sorted(candidates.tolist(), key=keys.__getitem__)
        itemsize = FEATURE_DTYPE.itemsize
        for start in range(0, len(ordered), LOOKUP_CHUNK):
            chunk = ordered[start : start + LOOKUP_CHUNK]
            position = {_db_key(keys[i]): i for i in chunk}
            marks = ",".join("?" * len(position))
            found = self._conn.execute(
                "SELECT path, size, mtime_ns, inode, ctime_ns, digest, row FROM features"
                f" WHERE hash_size = ? AND feature_version = ? AND path IN ({marks})",
                (self.hash_size, FEATURE_VERSION, *position),
            ).fetchall()
            if not found:
                continue
            names, sizes, mtimes, inodes, ctimes, digests, blobs = zip(*found, strict=True)
            # IN (...) matches exactly (BINARY collation), so every name is a key.
            where = np.fromiter((position[name] for name in names), np.int64, len(names))
            good = (np.array(sizes, dtype=np.int64) == stamps.size[where]) & (
                np.array(mtimes, dtype=np.int64) == stamps.mtime_ns[where]
            )
            good &= np.array(inodes, dtype=np.int64) == stamps.inode[where]
            good &= np.array(ctimes, dtype=np.int64) == stamps.ctime_ns[where]
            good &= np.fromiter((len(blob) == itemsize for blob in blobs), bool, len(blobs))
            if stamps.digests is not None:
                wanted = stamps.digests
                good &= np.fromiter(
                    (
                        digest is not None and digest == wanted[index]
                        for digest, index in zip(digests, where.tolist(), strict=True)
                    ),
                    bool,
                    len(digests),
                )
            chosen = np.flatnonzero(good)
            if len(chosen):
                data = b"".join([blobs[i] for i in chosen.tolist()])
                rows[where[chosen]] = np.frombuffer(data, dtype=FEATURE_DTYPE)
                hit[where[chosen]] = True

    def store(
        self,
        paths: Sequence[str],
        indices: NDArray[np.int64],
        result: BatchResult,
        token: CacheToken,
    ) -> None:
        """Queue the successfully computed rows of ``paths[indices]`` for saving.

        Rows are written with the stats from ``token`` (taken by
        :meth:`lookup` before decoding) and committed every
        :data:`COMMIT_ROWS` rows or :data:`COMMIT_SECONDS` seconds and on
        :meth:`close`. Failed images and files that could not be stat'ed
        are not stored.

        Parameters
        ----------
        paths : sequence of str
            The paths given to :meth:`lookup`.
        indices : numpy.ndarray
            Positions in ``paths`` of the batch's rows.
        result : BatchResult
            The batch's features and ok mask.
        token : CacheToken
            What :meth:`lookup` returned for these paths.

        Raises
        ------
        InvalidArgumentError
            If ``token`` does not come from :meth:`lookup` on these paths.
        """
        if not isinstance(token, CacheToken) or len(token.keys) != len(paths):
            raise InvalidArgumentError(
                "FeatureCache.store needs the token that lookup() returned for the same paths"
            )
        with self._lock:
            self._queue(indices, result, token)
        if (
            len(self._pending) >= self.commit_rows
            or time.monotonic() - self._last_commit >= self.commit_seconds
        ):
            self.flush()

    def _queue(self, indices: NDArray[np.int64], result: BatchResult, token: CacheToken) -> None:
        if self.read_only or self._conn is None:
            return
        features = np.ascontiguousarray(result.features, dtype=FEATURE_DTYPE)
        data = features.tobytes()
        itemsize = FEATURE_DTYPE.itemsize
        size, mtime, digests = token.size, token.mtime_ns, token.digests
        for offset, index in enumerate(np.asarray(indices).tolist()):
            if not result.ok[offset] or size[index] < 0:
                continue
            digest = digests[index] if digests is not None else None
            if digests is not None and digest is None:
                continue
            self._pending.append(
                (
                    _db_key(token.keys[index]),
                    self.hash_size,
                    FEATURE_VERSION,
                    int(size[index]),
                    int(mtime[index]),
                    int(token.inode[index]),
                    int(token.ctime_ns[index]),
                    digest,
                    data[offset * itemsize : (offset + 1) * itemsize],
                )
            )

    def flush(self) -> None:
        """Commit the queued rows now (a failure warns once and stops writing)."""
        with self._lock:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        if self._conn is None or self.read_only or not self._pending:
            self._last_commit = time.monotonic()
            return
        pending = sorted(self._pending)  # key order: measured faster B-tree inserts
        for _ in range(LOCK_RETRIES if final else 1):
            try:
                self._write(pending)
            except sqlite3.Error as exc:
                if not _is_lock(exc):
                    self._disable(f"writing to it failed ({exc})")
                    return
                self._lock_failures += 1
                logger.info("feature cache %s is locked (%s); will retry", self.path, exc)
                continue
            self.n_stored += len(pending)
            self._pending.clear()
            self._lock_failures = 0
            self._last_commit = time.monotonic()
            return
        if final or self._lock_failures >= LOCK_RETRIES:
            self._disable(
                f"it stayed locked by another process ({self._lock_failures} waits of "
                f"{self.busy_timeout:g} s)"
            )
        # Otherwise the rows stay queued and the next commit tries again.

    def _write(self, pending: list[_Row]) -> None:
        assert self._conn is not None
        try:
            # BEGIN inside the try: Ctrl-C right after it must not leave the write lock held.
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(_INSERT, pending)
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def _disable(self, what: str) -> None:
        """Stop using the cache for this run, with one warning."""
        self._pending.clear()
        if self._conn is not None:
            try:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                logger.debug("rollback of %s failed: %s", self.path, exc)
            self._conn.close()
            self._conn = None
        if not self._warned:
            self._warned = True
            warnings.warn(
                f"feature cache {str(self.path)!r}: {what}; this run goes on without the "
                f"cache (results are not affected); if this persists, {_FIX}",
                CacheWarning,
                stacklevel=3,
            )

    def close(self) -> None:
        """Commit the queued rows and close the database (safe to call twice)."""
        with self._lock:
            try:
                self._flush(final=True)
            finally:  # closed even if interrupted: closing rolls back an open transaction
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
        logger.debug(
            "feature cache %s closed: %d hits, %d rows stored",
            self.path,
            self.n_hits,
            self.n_stored,
        )

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "read-only" if self.read_only else "read-write"
        state = "closed" if self._conn is None else mode
        return f"FeatureCache({str(self.path)!r}, hash_size={self.hash_size}, {state})"


def open_cache(
    path: str | os.PathLike[str],
    *,
    hash_size: int,
    verify_content: bool = False,
    read_only: bool = False,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
) -> FeatureCache | None:
    """Open (or create) a feature cache, or warn and return None if it cannot be used.

    Parameters
    ----------
    path : str or os.PathLike
        Database file; its folders are created if missing.
    hash_size : int
        Hash size of the rows looked up and stored.
    verify_content : bool, default False
        Also compare a digest of each file's whole content (see the module
        documentation for what is detected without it).
    read_only : bool, default False
        Never write (chosen automatically where the file cannot be written).
    busy_timeout : float, default 10.0
        Seconds to wait for another process's lock.

    Returns
    -------
    FeatureCache or None
        None, after a :class:`CacheWarning` naming the file and the fix,
        when the cache cannot be used; the run then goes on without it.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> cache = open_cache(os.path.join(folder, "sub", "features.sqlite"), hash_size=8)
    >>> cache is not None and not cache.read_only
    True
    >>> cache.close()
    >>> not_a_cache = os.path.join(folder, "notes.txt")
    >>> _ = open(not_a_cache, "w").write("my notes " * 20)
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     print(open_cache(not_a_cache, hash_size=8))
    None
    >>> caught[0].category.__name__, open(not_a_cache).read(9)
    ('CacheWarning', 'my notes ')
    """
    try:
        cache = FeatureCache(
            path,
            hash_size=hash_size,
            verify_content=verify_content,
            read_only=read_only,
            busy_timeout=busy_timeout,
        )
    except CacheError as exc:
        warnings.warn(f"{exc}; going on without it", CacheWarning, stacklevel=2)
        return None
    if cache.moved_to is not None:
        warnings.warn(
            f"feature cache {str(cache.path)!r} was damaged; it was moved to "
            f"{str(cache.moved_to)!r} (delete that file when you no longer need it) and a new, "
            "empty cache was started",
            CacheWarning,
            stacklevel=2,
        )
    elif cache.read_only and not read_only:
        warnings.warn(
            f"feature cache {str(cache.path)!r} cannot be written here; it is used read-only "
            "(new features are not saved); make it writable, choose another cache path, "
            "or run without the cache (cache=None)",
            CacheWarning,
            stacklevel=2,
        )
    return cache


def _connect_read_only(path: Path, timeout: float = DEFAULT_BUSY_TIMEOUT) -> sqlite3.Connection:
    """Open a database for reading only, even in a folder this process cannot write.

    SQLite reads a WAL database read-only only if its ``-shm`` file exists
    or can be created. Where it cannot, the file is opened ``immutable``:
    without locks, reading the last checkpointed state. Rows are facts about
    a file stamp, so an older state is still right, and a torn read from a
    concurrent checkpoint shows up as a damaged-database error, which turns
    the cache off for the run.
    """
    base = f"file:{quote(str(path))}?mode=ro"
    conn = sqlite3.connect(
        base, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        conn.close()
        if "readonly" not in str(exc).lower().replace(" ", ""):
            raise
        logger.info("reading feature cache %s as immutable: %s", path, exc)
        conn = sqlite3.connect(
            f"{base}&immutable=1",
            uri=True,
            timeout=timeout,
            isolation_level=None,
            check_same_thread=False,
        )
    return conn


def cache_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Describe a feature cache file without changing it.

    Parameters
    ----------
    path : str or os.PathLike
        Database file.

    Returns
    -------
    dict
        ``path``, ``exists``, ``size_bytes`` (with the WAL files),
        ``entries`` (rows of every version), ``current_entries`` (rows this
        version can use, any hash size), ``versions`` (list of dicts with
        ``hash_size``, ``feature_version`` and ``entries``),
        ``schema_version``, ``feature_version`` (this package's),
        ``created`` and ``created_by``.

    Raises
    ------
    CacheError
        If the file exists but is not a readable smartdownsample cache.

    Examples
    --------
    >>> import os, tempfile
    >>> missing = os.path.join(tempfile.mkdtemp(), "none.sqlite")
    >>> cache_info(missing)["exists"], cache_info(missing)["entries"]
    (False, 0)
    """
    where = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    info: dict[str, Any] = {
        "path": str(where),
        "exists": where.is_file(),
        "size_bytes": sum(p.stat().st_size for p in _companions(where) if p.is_file()),
        "entries": 0,
        "current_entries": 0,
        "versions": [],
        "schema_version": None,
        "feature_version": FEATURE_VERSION,
        "created": None,
        "created_by": None,
    }
    if not info["exists"]:
        return info
    try:
        conn = _connect_read_only(where)
    except sqlite3.Error as exc:
        raise CacheError(f"cannot open feature cache {str(where)!r}: {exc}; {_FIX}") from exc
    try:
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            raise CacheError(f"{str(where)!r} is not a smartdownsample feature cache")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        versions = conn.execute(
            "SELECT hash_size, feature_version, COUNT(*) FROM features"
            " GROUP BY hash_size, feature_version ORDER BY feature_version, hash_size"
        ).fetchall()
    except sqlite3.Error as exc:
        raise CacheError(f"cannot read feature cache {str(where)!r}: {exc}; {_FIX}") from exc
    finally:
        conn.close()
    info["versions"] = [
        {"hash_size": h, "feature_version": v, "entries": n} for h, v, n in versions
    ]
    info["entries"] = sum(n for _, _, n in versions)
    info["current_entries"] = sum(n for _, v, n in versions if v == FEATURE_VERSION)
    schema = meta.get("schema_version")
    info["schema_version"] = int(schema) if schema is not None and schema.isdigit() else schema
    info["created"] = meta.get("created")
    info["created_by"] = meta.get("created_by")
    return info


def clear_cache(path: str | os.PathLike[str]) -> int:
    """Empty a feature cache; return how many rows were removed.

    A healthy cache is emptied in one transaction (safe while other runs use
    it) and compacted. A damaged cache of ours is deleted with its WAL
    files. A file that is not a smartdownsample cache is refused.

    Parameters
    ----------
    path : str or os.PathLike
        Database file (a missing file is already clear: returns 0).

    Returns
    -------
    int
        Rows removed (0 for a deleted damaged file, whose rows cannot be counted).

    Raises
    ------
    CacheError
        If the file is not a smartdownsample cache, or is locked or read-only.

    Examples
    --------
    >>> import os, tempfile
    >>> database = os.path.join(tempfile.mkdtemp(), "features.sqlite")
    >>> open_cache(database, hash_size=8).close()
    >>> clear_cache(database), cache_info(database)["entries"]
    (0, 0)
    """
    where = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    if not where.exists():
        return 0
    if not where.is_file():
        raise CacheError(f"{str(where)!r} is not a feature cache file (not a regular file)")
    header = _read_header(where)
    if not header.startswith(SQLITE_MAGIC):
        raise CacheError(
            f"{str(where)!r} is not a smartdownsample feature cache (not an SQLite database); "
            "refusing to clear it"
        )
    try:
        conn = sqlite3.connect(str(where), timeout=DEFAULT_BUSY_TIMEOUT, isolation_level=None)
    except sqlite3.Error as exc:
        raise CacheError(f"cannot open feature cache {str(where)!r}: {exc}") from exc
    try:
        removed = _empty(conn, where)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if not (_is_corruption(exc) and _header_is_ours(header)):
            raise CacheError(f"cannot clear feature cache {str(where)!r}: {exc}") from exc
        for companion in _companions(where):
            companion.unlink(missing_ok=True)
        logger.info("deleted damaged feature cache %s", where)
        return 0
    finally:
        conn.close()
    logger.info("cleared %d rows from feature cache %s", removed, where)
    return removed


def _empty(conn: sqlite3.Connection, where: Path) -> int:
    """Delete every row of a healthy cache of ours and compact the file."""
    if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
        raise CacheError(
            f"{str(where)!r} is an SQLite database of another program, not a "
            "smartdownsample feature cache; refusing to clear it"
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        removed = int(conn.execute("DELETE FROM features").rowcount)
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    conn.execute("VACUUM")
    return removed
