"""Right to erasure: ``emorec forget --user ID`` removes a customer from the workspace.

What is removed
---------------
* every row of every workspace table that has a ``user_id`` column (reviews, user profiles,
  recommendations, segments, care queue, and any per-user table a later stage adds: the rule
  is the column name, not a list of tables);
* every row of a table with ``review_id`` (or a column ending in ``_review_id``) that belongs to
  one of the user's reviews (``review_scores``; other users' recommendations whose explanation
  quotes the user's review, ``evidence_review_id``: the list misses that item until the next
  ``emorec recommend``);
* quarantined records that carry the user's id as a value (``quarantine.record`` is the raw
  input record, so it may hold the user's text);
* checkpointed parts of unfinished stages (``partial/``: a score cache keyed by text hash);
* trained recommender versions that know the user: the recommender is retrained on the
  remaining reviews with the same configuration, and every older version is deleted.

How it stays forgotten
----------------------
The shop's input files still hold the user, so the next ``emorec ingest`` / ``emorec run``
would bring them back. :func:`forget_users` therefore records the user in the table
``forgotten_users`` and :func:`drop_forgotten` (called by the ingest stage) drops their
reviews and quarantined records before anything is stored; the ingest counts them as
``forgotten`` (``read = reviews + quarantined + forgotten``).

``forgotten_users`` does not store the id itself (that would keep personal data in the
workspace forever) but ``HMAC-SHA256(key, user_id)``, where ``key`` is 32 random bytes in
``<workspace>/.forget_key`` (mode 0600), created on first use, never exported and never in
``tables/``. Ingest hashes each incoming id with the same key to filter. Without the key the
hashes cannot be linked to ids; someone holding the whole workspace, key included, can test
a guessed id, which is the price of being able to filter future ingests. Deleting the key
makes every past erasure ineffective for future ingests, so back it up with the workspace.

Not covered (documented for the operator): the shop's own input files, files exported
outside the workspace (``segment --out``: rewrite them with the next export), and
fine-tuned sentiment models (they hold no ids, only weights learned from all texts; retrain
them with ``emorec train-sentiment`` if the erasure must cover them).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .store import Workspace, WorkspaceError

log = logging.getLogger(__name__)

FORGOTTEN_TABLE = "forgotten_users"
KEY_FILE = ".forget_key"
_JSON_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_JSON_NUMBER = re.compile(r"(?<=[:\[,])\s*(-?\d+)\s*(?=[,}\]])")
_KEEP_TABLES = frozenset({FORGOTTEN_TABLE, "runs"})


@dataclass
class ForgetResult:
    """What :func:`forget_users` removed: rows per table, model versions deleted, notes."""

    users: int
    rows: dict[str, int] = field(default_factory=dict)
    models_deleted: list[str] = field(default_factory=list)
    retrained: bool = False
    notes: list[str] = field(default_factory=list)


# --- the key and the hashes ------------------------------------------------------------
def _key(ws: Workspace, create: bool) -> bytes | None:
    path = ws.root / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        if not create:
            return None
    key = secrets.token_bytes(32)
    tmp = ws.root / f".{KEY_FILE}.{secrets.token_hex(6)}.tmp"
    try:
        ws.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise WorkspaceError(f"cannot create the erasure key {path}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return key


def user_hashes(key: bytes, ids: Iterable[str]) -> list[str]:
    """``HMAC-SHA256(key, id)`` as hex, one per id."""
    return [hmac.new(key, str(i).encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest() for i in ids]


def forgotten_hashes(ws: Workspace) -> tuple[bytes | None, frozenset[str]]:
    """The workspace's erasure key and the hashes of its forgotten users (empty when none)."""
    if not ws.has_table(FORGOTTEN_TABLE):
        return None, frozenset()
    key = _key(ws, create=False)
    if key is None:
        raise WorkspaceError(f"{ws.root} has forgotten users but its erasure key {ws.root / KEY_FILE} is missing: "
                             "restore it from the backup, or forgotten users would be ingested again")
    return key, frozenset(ws.read_table(FORGOTTEN_TABLE, columns=["user_hash"])["user_hash"])


def _record_values(record: str) -> list[str]:
    """Every string and integer value in a quarantined record (JSON or not)."""
    try:
        obj = json.loads(record)
    except (ValueError, RecursionError):
        obj = None
    if isinstance(obj, dict):
        return [str(v) for v in obj.values() if isinstance(v, (str, int)) and not isinstance(v, bool)]
    values = []  # a raw line that was not valid JSON: its quoted strings and bare integers
    for m in _JSON_STRING.finditer(record):
        try:
            values.append(json.loads(f'"{m.group(1)}"'))
        except ValueError:
            values.append(m.group(1))
    values.extend(m.group(1) for m in _JSON_NUMBER.finditer(record))
    return values


def _quarantine_mask(records: pd.Series, match) -> np.ndarray:
    """True where a quarantined record holds a value for which ``match(values)`` is true."""
    return np.fromiter((match([v.strip() for v in _record_values(r)]) if isinstance(r, str) else False
                        for r in records.astype(object)), dtype=bool, count=len(records))


