"""Right to erasure: ``emorec forget --user ID`` removes a customer from the workspace.

What is removed
---------------
* every row of every workspace table that has a ``user_id`` column (reviews, user profiles,
  recommendations, segments, care queue, the quarantine, and any per-user table a later stage
  adds: the rule is the column name, not a list of tables);
* every row of a table with ``review_id`` (or a column ending in ``_review_id``) that belongs to
  one of the user's reviews (``review_scores``; other users' recommendations whose explanation
  quotes the user's review, ``evidence_review_id``: the list misses that item until the next
  ``emorec recommend``);
* quarantined records that carry the user's id as a value of the raw record (records stored
  before the quarantine had its ``user_id`` column, and lines too broken to read an id from);
* aggregates that counted the user's reviews are rebuilt from the remaining ones with their
  stored settings: ``item_profiles`` (counts, ratings, emotions, aspects) and ``alerts``;
* per-user evaluation outputs (``evaluations/<run>/per_user.parquet`` and any other Parquet
  file under ``evaluations/`` with a ``user_id`` column);
* checkpointed parts of unfinished stages (``partial/``: a score cache keyed by text hash);
* trained recommender versions that know the user: the recommender is retrained on the
  remaining reviews with the same configuration, and every version that knew them is deleted.

Crash safety: unservable from the first moment
----------------------------------------------
:func:`forget_users` first writes ``<workspace>/.forget_pending.json`` (no ids in it). While
it exists every other command refuses the workspace (:func:`check_no_pending_erasure`), so
nothing can serve, query, export or re-train on the person's data. Then it records the
person in ``forgotten_users``, unpublishes a recommender that knows them (``CURRENT`` is
removed before anything else, its configuration kept in the pending file), rewrites every
table in one atomic multi-table write, retrains, deletes the old versions and removes the
pending file. A forget killed at any point (SIGKILL, power cut) is completed by running
``emorec forget`` again, with or without the ids: the rest is done from ``forgotten_users``.

How it stays forgotten
----------------------
The shop's input files still hold the user, so the next ``emorec ingest`` / ``emorec run``
would bring them back. :func:`drop_forgotten` (called by the ingest stage) drops their
reviews and quarantined records before anything is stored; the ingest counts them as
``forgotten`` (``read = reviews + quarantined + forgotten``).

``forgotten_users`` does not store the id itself (that would keep personal data in the
workspace forever) but ``HMAC-SHA256(key, user_id)``, where ``key`` is 32 random bytes in
``<workspace>/.forget_key`` (mode 0600), created on first use, never exported and never in
``tables/``. Without the key the hashes cannot be linked to ids; someone holding the whole
workspace, key included, can test a guessed id, which is the price of being able to filter
future ingests. Deleting the key makes every past erasure ineffective for future ingests, so
back it up with the workspace.

Not covered (documented for the operator): the shop's own input files, files exported
outside the workspace (``segment --out``, ``evaluate --out``: rewrite them with the next
export), and fine-tuned sentiment models (they hold no ids and no text, only weights learned from all
texts, the n-gram head's over hashed buckets; retrain them with ``emorec train-sentiment`` if the erasure must cover them).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from emorec.common.atomic import atomic_write, atomic_write_text
from emorec.common.errors import InputError, WorkspaceError

from .ids import secret_key, stored_ids
from .store import Workspace, _remove_tree, crash_point

log = logging.getLogger(__name__)

FORGOTTEN_TABLE = "forgotten_users"
KEY_FILE = ".forget_key"
#: Present while an erasure is under way; every other command refuses the workspace meanwhile.
PENDING_FILE = ".forget_pending.json"
EVALUATIONS_DIR = "evaluations"
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
    rebuilt: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- the key and the hashes ------------------------------------------------------------
def _key(ws: Workspace, create: bool) -> bytes | None:
    return secret_key(ws, KEY_FILE, create, "the erasure key")


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


def _forgotten_mask(values: pd.Series, key: bytes, hashes: frozenset[str]) -> np.ndarray:
    """True where ``values`` (user ids) hash into ``hashes``; each distinct id is hashed once."""
    if not len(values) or not hashes:
        return np.zeros(len(values), dtype=bool)
    ids = values.astype("string")
    uniq = pd.unique(ids.dropna().to_numpy(dtype=object))
    gone = {u for u, h in zip(uniq, user_hashes(key, uniq)) if h in hashes}
    return ids.isin(gone).fillna(False).to_numpy(dtype=bool)


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


def _quarantine_mask(quarantine: pd.DataFrame, key: bytes, hashes: frozenset[str]) -> np.ndarray:
    """True for quarantined records of forgotten users: by the ``user_id`` column, and for records
    without one (older tables, unreadable lines) by any value of the raw record."""
    drop = np.zeros(len(quarantine), dtype=bool)
    if not len(quarantine) or not hashes:
        return drop
    if "user_id" in quarantine.columns:
        drop |= _forgotten_mask(quarantine["user_id"], key, hashes)
    if "record" in quarantine.columns:
        records = quarantine["record"].astype(object).to_numpy()
        for i in np.flatnonzero(~drop):
            r = records[i]
            if isinstance(r, str):
                values = {v for raw in _record_values(r) for v in (raw, raw.strip()) if v}
                drop[i] = any(h in hashes for h in user_hashes(key, values))
    return drop


def drop_forgotten(ws: Workspace, reviews: pd.DataFrame, quarantine: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Remove forgotten users' reviews and quarantined records (called by the ingest stage).

    Returns
    -------
    reviews, quarantine, n_dropped
    """
    key, hashes = forgotten_hashes(ws)
    if not hashes:
        return reviews, quarantine, 0
    gone = _forgotten_mask(reviews["user_id"], key, hashes) if "user_id" in reviews.columns else np.zeros(len(reviews), bool)
    qgone = _quarantine_mask(quarantine, key, hashes)
    n = int(gone.sum() + qgone.sum())
    if n:
        log.info("ingest: %d rows of forgotten users dropped", n)
    return reviews.loc[~gone].reset_index(drop=True), quarantine.loc[~qgone].reset_index(drop=True), n


