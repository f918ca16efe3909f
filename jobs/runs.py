"""The ``runs`` table: one row per command run, so an operator can see what happened.

A run is written twice: as ``running`` when it starts and with its final status (``ok``,
``failed``, ``interrupted``) and error when it ends. A process killed outright (SIGKILL, the
OOM killer, a power cut) cannot write its end, so the next recorded run, which holds the
workspace lock and therefore knows no other run is alive, marks every leftover ``running``
row as ``killed``. The status of every run therefore tells what happened last night.
"""

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

from emorec.common.errors import InputError

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
        try:
            with open(p, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        except FileNotFoundError:
            raise InputError(f"input file {p} does not exist") from None
        except IsADirectoryError:
            raise InputError(f"{p} is a folder, not an input file") from None
        except OSError as exc:
            raise InputError(f"cannot read input file {p}: {exc.strerror or exc}") from None
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


KILLED_ERROR = "the process ended without recording a result (killed, e.g. SIGKILL or out of memory, or the machine stopped)"


def _append_run(ws: Workspace, row: dict) -> None:
    """Add or replace (same ``run_id``) one row of ``runs``; leftover ``running`` rows become ``killed``."""
    new = pd.DataFrame([row])
    for col in ("started_at", "finished_at"):
        new[col] = pd.to_datetime(new[col], utc=True)
    new = new.astype(RUN_COLUMNS)
    if not ws.has_table("runs"):
        ws.write_table("runs", new)
        return
    previous = ws.read_table("runs").astype(RUN_COLUMNS)
    previous = previous.loc[previous["run_id"] != row["run_id"]].copy()
    stale = previous["status"] == "running"
    if stale.any():
        previous.loc[stale, "status"] = "killed"
        previous.loc[stale, "error"] = KILLED_ERROR
    ws.write_table("runs", pd.concat([previous, new], ignore_index=True))


@contextlib.contextmanager
def recorded_run(ws: Workspace, command: str, config: dict | None = None) -> Iterator[Run]:
    """Record a run in the ``runs`` table, whether it succeeds, fails or is killed.

    Call it while holding the workspace lock (:meth:`Workspace.lock`): the start row is
    written at once, so an unwritable workspace fails before any work is done.
    """
    run = Run(run_id=new_run_id(), command=command, config=dict(config or {}))
    started = pd.Timestamp.now(tz="UTC")
    status, error = "ok", ""
    _append_run(ws, _row(run, "running", started, None, ""))
    try:
        yield run
    except BaseException as exc:
        status, error = ("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"), f"{type(exc).__name__}: {exc}"
        raise
    finally:
        try:
            _append_run(ws, _row(run, status, started, pd.Timestamp.now(tz="UTC"), error))
        except Exception as exc:  # never hide the run's own error behind a bookkeeping one
            log.error("could not record run %s: %s", run.run_id, exc)
            if sys.exc_info()[0] is None:
                raise


def _row(run: Run, status: str, started: pd.Timestamp, finished: pd.Timestamp | None, error: str) -> dict:
    return {
        "run_id": run.run_id, "command": run.command, "status": status, "started_at": started,
        "finished_at": finished if finished is not None else pd.NaT,
        "seconds": (finished - started).total_seconds() if finished is not None else float("nan"),
        "config": json.dumps(run.config, sort_keys=True, default=str),
        "counts": json.dumps(run.counts, sort_keys=True, default=str),
        "timings": json.dumps(run.timings, sort_keys=True), "data_fingerprint": run.data_fingerprint,
        "versions": json.dumps(package_versions(), sort_keys=True), "error": error,
    }
