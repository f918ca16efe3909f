"""Segment exports for CRM tools: one CSV or Parquet file per segment.

Each file holds the segment's users with the CRM fields (:data:`CRM_FIELDS`, those present):
``user_id``, ``segment``, ``cluster``, ``cluster_label``, ``n_reviews``, ``first_review``,
``last_review``, ``days_since_last_review``, ``mean_rating``, ``recent_valence``,
``share_negative``, ``top_aspect``, ``top_aspect_sentiment``, ``spend``, ``monetary``, and, when
the workspace has recommendations, the user's first :data:`RECOMMENDED_IN_EXPORT` recommended items
(``recommended_items``, ids separated by ``;``) with their titles (``recommended_titles``, when the
catalog has titles) so that a campaign can name the products. A file
is written for every configured segment, empty ones included (so a rerun never leaves a
stale list behind), plus ``manifest.json`` (files, row counts, format, whether ids are
pseudonymized; never the salt).

Safety
------
* **Confinement**: files go only into ``out_dir``. Segment names must be identifiers
  (``[a-z][a-z0-9_]*``); a name with a path separator, ``..``, or an absolute path is
  rejected, and every resolved target path is checked to lie inside ``out_dir``.
* **Pseudonymization** (``pseudonymize=True``): user ids are replaced by
  ``HMAC-SHA256(salt, user_id)`` as 64 hex digits, stable across runs for the same salt (so
  the CRM can match lists over time) and not reversible without the salt. The salt comes from
  a file (``salt_file``) or the environment variable :data:`SALT_ENV`; it is never written to
  the output, and a salt file inside ``out_dir`` is refused (it would be shipped along with
  the lists). At least 16 bytes are required.
* **Spreadsheet formulas**: in CSV files, text cells starting with ``=``, ``+``, ``-``, ``@``,
  tab or carriage return get a leading ``'`` so Excel and co. do not run them as formulas
  (ids come from shop data, which we do not control).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from emorec.common.atomic import atomic_write
from emorec.common.errors import ConfigError

from .segments import NAME_PATTERN, evaluation_frame

__all__ = ["CRM_FIELDS", "RECOMMENDED_IN_EXPORT", "SALT_ENV", "export_segments", "load_salt", "pseudonymize_ids",
           "recommended_columns", "safe_output_path"]

SALT_ENV = "EMOREC_PSEUDONYM_SALT"
MIN_SALT_BYTES = 16
CRM_FIELDS: tuple[str, ...] = (
    "user_id", "segment", "cluster", "cluster_label", "n_reviews", "first_review", "last_review",
    "days_since_last_review", "mean_rating", "recent_valence", "share_negative", "top_aspect",
    "top_aspect_sentiment", "spend", "monetary",
)
FORMATS = ("csv", "parquet")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: Recommended items per user in the exports (when recommendations are given).
RECOMMENDED_IN_EXPORT = 3


def recommended_columns(recommendations: pd.DataFrame, items: pd.DataFrame | None = None,
                        n: int = RECOMMENDED_IN_EXPORT) -> pd.DataFrame:
    """Per user: ``recommended_items`` (the first ``n`` item ids, ``;``-separated) and, when the
    catalog has titles, ``recommended_titles`` (``; ``-separated, an unknown title shown as ``?``)."""
    recs = recommendations.sort_values(["user_id", "rank"]).groupby("user_id", sort=False).head(n)
    out = recs.groupby("user_id", sort=False)["item_id"].agg(lambda s: ";".join(map(str, s))).rename("recommended_items")
    frame = out.reset_index()
    if items is not None and "title" in items.columns and items["title"].notna().any():
        titles = items.drop_duplicates("item_id").set_index("item_id")["title"]
        named = recs.assign(title=recs["item_id"].map(titles).fillna("?").astype(str))
        frame = frame.merge(named.groupby("user_id", sort=False)["title"].agg("; ".join).rename("recommended_titles")
                            .reset_index(), on="user_id", how="left")
    return frame


def is_inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def safe_output_path(out_dir: str | Path, name: str, suffix: str) -> Path:
    """``out_dir/<name><suffix>``, refusing names that are not identifiers or escape ``out_dir``."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConfigError(
            f"refusing to write segment {name!r}: segment names must be identifiers "
            "(lower-case letters, digits and _), not paths"
        )
    folder = Path(out_dir)
    target = folder / f"{name}{suffix}"
    if not is_inside(target, folder):
        raise ConfigError(f"refusing to write {target}: it is outside the output folder {folder}")
    return target


