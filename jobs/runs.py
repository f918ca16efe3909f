"""The ``runs`` table: one row per command run, so an operator can see what happened."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import platform
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pandas as pd

from .store import Workspace

log = logging.getLogger(__name__)

RUN_COLUMNS = {
    "run_id": "string", "command": "string", "status": "string", "started_at": "datetime64[ns, UTC]",
    "finished_at": "datetime64[ns, UTC]", "seconds": "float64", "config": "string", "counts": "string",
    "timings": "string", "data_fingerprint": "string", "versions": "string", "error": "string",
}


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def fingerprint(paths: Sequence[Path]) -> str:
    """SHA-256 over the bytes of the input files (names excluded), 16 hex digits."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("emorec", "numpy", "pandas", "pyarrow", "duckdb", "implicit", "scipy", "vaderSentiment", "torch", "transformers", "lightgbm"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


@dataclass
class Run:
    """A run being recorded; stages add their counts and timings."""

    run_id: str
    command: str
    config: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    data_fingerprint: str = ""


@contextlib.contextmanager
def recorded_run(ws: Workspace, command: str, config: dict | None = None) -> Iterator[Run]:
    """Record a run in the ``runs`` table, whether it succeeds or fails."""
    run = Run(run_id=new_run_id(), command=command, config=dict(config or {}))
    started = pd.Timestamp.now(tz="UTC")
    status, error = "ok", ""
    try:
        yield run
    except BaseException as exc:
        status, error = ("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"), f"{type(exc).__name__}: {exc}"
        raise
    finally:
        finished = pd.Timestamp.now(tz="UTC")
        row = {
            "run_id": run.run_id, "command": command, "status": status, "started_at": started,
            "finished_at": finished, "seconds": (finished - started).total_seconds(),
            "config": json.dumps(run.config, sort_keys=True, default=str),
            "counts": json.dumps(run.counts, sort_keys=True, default=str),
            "timings": json.dumps(run.timings, sort_keys=True), "data_fingerprint": run.data_fingerprint,
            "versions": json.dumps(package_versions(), sort_keys=True), "error": error,
        }
        try:
            previous = ws.read_table("runs") if ws.has_table("runs") else None
            new = pd.DataFrame([row]).astype(RUN_COLUMNS)
            ws.write_table("runs", new if previous is None else pd.concat([previous.astype(RUN_COLUMNS), new], ignore_index=True))
        except Exception as exc:  # never hide the run's own error behind a bookkeeping one
            log.error("could not record run %s: %s", run.run_id, exc)
            if sys.exc_info()[0] is None:
                raise
