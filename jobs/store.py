"""The embedded store: a workspace folder of Parquet tables queried with DuckDB.

Layout::

    <workspace>/
      tables/<name>.parquet     one table per stage (reviews, quarantine, review_scores,
                                user_profiles, item_profiles, recommendations, runs)
      models/<name>/<version>/  trained artifacts; models/<name>/CURRENT names the live one
      partial/<name>/<key>/     checkpointed parts of a stage that has not finished yet
                                (``part-*.parquet``); removed when the stage completes
      demo/                     the generated demo shop, when `emorec run` made one
      .lock                     held by the one process writing to the workspace
      .forget_key               secret of the ``forgotten_users`` hashes (see jobs.forget)

Every write goes to a temporary file in the same folder, is flushed to disk, and is then
renamed over the old one (``os.replace`` is atomic on POSIX), so a crash leaves either the
old complete table or the new complete table, never half of one. Models are written into
a fresh version folder and published by atomically replacing ``CURRENT``. Every path
the store builds from a name (table, model, version, the ``CURRENT`` pointer) is checked
to stay inside the workspace, and an unwritable or full disk is a :class:`WorkspaceError`
that says the previous outputs are intact.

Nothing is ever written, deleted or loaded through a symbolic link inside the workspace: the
writer lock (:meth:`Workspace.lock`) refuses a workspace that holds one (the lock file itself is
opened with ``O_NOFOLLOW``), and reading a table or loading a model checks the same. The
workspace folder itself may be a link (e.g. to a bigger disk). Every published model folder
carries a SHA-256 manifest (:mod:`emorec.common.manifest`), verified before it is loaded.

``emorec query`` runs in a sandbox that cannot write (:meth:`Workspace.connect`): an
in-memory DuckDB database whose only data are the workspace tables, handed over as Arrow
datasets, with every file-system access disabled and the configuration locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from emorec.common.atomic import atomic_write, atomic_write_text, fsync_dir, temp_path, write_synced
from emorec.common.errors import ArtifactError, ConfigError, EmorecError, InputError, WorkspaceError
from emorec.common.manifest import verify_manifest, write_manifest

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE = Path("emorec-workspace")
METADATA_KEY = b"emorec"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_PART = re.compile(r"^part-(\d{6})\.parquet$")
#: TEST-ONLY fault injection: ``EMOREC_TEST_KILL_AT=<tag>[#<n>]`` SIGKILLs the process the
#: n-th time (default 1st) it reaches :func:`crash_point` ``tag``. Never set in production.
KILL_ENV = "EMOREC_TEST_KILL_AT"
_crash_hits: Counter = Counter()


class WorkspaceBusy(WorkspaceError):
    """Another process holds the workspace lock."""


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"invalid table or model name {name!r}: use lower-case letters, digits and _")
    return name


def _check_version(version: str) -> str:
    if not isinstance(version, str) or not _VERSION.match(version) or ".." in version:
        raise ConfigError(f"invalid model version {version!r}: use letters, digits, '.', '_' and '-' (no path)")
    return version


def _remove_tree(path: Path) -> None:
    """Delete a folder (or file) of the workspace; a symbolic link is removed, never followed."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


#: Errors raised while a model is saved that mean "the disk is full" even when the library that
#: wrote the file (safetensors, LightGBM) does not raise an OSError.
_DISK_FULL = re.compile(r"no space left|disk full|file too large|errno 2[78]|os error 2[78]|storagefull|"
                        r"filetoolarge|quota exceeded|cannot write|could not write|failed to write|"
                        r"wrote \d+ of \d+ bytes", re.IGNORECASE)


#: The file listing the renames of a multi-table write in progress (see ``write_tables``).
PUBLISH_JOURNAL = ".publish.json"


def crash_point(tag: str) -> None:
    """TEST-ONLY: kill this process with SIGKILL here if ``$EMOREC_TEST_KILL_AT`` names ``tag``.

    Used by ``tests/test_faults.py`` to stop a real run at an exact point (mid-scoring, between
    a table's temporary file and its rename, before a model is published) without timing games.
    """
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return
    want, _, nth = spec.partition("#")
    if want != tag:
        return
    _crash_hits[tag] += 1
    if _crash_hits[tag] >= int(nth or 1):
        log.warning("%s=%s: killing process %d (test-only fault injection)", KILL_ENV, spec, os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)