# --- the pending marker ----------------------------------------------------------------
def _pending_path(ws: Workspace) -> Path:
    return ws.root / PENDING_FILE


def pending_erasure(ws: Workspace) -> dict | None:
    """The state of an erasure under way (or interrupted), or None."""
    path = _pending_path(ws)
    if not path.exists() and not path.is_symlink():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"started_at": "unknown"}


def check_no_pending_erasure(ws: Workspace) -> None:
    """Raise :class:`WorkspaceError` while an erasure is under way or was interrupted.

    Every command but ``forget`` calls it first, so a person being forgotten is never served,
    exported, queried or trained on, whatever happened to the forget run.
    """
    state = pending_erasure(ws)
    if state is not None:
        raise WorkspaceError(
            f"an erasure (`emorec forget`) started {state.get('started_at', '')} in {ws.root} has not finished (it is "
            f"running or was interrupted): run `emorec forget -w {ws.root}` to complete it; until then no other command "
            "uses this workspace")


def _write_pending(ws: Workspace, state: dict) -> None:
    path = _pending_path(ws)
    try:
        ws.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(state), mode=0o600)
    except OSError as exc:
        raise WorkspaceError(f"cannot write {path}: {exc.strerror or exc}; nothing was erased") from exc


# --- erasure ---------------------------------------------------------------------------
def _columns(ws: Workspace, name: str) -> list[str]:
    return list(pq.read_schema(ws.table_path(name)).names)


