"""Customer ids as stored: as given, or pseudonymized at ingest (``--pseudonymize-ids``).

The shop's ids are stored exactly as given (``"007"`` stays ``"007"``, ``" a "`` stays
``" a "``). They should be opaque customer numbers; when a shop's ids are personal data
themselves (e-mail addresses, phone numbers, names), ``emorec ingest --pseudonymize-ids``
stores ``"p" + HMAC-SHA256(key, id)`` (the first 32 hex digits) instead, in every table and
export. The key is 32 random bytes in ``<workspace>/.id_key`` (mode 0600), made on first use
and never exported: the same id always gets the same pseudonym in one workspace, so lists and
profiles still line up across ingests, and ``emorec forget --user ID`` / ``emorec recommend
--user ID`` accept the original id. Once a workspace holds pseudonymized ids every ingest must
ask for them (and the other way round); mixing both would split one customer in two.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence

import pandas as pd

from emorec.common.atomic import atomic_write_bytes
from emorec.common.errors import ConfigError, WorkspaceError

from .store import Workspace

ID_KEY_FILE = ".id_key"
#: Key of the reviews table's metadata that says the ids are pseudonymized.
META_KEY = "pseudonymized_ids"
PREFIX = "p"

__all__ = ["ID_KEY_FILE", "as_stored", "check_consistent", "is_pseudonymized", "pseudonymize", "secret_key", "stored_ids"]


def secret_key(ws: Workspace, name: str, create: bool, what: str) -> bytes | None:
    """A 32-byte secret in ``<workspace>/<name>`` (mode 0600), created on first use when ``create``."""
    path = ws.root / name
    if path.is_symlink():
        raise WorkspaceError(f"refusing to use {what} {path}: it is a symbolic link")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        if not create:
            return None
    key = secrets.token_bytes(32)
    try:
        ws.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, key, mode=0o600)
    except OSError as exc:
        raise WorkspaceError(f"cannot create {what} {path}: {exc.strerror or exc}") from exc
    return key


def _pseudonyms(key: bytes, ids: Iterable[str]) -> list[str]:
    return [PREFIX + hmac.new(key, str(i).encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32] for i in ids]


def pseudonymize(ws: Workspace, ids: pd.Series) -> pd.Series:
    """The pseudonyms of ``ids`` (each distinct id hashed once; missing stays missing)."""
    key = secret_key(ws, ID_KEY_FILE, True, "the id pseudonymization key")
    values = ids.astype("string")
    uniq = pd.unique(values.dropna().to_numpy(dtype=object))
    mapping = dict(zip(uniq, _pseudonyms(key, uniq)))
    return values.map(mapping).astype("string")


def is_pseudonymized(ws: Workspace) -> bool:
    """Whether the workspace's stored reviews have pseudonymized user ids."""
    return ws.has_table("reviews") and bool(ws.table_metadata("reviews").get(META_KEY, False))


def check_consistent(ws: Workspace, pseudonymize_ids: bool, replace: bool) -> None:
    """Refuse to add reviews with ids stored differently from the reviews already stored."""
    if replace or not ws.has_table("reviews"):
        return
    stored = is_pseudonymized(ws)
    if stored != pseudonymize_ids:
        raise ConfigError(
            f"the reviews in {ws.root} have {'pseudonymized' if stored else 'original'} user ids: "
            + ("add --pseudonymize-ids to this ingest" if stored else "ingest without --pseudonymize-ids")
            + " (or replace everything with --replace), so that one customer keeps one id")


def stored_ids(ws: Workspace, ids: Sequence[str]) -> list[str]:
    """The ids as the workspace stores them: the ids themselves and, in a workspace with
    pseudonymized ids, their pseudonyms too (so either form may be given)."""
    out = list(ids)
    key = secret_key(ws, ID_KEY_FILE, False, "the id pseudonymization key")
    if key is not None:
        out += _pseudonyms(key, ids)
    return out


def as_stored(ws: Workspace, ids: Sequence[str]) -> list[str]:
    """Each id as the workspace stores it: its pseudonym in a pseudonymized workspace, else itself."""
    if not is_pseudonymized(ws):
        return list(ids)
    key = secret_key(ws, ID_KEY_FILE, False, "the id pseudonymization key")
    if key is None:
        raise WorkspaceError(f"{ws.root} has pseudonymized ids but its key {ws.root / ID_KEY_FILE} is missing: "
                             "restore it from the backup")
    return [i if len(i) == 33 and i.startswith(PREFIX) else p for i, p in zip(ids, _pseudonyms(key, ids))]
