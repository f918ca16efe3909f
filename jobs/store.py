"""The embedded store: a workspace folder of Parquet tables queried with DuckDB.

Layout::

    <workspace>/
      tables/<name>.parquet     one table per stage (reviews, quarantine, review_scores,
                                user_profiles, item_profiles, recommendations, runs)
      models/<name>/<version>/  trained artifacts; models/<name>/CURRENT names the live one
      demo/                     the generated demo shop, when `emorec run` made one
      .lock                     held by the one process writing to the workspace

Every write goes to a temporary file in the same folder, is flushed to disk, and is then
renamed over the old one (``os.replace`` is atomic on POSIX), so a crash leaves either the
old complete table or the new complete table, never half of one. Models are written into
a fresh version folder and published by atomically replacing ``CURRENT``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE = Path("emorec-workspace")
METADATA_KEY = b"emorec"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class WorkspaceError(RuntimeError):
    """A workspace problem the user can act on (missing table, busy, unwritable)."""


class WorkspaceBusy(WorkspaceError):
    """Another process holds the workspace lock."""


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"invalid table or model name {name!r}: use lower-case letters, digits and _")
    return name


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        path = self.table_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(df, preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[METADATA_KEY] = json.dumps(metadata or {}, sort_keys=True, default=str).encode()
        table = table.replace_schema_metadata(meta)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as fh:
                pq.write_table(table, fh, compression="zstd")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise WorkspaceError(f"could not write table {name!r} to {path}: {exc.strerror or exc}; the previous version is intact") from exc
        return path

    def read_table(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Read table ``name``; a missing table names the command that makes it."""
        path = self.table_path(name)
        if not path.exists():
            raise WorkspaceError(f"table {name!r} does not exist in {self.root} (run `emorec {_PRODUCER.get(name, 'run')}` first)")
        return pq.read_table(path, columns=columns).to_pandas()

    def table_metadata(self, name: str) -> dict:
        """The JSON metadata stored with table ``name`` (empty if none)."""
        meta = pq.read_schema(self.table_path(name)).metadata or {}
        return json.loads(meta.get(METADATA_KEY, b"{}"))

    # --- models ------------------------------------------------------------------------
    @contextlib.contextmanager
    def new_model_version(self, name: str, version: str) -> Iterator[Path]:
        """Yield a fresh folder for a model; publish it as current only if the block succeeds."""
        base = self.models_dir / _check_name(name)
        base.mkdir(parents=True, exist_ok=True)
        target = base / version
        tmp = base / f".{version}.{uuid.uuid4().hex}.tmp"
        tmp.mkdir()
        try:
            yield tmp
            os.replace(tmp, target)
            pointer = base / f".CURRENT.{uuid.uuid4().hex}.tmp"
            pointer.write_text(version)
            os.replace(pointer, base / "CURRENT")
            _fsync_dir(base)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        versions = sorted((p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.stat().st_mtime)
        for old in versions[:-2]:  # keep the live version and the one before it
            if old.name != version:
                shutil.rmtree(old, ignore_errors=True)

    def model_path(self, name: str) -> Path:
        """Folder of the current version of model ``name``."""
        pointer = self.models_dir / _check_name(name) / "CURRENT"
        if not pointer.exists():
            raise WorkspaceError(f"no trained {name!r} model in {self.root} (run `emorec train` first)")
        return pointer.parent / pointer.read_text().strip()

    # --- querying ----------------------------------------------------------------------
    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with one view per table."""
        con = duckdb.connect()
        for name in self.tables():
            path = str(self.table_path(name).resolve()).replace("'", "''")
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
        return con

    def query(self, sql: str) -> pd.DataFrame:
        """Run SQL over the workspace tables (each table is a view of its name)."""
        with self.connect() as con:
            return con.execute(sql).df()

    # --- locking -----------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, holder: str) -> Iterator[None]:
        """Hold the workspace's writer lock; fail at once, naming the holder, if it is taken."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ".lock"
        fh = open(path, "a+")
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                who = fh.read().strip() or "another process"
                raise WorkspaceBusy(f"workspace {self.root} is in use by {who}; wait for it to finish") from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()} ({holder})")
            fh.flush()
            yield
        finally:
            fh.close()


#: Which command produces each table, for error messages.
_PRODUCER = {
    "reviews": "ingest", "quarantine": "ingest", "items": "ingest", "review_scores": "score",
    "user_profiles": "profile", "item_profiles": "profile", "recommendations": "recommend", "runs": "run",
}