def forget_users(ws: Workspace, user_ids: Sequence[str], retrain: bool = True) -> ForgetResult:
    """Erase ``user_ids`` from the workspace and keep them out of future ingests.

    Call it under the workspace lock. Idempotent and crash-safe (module docstring): with no
    ``user_ids`` it completes an interrupted erasure from ``forgotten_users``.

    Parameters
    ----------
    user_ids
        The shop's customer ids, exactly as ingested (for a workspace ingested with
        ``--pseudonymize-ids``, the original ids: they are pseudonymized here the same way).
    retrain
        Retrain the recommender (same configuration) when its current version knows one of
        the users; with ``False`` such versions are deleted and ``emorec train`` is needed.
    """
    ids = sorted({str(u) for u in user_ids if str(u).strip()})
    state = pending_erasure(ws)
    if not ids and state is None:
        raise InputError("forget needs at least one non-empty user id (--user ID or --users-file PATH)")
    res = ForgetResult(users=len(ids))
    if state is None:
        state = {"started_at": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"), "retrain": bool(retrain)}
    else:
        log.warning("completing the erasure started %s and interrupted before it finished", state.get("started_at"))
        res.notes.append(f"completed the erasure started {state.get('started_at')} that had been interrupted")
        retrain = retrain and state.get("retrain", True)
    _write_pending(ws, state)  # from here on no other command uses the workspace
    key = _key(ws, create=True)
    if ids:
        known = set(ws.read_table(FORGOTTEN_TABLE)["user_hash"]) if ws.has_table(FORGOTTEN_TABLE) else set()
        add = [h for h in dict.fromkeys(user_hashes(key, stored_ids(ws, ids))) if h not in known]
        if add:
            frame = pd.DataFrame({"user_hash": pd.array(add, dtype="string"),
                                  "forgotten_at": pd.Timestamp.now(tz="UTC")})
            old = ws.read_table(FORGOTTEN_TABLE) if ws.has_table(FORGOTTEN_TABLE) else None
            ws.write_table(FORGOTTEN_TABLE, frame if old is None else pd.concat([old, frame], ignore_index=True),
                           {"hash": "HMAC-SHA256(<workspace>/.forget_key, user_id) hex"})
    _, hashes = forgotten_hashes(ws)
    tainted = _unpublish_tainted_models(ws, key, hashes, state)
    crash_point("forget:tables")
    _erase_from_tables(ws, key, hashes, res)
    _erase_from_evaluations(ws, key, hashes, res)
    partial = ws.root / "partial"
    if partial.exists() or partial.is_symlink():
        _remove_tree(partial)
        res.notes.append("checkpoints of unfinished stages removed")
    _retrain(ws, tainted, retrain, state, res)
    _pending_path(ws).unlink(missing_ok=True)
    return res


def _version_users_tainted(folder: Path, key: bytes, hashes: frozenset[str]) -> bool:
    """Whether the recommender version in ``folder`` knows a forgotten user (unreadable: assume so)."""
    vocab = folder / "users.parquet"
    if not vocab.exists():
        return False
    try:
        users = pd.Series(pq.read_table(vocab).column(0).to_pylist(), dtype="string")
    except Exception:  # any failure: an unreadable vocabulary cannot be proven clean
        return True
    return bool(_forgotten_mask(users, key, hashes).any())


def _unpublish_tainted_models(ws: Workspace, key: bytes, hashes: frozenset[str], state: dict) -> list[Path]:
    """Recommender versions that know a forgotten user; the live one is unpublished at once
    (``CURRENT`` removed), its configuration kept in the pending file for the retrain."""
    from . import pipeline

    tainted = [f for f in ws.model_versions(pipeline.RECOMMENDER_MODEL) if _version_users_tainted(f, key, hashes)]
    base = ws.models_dir / pipeline.RECOMMENDER_MODEL
    current = base / "CURRENT"
    if current.exists():
        live = base / current.read_text().strip()
        if live in tainted:
            try:
                config = json.loads((live / "service.json").read_text())["config"]
            except (OSError, ValueError, KeyError) as exc:
                log.warning("could not read the configuration of %s (%s); it will not be retrained", live, exc)
                config = None
            state["retrain_config"] = config
            _write_pending(ws, state)
            current.unlink()  # nothing serves the person from here on
    return tainted


def _erase_from_tables(ws: Workspace, key: bytes, hashes: frozenset[str], res: ForgetResult) -> None:
    """Drop the users' rows from every table and rebuild the aggregates, in one atomic write."""
    review_ids: set[str] = set()
    reviews_left = None
    if ws.has_table("reviews"):
        r = ws.read_table("reviews")
        gone = _forgotten_mask(r["user_id"], key, hashes)
        review_ids = set(r.loc[gone, "review_id"].astype(str))
        reviews_left = r.loc[~gone].reset_index(drop=True)
    updates: dict[str, tuple[pd.DataFrame, dict]] = {}
    for name in ws.tables():
        if name in _KEEP_TABLES:
            continue
        cols = _columns(ws, name)
        review_cols = [c for c in cols if c == "review_id" or c.endswith("_review_id")]
        if name == "quarantine":
            df = ws.read_table(name)
            drop = _quarantine_mask(df, key, hashes)
        elif "user_id" in cols or review_cols:
            df = ws.read_table(name)
            drop = np.zeros(len(df), dtype=bool)
            if "user_id" in cols:
                drop |= _forgotten_mask(df["user_id"], key, hashes)
            for c in review_cols:  # rows that quote one of the user's reviews (explanation evidence)
                drop |= df[c].astype("string").isin(review_ids).fillna(False).to_numpy(dtype=bool)
        else:
            continue
        if drop.any():
            updates[name] = (df.loc[~drop].reset_index(drop=True), ws.table_metadata(name))
            res.rows[name] = int(drop.sum())
    if res.rows.get("reviews"):  # aggregates that counted the users' reviews
        updates.update(_rebuilt_aggregates(ws, reviews_left, updates, res))
    if updates:
        ws.write_tables(updates)


def _rebuilt_aggregates(ws: Workspace, reviews: pd.DataFrame, updates: dict, res: ForgetResult) -> dict:
    """``item_profiles`` and ``alerts`` recomputed without the forgotten reviews, with the
    settings stored in their metadata; a table that cannot be rebuilt is emptied, never kept."""
    out: dict[str, tuple[pd.DataFrame, dict]] = {}
    scores = updates["review_scores"][0] if "review_scores" in updates else (
        ws.read_table("review_scores") if ws.has_table("review_scores") else None)
    items = ws.read_table("items") if ws.has_table("items") else None
    if ws.has_table("item_profiles"):
        meta = ws.table_metadata("item_profiles")
        try:
            from emorec import profiles

            config = profiles.ProfileConfig(**meta.get("config", {}))
            scored = reviews[["review_id", "user_id", "item_id", "rating", "timestamp"]].merge(
                scores, on="review_id", how="inner", validate="one_to_one")
            out["item_profiles"] = (profiles.build_item_profiles(scored, config, items=items), meta)
            res.rebuilt.append("item_profiles")
        except Exception as exc:  # any failure: never keep counts that include the person
            log.warning("could not rebuild item_profiles without the forgotten users (%s): emptied; run `emorec profile`", exc)
            old = ws.read_table("item_profiles")
            out["item_profiles"] = (old.iloc[0:0], meta)
            res.notes.append("item_profiles could not be rebuilt and was emptied: run `emorec profile`")
    if ws.has_table("alerts"):
        meta = ws.table_metadata("alerts")
        try:
            from emorec.profiles.monitor import monitor

            result = monitor(reviews, scores, items, **meta.get("params", {}))
            out["alerts"] = (result.alerts, meta)
            res.rebuilt.append("alerts")
        except Exception as exc:
            log.warning("could not rebuild alerts without the forgotten users (%s): emptied; run `emorec monitor`", exc)
            out["alerts"] = (ws.read_table("alerts").iloc[0:0], meta)
            res.notes.append("alerts could not be rebuilt and were emptied: run `emorec monitor`")
    return out


def _erase_from_evaluations(ws: Workspace, key: bytes, hashes: frozenset[str], res: ForgetResult) -> None:
    """Per-user rows of every evaluation output under ``<workspace>/evaluations/``."""
    base = ws.root / EVALUATIONS_DIR
    if not base.is_dir():
        return
    for path in sorted(base.rglob("*.parquet")):
        if path.is_symlink():
            raise WorkspaceError(f"refusing to rewrite {path}: it is a symbolic link")
        try:
            if "user_id" not in pq.read_schema(path).names:
                continue
            df = pq.read_table(path).to_pandas()
        except Exception as exc:  # any failure: unreadable, so it cannot be proven clean
            log.warning("deleting unreadable evaluation output %s (%s)", path, exc)
            path.unlink()
            continue
        drop = _forgotten_mask(df["user_id"], key, hashes)
        if drop.any():
            kept = df.loc[~drop].reset_index(drop=True)
            atomic_write(path, lambda p, kept=kept: kept.to_parquet(p, index=False))
            rel = path.relative_to(ws.root).as_posix()
            res.rows[rel] = int(drop.sum())


def _retrain(ws: Workspace, tainted: list[Path], retrain: bool, state: dict, res: ForgetResult) -> None:
    """Retrain the recommender without the users (if it knew them), then delete every version
    that knew them."""
    from . import pipeline

    base = ws.models_dir / pipeline.RECOMMENDER_MODEL
    config = state.get("retrain_config")
    if retrain and config is not None and ws.has_table("reviews") and not (base / "CURRENT").exists():
        from emorec.recommender import ServiceConfig

        from .runs import new_run_id

        pipeline.train(ws, ServiceConfig(**config), version=new_run_id())
        res.retrained = True
    for folder in tainted:
        if folder.exists() or folder.is_symlink():
            _remove_tree(folder)
            res.models_deleted.append(folder.name)
    if not (base / "CURRENT").exists() and (tainted or "retrain_config" in state):
        res.notes.append("recommender versions that knew the user were deleted: run `emorec train`")