def drop_forgotten(ws: Workspace, reviews: pd.DataFrame, quarantine: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Remove forgotten users' reviews and quarantined records (called by the ingest stage).

    Returns
    -------
    reviews, quarantine, n_dropped
    """
    key, hashes = forgotten_hashes(ws)
    if not hashes:
        return reviews, quarantine, 0
    users = pd.unique(reviews["user_id"].astype(str).to_numpy(dtype=object))  # hash each id once
    forgotten = [u for u, h in zip(users, user_hashes(key, users)) if h in hashes]
    gone = reviews["user_id"].astype(str).isin(forgotten).to_numpy(dtype=bool)
    qgone = _quarantine_mask(quarantine["record"], lambda vals: any(h in hashes for h in user_hashes(key, vals)))
    n = int(gone.sum() + qgone.sum())
    if n:
        log.info("ingest: %d rows of forgotten users dropped", n)
    return reviews.loc[~gone].reset_index(drop=True), quarantine.loc[~qgone].reset_index(drop=True), n


# --- erasure ---------------------------------------------------------------------------
def _columns(ws: Workspace, name: str) -> list[str]:
    return list(pq.read_schema(ws.table_path(name)).names)


def forget_users(ws: Workspace, user_ids: Sequence[str], retrain: bool = True) -> ForgetResult:
    """Erase ``user_ids`` from the workspace and keep them out of future ingests.

    Call it under the workspace lock. Idempotent: a crash half-way is repaired by running
    it again (the user is recorded in ``forgotten_users`` first, so no ingest in between
    brings them back).

    Parameters
    ----------
    user_ids
        The shop's customer ids.
    retrain
        Retrain the recommender (same configuration) when its current version knows one of
        the users; with ``False`` such versions are deleted and ``emorec train`` is needed.
    """
    ids = sorted({str(u).strip() for u in user_ids if str(u).strip()})
    if not ids:
        raise ValueError("forget needs at least one non-empty user id")
    res = ForgetResult(users=len(ids))
    key = _key(ws, create=True)
    new_hashes = user_hashes(key, ids)
    known = set(ws.read_table(FORGOTTEN_TABLE)["user_hash"]) if ws.has_table(FORGOTTEN_TABLE) else set()
    add = [h for h in new_hashes if h not in known]
    if add:
        frame = pd.DataFrame({"user_hash": pd.array(add, dtype="string"),
                              "forgotten_at": pd.Timestamp.now(tz="UTC")})
        old = ws.read_table(FORGOTTEN_TABLE) if ws.has_table(FORGOTTEN_TABLE) else None
        ws.write_table(FORGOTTEN_TABLE, frame if old is None else pd.concat([old, frame], ignore_index=True),
                       {"hash": "HMAC-SHA256(<workspace>/.forget_key, user_id) hex"})

    id_set = set(ids)
    review_ids: set[str] = set()
    if ws.has_table("reviews"):
        r = ws.read_table("reviews", columns=["review_id", "user_id"])
        review_ids = set(r.loc[r["user_id"].isin(id_set), "review_id"].astype(str))
    updates = {}
    for name in ws.tables():
        if name in _KEEP_TABLES:
            continue
        cols = _columns(ws, name)
        review_cols = [c for c in cols if c == "review_id" or c.endswith("_review_id")]
        if "user_id" in cols or review_cols:
            df = ws.read_table(name)
            drop = np.zeros(len(df), dtype=bool)
            if "user_id" in cols:
                drop |= df["user_id"].astype("string").isin(id_set).fillna(False).to_numpy(dtype=bool)
            for c in review_cols:  # rows that quote one of the user's reviews (explanation evidence)
                drop |= df[c].astype("string").isin(review_ids).fillna(False).to_numpy(dtype=bool)
        elif name == "quarantine" and "record" in cols:
            df = ws.read_table(name)
            drop = _quarantine_mask(df["record"], lambda vals: any(v in id_set for v in vals))
        else:
            continue
        if drop.any():
            updates[name] = (df.loc[~drop].reset_index(drop=True), ws.table_metadata(name))
            res.rows[name] = int(drop.sum())
    if updates:
        ws.write_tables(updates)
    partial = ws.root / "partial"
    if partial.exists():
        shutil.rmtree(partial)
        res.notes.append("checkpoints of unfinished stages removed")
    _forget_in_recommender(ws, id_set, retrain, res)
    return res


def _forget_in_recommender(ws: Workspace, id_set: set[str], retrain: bool, res: ForgetResult) -> None:
    """Retrain (or delete) recommender versions whose user vocabulary holds a forgotten user."""
    from . import pipeline  # the train stage; imported here to keep forget importable on its own

    base = ws.models_dir / pipeline.RECOMMENDER_MODEL
    if not base.exists():
        return
    tainted = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        vocab = folder / "users.parquet"
        try:
            users = set(pq.read_table(vocab).column(0).to_pylist()) if vocab.exists() else set()
        except Exception:  # unreadable: cannot prove it is clean
            users = id_set
        if users & id_set:
            tainted.append(folder)
    if not tainted:
        return
    config = None
    if retrain:
        try:
            config = pipeline.load_service(ws).config
        except Exception as exc:
            res.notes.append(f"could not read the current recommender's configuration ({exc}); not retrained")
    if config is not None and ws.has_table("reviews"):
        from .runs import new_run_id

        pipeline.train(ws, config, version=new_run_id())
        res.retrained = True
    for folder in tainted:
        if folder.exists():
            shutil.rmtree(folder)
            res.models_deleted.append(folder.name)
    if not res.retrained:
        current = base / "CURRENT"
        if current.exists() and not (base / current.read_text().strip()).exists():
            current.unlink()
        res.notes.append("recommender versions that knew the user were deleted: run `emorec train`")