class Workspace:
    """A folder holding every stage's outputs.

    Parameters
    ----------
    root
        The workspace folder; created on first write.
    """

    def __init__(self, root: str | Path = DEFAULT_WORKSPACE) -> None:
        self.root = Path(root)

    @property
    def tables_dir(self) -> Path:
        return self.root / "tables"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def table_path(self, name: str) -> Path:
        return self.tables_dir / f"{_check_name(name)}.parquet"

    def has_table(self, name: str) -> bool:
        return self.table_path(name).exists()

    def tables(self) -> list[str]:
        return sorted(p.stem for p in self.tables_dir.glob("*.parquet")) if self.tables_dir.exists() else []

    # --- tables ------------------------------------------------------------------------
    def write_table(self, name: str, df: pd.DataFrame, metadata: dict | None = None) -> Path:
        """Atomically write ``df`` as table ``name`` with optional JSON metadata."""
        return self.write_tables({name: (df, metadata)})[name]

    def write_tables(self, tables: dict[str, tuple[pd.DataFrame, dict | None]]) -> dict[str, Path]:
        """Write several tables of one stage, all or none: every temporary file first, then a
        publish journal (``tables/.publish.json``, the list of renames), then the renames.

        A crash or a full disk while the temporary files are written leaves all the previous
        tables. A crash between two renames leaves the journal and the remaining temporary
        files: the next writer (:meth:`lock`) completes the renames before anything else, so
        the tables of one stage never stay half old, half new. Raises :class:`WorkspaceError`
        (naming the table and the OS error) when the workspace cannot be written.
        """
        staged: list[tuple[str, Path, Path]] = []
        journal: Path | None = None
        try:
            for name, (df, metadata) in tables.items():
                path = self.table_path(name)
                table = pa.Table.from_pandas(df, preserve_index=False)
                meta = dict(table.schema.metadata or {})
                meta[METADATA_KEY] = json.dumps(metadata or {}, sort_keys=True, default=str).encode()
                table = table.replace_schema_metadata(meta)
                tmp = temp_path(path)
                staged.append((name, path, tmp))
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    write_synced(tmp, lambda p, table=table: _write_parquet(table, p))
                except OSError as exc:
                    raise WorkspaceError(f"could not write table {name!r} to {path}: {exc.strerror or exc}; "
                                         "the previous version is intact") from exc
                crash_point(f"write:{name}")
            journal = self._write_journal([(path, tmp) for _, path, tmp in staged]) if len(staged) > 1 else None
            for name, path, tmp in staged:
                try:
                    os.replace(tmp, path)
                except OSError as exc:
                    state = ("the previous version is intact" if journal is None else "the tables renamed before it "
                             "are new; the next run of emorec completes the others from the publish journal")
                    raise WorkspaceError(f"could not write table {name!r} to {path}: {exc.strerror or exc}; {state}") from exc
                crash_point(f"rename:{name}")
            if staged:
                with contextlib.suppress(OSError):
                    fsync_dir(staged[0][1].parent)
            if journal is not None:
                journal.unlink(missing_ok=True)
                journal = None
        finally:
            if journal is None:  # otherwise a rename failed: the next writer completes the journal
                for _, _, tmp in staged:
                    tmp.unlink(missing_ok=True)
        return {name: path for name, path, _ in staged}

    def _write_journal(self, renames: list[tuple[Path, Path]]) -> Path:
        """Durably record the renames of a multi-table write (``tables/.publish.json``)."""
        journal = self.tables_dir / PUBLISH_JOURNAL
        try:
            atomic_write_text(journal, json.dumps([{"tmp": t.name, "table": p.name} for p, t in renames]))
        except OSError as exc:
            raise WorkspaceError(f"could not write the publish journal {journal}: {exc.strerror or exc}; "
                                 "the previous tables are intact") from exc
        return journal

    def _finish_interrupted_publish(self) -> None:
        """Complete the renames of a multi-table write whose process was killed midway."""
        journal = self.tables_dir / PUBLISH_JOURNAL
        if not journal.exists():
            return
        try:
            entries = json.loads(journal.read_text())
        except (OSError, ValueError) as exc:
            raise WorkspaceError(f"the publish journal {journal} is unreadable ({exc}); the tables it names may be "
                                 "half updated: rerun the stage that wrote them, then delete the journal") from exc
        done = []
        for entry in entries:
            tmp, path = self.tables_dir / entry["tmp"], self.tables_dir / entry["table"]
            if tmp.parent != self.tables_dir or path.parent != self.tables_dir:
                raise WorkspaceError(f"the publish journal {journal} names a file outside {self.tables_dir}: {entry}")
            if tmp.exists():
                try:
                    os.replace(tmp, path)
                except OSError as exc:
                    raise WorkspaceError(f"could not complete the interrupted write of table {path.stem!r} "
                                         f"({exc.strerror or exc}); the journal {journal} is kept for the next try") from exc
                done.append(path.stem)
        fsync_dir(self.tables_dir)
        journal.unlink()
        if done:
            log.warning("completed the publication of table(s) %s, interrupted when a run was killed", ", ".join(done))

    def read_table(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Read table ``name``; a missing table names the command that makes it."""
        path = self.table_path(name)
        self._check_not_linked(path)
        if not path.exists():
            raise WorkspaceError(f"table {name!r} does not exist in {self.root} (run `emorec {_PRODUCER.get(name, 'run')}` first)")
        try:
            return pq.read_table(path, columns=columns).to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise WorkspaceError(f"table {name!r} at {path} is unreadable or corrupt: {exc}") from exc

    def table_metadata(self, name: str) -> dict:
        """The JSON metadata stored with table ``name`` (empty if none)."""
        meta = pq.read_schema(self.table_path(name)).metadata or {}
        return json.loads(meta.get(METADATA_KEY, b"{}"))

    # --- checkpointed parts of an unfinished stage ----------------------------------------
    def parts_dir(self, name: str, key: str) -> Path:
        """Folder of the checkpointed parts of table ``name`` computed under ``key``."""
        if not re.fullmatch(r"[0-9a-f]{1,64}", key):
            raise ConfigError(f"invalid checkpoint key {key!r}")
        return self.root / "partial" / _check_name(name) / key

    def write_part(self, name: str, key: str, index: int, df: pd.DataFrame) -> Path:
        """Atomically write part ``index`` of an unfinished table (temp file, fsync, rename)."""
        folder = self.parts_dir(name, key)
        self._check_not_linked(folder)
        path = folder / f"part-{index:06d}.parquet"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda p: _write_parquet(pa.Table.from_pandas(df, preserve_index=False), p))
        except OSError as exc:
            raise WorkspaceError(f"could not checkpoint part {index} of {name!r} to {path}: {exc.strerror or exc}") from exc
        return path

    def part_paths(self, name: str, key: str) -> list[Path]:
        """The files of the complete checkpointed parts of ``name`` under ``key``.

        Only renamed ``part-NNNNNN.parquet`` files count: a part being written is a hidden
        temporary file, so a crash mid-write is never read as a finished part. Parts under
        another key (a different scorer) are stale and deleted.
        """
        base = self.root / "partial" / _check_name(name)
        self._check_not_linked(base)
        if not base.exists():
            return []
        for other in base.iterdir():
            if other.name != key:
                _remove_tree(other)
        folder = self.parts_dir(name, key)
        return [p for p in sorted(folder.glob("part-*.parquet")) if _PART.match(p.name)] if folder.exists() else []

    def read_parts(self, name: str, key: str) -> list[pd.DataFrame]:
        """The complete checkpointed parts of ``name`` under ``key`` (see :meth:`part_paths`);
        an unreadable part (only after a disk fault) is skipped, so its rows are recomputed."""
        out = []
        for path in self.part_paths(name, key):
            try:
                out.append(pq.read_table(path).to_pandas())
            except (pa.ArrowException, OSError) as exc:
                log.warning("ignoring unreadable checkpoint %s: %s", path, exc)
        return out

    def clear_parts(self, name: str) -> None:
        """Remove every checkpointed part of ``name`` (the stage finished)."""
        _remove_tree(self.root / "partial" / _check_name(name))
        with contextlib.suppress(OSError):
            (self.root / "partial").rmdir()  # only when no other stage has parts

    # --- models ------------------------------------------------------------------------
    @contextlib.contextmanager
    def new_model_version(self, name: str, version: str) -> Iterator[Path]:
        """Yield a fresh folder for a model; publish it as current only if the block succeeds.

        Before publishing, a SHA-256 manifest of every file in the folder is written
        (:func:`emorec.common.manifest.write_manifest`); :meth:`model_path` verifies it. An
        ``OSError`` while the model is written (full disk, read-only workspace), or a library's
        error that says the disk is full, becomes a :class:`WorkspaceError`; the previous version
        stays current.
        """
        base = self.models_dir / _check_name(name)
        target = base / _check_version(version)
        tmp = base / f".{version}.{uuid.uuid4().hex}.tmp"
        self._check_not_linked(base)
        try:
            base.mkdir(parents=True, exist_ok=True)
            tmp.mkdir()
            try:
                yield tmp
            except Exception as exc:
                if not isinstance(exc, (OSError, EmorecError)) and _DISK_FULL.search(str(exc)):
                    raise WorkspaceError(f"could not write model {name!r} version {version!r} in {base} (is the disk "
                                         f"full?): {type(exc).__name__}: {' '.join(str(exc).split())}; the previous "
                                         "version is intact") from exc
                raise
            write_manifest(tmp)
            crash_point(f"model:{name}")
            if target.exists() or target.is_symlink():  # the same version again (e.g. "latest"): replace it
                _remove_tree(target)
            os.replace(tmp, target)
            atomic_write_text(base / "CURRENT", version)  # also flushes the rename of the version above
        except OSError as exc:
            raise WorkspaceError(f"could not write model {name!r} version {version!r} in {base}: "
                                 f"{exc.strerror or exc}; the previous version is intact") from exc
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        versions = sorted((p for p in base.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")),
                          key=lambda p: p.stat().st_mtime)
        for old in versions[:-2]:  # keep the live version and the one before it
            if old.name != version:
                _remove_tree(old)

    def model_versions(self, name: str) -> list[Path]:
        """The published version folders of model ``name`` (live or not), oldest name first."""
        base = self.models_dir / _check_name(name)
        self._check_not_linked(base)
        if not base.is_dir():
            return []
        return sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))

    def model_path(self, name: str, verify: bool = True) -> Path:
        """Folder of the current version of model ``name``.

        The ``CURRENT`` pointer is validated: a tampered pointer (``../../etc``) or one naming
        a missing folder is a :class:`WorkspaceError` naming the pointer file. With ``verify``
        (the default) the folder must be a real folder of the workspace (no symbolic link) whose
        files match its SHA-256 manifest, else :class:`~emorec.common.errors.ArtifactError`
        naming the file.
        """
        base = self.models_dir / _check_name(name)
        self._check_not_linked(base)
        pointer = base / "CURRENT"
        if not pointer.exists():
            raise WorkspaceError(f"no trained {name!r} model in {self.root} (run `emorec train` first)")
        version = pointer.read_text().strip()
        try:
            _check_version(version)
        except ValueError:
            raise WorkspaceError(f"model pointer {pointer} is corrupt or tampered: {version[:80]!r} is not a version name") from None
        folder = pointer.parent / version
        if folder.is_symlink():
            raise ArtifactError(f"model folder {folder} is a symbolic link (to {os.readlink(folder)}): refusing to load "
                                "a model from outside the workspace")
        if not folder.is_dir():
            raise WorkspaceError(f"model pointer {pointer} names version {version!r}, which is missing from {pointer.parent}")
        if verify:
            verify_manifest(folder)
        return folder

    # --- querying ----------------------------------------------------------------------
    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection that can read the workspace tables and write nothing, anywhere.

        The database is in memory; each table is registered as a view of its name over an
        Arrow dataset of its Parquet file (read lazily, with column and filter push-down).
        Then every file-system access is disabled (``enable_external_access = false``: no
        ``COPY ... TO``, ``read_csv``/``read_text``/``glob``/``read_parquet`` of any path,
        ``ATTACH``, ``INSTALL``/``LOAD``), Python variables are not scanned
        (``python_enable_replacements = false``), extensions are neither installed nor loaded
        automatically, and the configuration is locked (``lock_configuration = true``), so no
        ``SET``/``RESET``/``PRAGMA`` can undo it. What a statement creates lives in this
        connection's memory only and is gone when it closes.
        """
        self._check_no_links()
        con = duckdb.connect(":memory:")
        try:
            for name in self.tables():
                con.register(name, pads.dataset(str(self.table_path(name)), format="parquet"))
            for setting in ("SET python_enable_replacements = false", "SET enable_external_access = false",
                            "SET autoinstall_known_extensions = false", "SET autoload_known_extensions = false",
                            "SET allow_community_extensions = false", "SET lock_configuration = true"):
                con.execute(setting)
        except Exception:
            con.close()
            raise
        return con

    def query(self, sql: str) -> pd.DataFrame:
        """Run one read-only SQL query over the workspace tables (each table is a view of its name).

        The connection itself cannot write (:meth:`connect`); on top of that, only one
        ``SELECT`` (including ``WITH``, ``VALUES``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``) or
        ``EXPLAIN`` statement is accepted, so that a statement that would only change this
        throw-away connection (``CREATE``, ``INSERT``, ...) is refused with a clear message
        instead of appearing to work. Raises :class:`~emorec.common.errors.InputError`.
        """
        with self.connect() as con:
            try:
                statements = con.extract_statements(sql)
            except duckdb.Error as exc:
                raise InputError(f"invalid SQL: {exc}") from None
            if len(statements) != 1:
                raise InputError(f"give exactly one SQL statement, got {len(statements)}")
            kind = statements[0].type
            if kind not in _READ_STATEMENTS:
                raise InputError(f"emorec query only reads (SELECT, EXPLAIN, DESCRIBE, SHOW, SUMMARIZE); got a {kind.name} statement")
            try:
                return con.execute(sql).df()
            except duckdb.Error as exc:
                raise InputError(f"query failed: {exc}") from None

    # --- links -------------------------------------------------------------------------
    def _check_not_linked(self, path: Path) -> None:
        """Refuse ``path`` if it, or a folder between the workspace and it, is a symbolic link."""
        try:
            rel = Path(path).relative_to(self.root)
        except ValueError:
            raise WorkspaceError(f"{path} is outside the workspace {self.root}") from None
        at = self.root
        for part in rel.parts:
            at = at / part
            if at.is_symlink():
                raise WorkspaceError(f"refusing to use {at}: it is a symbolic link (to {os.readlink(at)}); emorec never "
                                     f"reads or writes through a link inside the workspace {self.root}. Replace it with "
                                     "a real folder or file")

    def _check_no_links(self) -> None:
        """Refuse a workspace that holds a symbolic link anywhere inside it (the root may be one)."""
        if not self.root.exists():
            return
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            for entry in dirnames + filenames:
                path = Path(dirpath) / entry
                if path.is_symlink():
                    self._check_not_linked(path)  # raises, naming the link and its target

    # --- locking -----------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, holder: str) -> Iterator[None]:
        """Hold the workspace's writer lock; fail at once, naming the holder, if it is taken.

        The lock is an ``flock`` on ``.lock`` (opened with ``O_NOFOLLOW``): the kernel releases
        it when the holder exits, even after SIGKILL, so a crashed run never blocks the next one.
        A workspace holding a symbolic link anywhere is refused before anything is written.
        """
        path = self.root / ".lock"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._check_no_links()
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            fh = os.fdopen(fd, "r+")
        except OSError as exc:
            if path.is_symlink():
                raise WorkspaceError(f"refusing to lock workspace {self.root}: {path} is a symbolic link") from exc
            raise WorkspaceError(f"cannot lock workspace {self.root}: {exc.strerror or exc} ({path}); "
                                 "is it read-only or full? Nothing was changed") from exc
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                who = fh.read().strip() or "another process"
                raise WorkspaceBusy(f"workspace {self.root} is in use by {who}; wait for it to finish") from None
            try:
                fh.seek(0)
                fh.truncate()
                fh.write(f"pid {os.getpid()} ({holder})")
                fh.flush()
            except OSError as exc:
                raise WorkspaceError(f"cannot write the lock file {path}: {exc.strerror or exc}; nothing was changed") from exc
            self._finish_interrupted_publish()
            self._remove_stale_temporaries()
            yield
        finally:
            fh.close()

    def _remove_stale_temporaries(self) -> None:
        """Delete temporary files of writers that were killed (only the lock holder writes)."""
        patterns = ("tables/.*.tmp", "models/*/.*.tmp", "partial/*/*/.*.tmp", ".*.tmp")
        for pattern in patterns:
            for path in self.root.glob(pattern):
                log.info("removing %s, left by a run that was killed", path)
                _remove_tree(path)


def _write_parquet(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` as the workspace stores tables (zstd)."""
    pq.write_table(table, path, compression="zstd")


_READ_STATEMENTS = frozenset(
    getattr(duckdb.StatementType, n) for n in ("SELECT", "EXPLAIN") if hasattr(duckdb.StatementType, n)
)


#: Which command produces each table, for error messages.
_PRODUCER = {
    "reviews": "ingest", "quarantine": "ingest", "items": "ingest", "review_scores": "score",
    "user_profiles": "profile", "item_profiles": "profile", "recommendations": "recommend", "runs": "run",
}