def load_salt(salt_file: str | Path | None = None, out_dir: str | Path | None = None,
              env: Mapping[str, str] | None = None) -> bytes:
    """The pseudonymization salt from ``salt_file`` or ``$EMOREC_PSEUDONYM_SALT``.

    Raises
    ------
    ValueError
        No salt, a salt shorter than 16 bytes, or a salt file inside ``out_dir``.
    """
    env = os.environ if env is None else env
    if salt_file is not None:
        path = Path(salt_file)
        if out_dir is not None and is_inside(path, Path(out_dir)):
            raise ConfigError(
                f"refusing salt file {path}: it is inside the output folder {out_dir} and would be "
                "shipped with the exports; keep the salt outside it"
            )
        try:
            salt = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"salt file {path} does not exist") from None
        salt = salt.rstrip(b"\r\n")
        origin = f"salt file {path}"
    elif env.get(SALT_ENV):
        salt = env[SALT_ENV].encode("utf-8")
        origin = f"${SALT_ENV}"
    else:
        raise ConfigError(f"pseudonymization needs a salt: pass a salt file or set ${SALT_ENV} (at least {MIN_SALT_BYTES} bytes, kept secret)")
    if len(salt) < MIN_SALT_BYTES:
        raise ConfigError(f"the salt from {origin} is too short ({len(salt)} bytes); use at least {MIN_SALT_BYTES} random bytes")
    return salt


def pseudonymize_ids(ids: Sequence[Any] | pd.Series, salt: bytes) -> pd.Series:
    """``HMAC-SHA256(salt, id)`` hex digests (64 characters) of the ids (UTF-8)."""
    values = pd.Series(ids).astype("string")
    return pd.Series(
        [hmac.new(salt, v.encode("utf-8"), hashlib.sha256).hexdigest() if v is not pd.NA else pd.NA
         for v in values.astype(object)],
        index=values.index, dtype="string",
    )


def _defuse_formulas(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or isinstance(out[c].dtype, pd.StringDtype):
            s = out[c].astype("string")
            risky = s.str.startswith(_FORMULA_START).fillna(False)
            if risky.any():
                out[c] = s.where(~risky, "'" + s)
    return out


def export_segments(
    assignments: pd.DataFrame,
    profiles: pd.DataFrame,
    out_dir: str | Path,
    fmt: str = "csv",
    segments: Sequence[str] | None = None,
    pseudonymize: bool = False,
    salt_file: str | Path | None = None,
    salt: bytes | None = None,
    as_of: Any = None,
    fields: Sequence[str] = CRM_FIELDS,
    recommendations: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write one file per segment into ``out_dir``.

    Parameters
    ----------
    assignments
        ``user_id``, ``segment`` and optionally ``cluster`` / ``cluster_label``.
    profiles
        The user profile table (source of the CRM fields).
    out_dir
        Output folder (created); nothing is written outside it.
    fmt
        ``"csv"`` or ``"parquet"``.
    segments
        Segment names to write (default: every segment in ``assignments``); pass the config's
        names to also get files for empty segments.
    pseudonymize, salt_file, salt
        Replace user ids by HMAC-SHA256 digests; the salt is ``salt`` if given, else read by
        :func:`load_salt` (a file outside ``out_dir``, or the environment).
    as_of
        Reference time of ``days_since_last_review`` (default: the newest review).
    recommendations, items
        The workspace's recommendations and catalog: adds ``recommended_items`` and
        ``recommended_titles`` (see :func:`recommended_columns`).

    Returns
    -------
    dict of str to Path
        The file written per segment.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    names = list(segments) if segments is not None else list(pd.unique(assignments["segment"].astype(str)))
    suffix = "." + fmt
    targets = {name: safe_output_path(out_dir, name, suffix) for name in names}  # validate all first
    key = None
    if pseudonymize:
        key = salt if salt is not None else load_salt(salt_file, out_dir)
        if len(key) < MIN_SALT_BYTES:
            raise ConfigError(f"the salt is too short ({len(key)} bytes); use at least {MIN_SALT_BYTES}")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)

    frame = evaluation_frame(profiles, as_of)
    drop = [c for c in assignments.columns if c != "user_id" and c in frame.columns]
    data = assignments.merge(frame.drop(columns=drop), on="user_id", how="left")
    cols = [c for c in fields if c in data.columns]
    data = data[cols]
    if recommendations is not None and len(recommendations):
        data = data.merge(recommended_columns(recommendations, items), on="user_id", how="left")
        cols = list(data.columns)
    if key is not None:
        data = data.assign(user_id=pseudonymize_ids(data["user_id"], key).to_numpy())
    seg = data["segment"].astype(str)
    written: dict[str, Path] = {}
    counts: dict[str, int] = {}
    for name, path in targets.items():
        part = data.loc[seg == name].reset_index(drop=True)
        if fmt == "csv":
            part = _defuse_formulas(part)
            for c in part.columns:
                if isinstance(part[c].dtype, pd.DatetimeTZDtype):
                    part[c] = part[c].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            atomic_write(path, lambda p, df=part: df.to_csv(p, index=False, float_format="%.6g"))
        else:
            atomic_write(path, lambda p, df=part: df.to_parquet(p, index=False))
        written[name] = path
        counts[name] = len(part)
    manifest = {
        "format": fmt,
        "pseudonymized": bool(key is not None),
        "id_hash": "HMAC-SHA256 hex" if key is not None else None,
        "fields": cols,
        "segments": {name: {"file": written[name].name, "rows": counts[name]} for name in written},
    }
    atomic_write(folder / "manifest.json", lambda p: p.write_text(json.dumps(manifest, indent=2)))
    return written

