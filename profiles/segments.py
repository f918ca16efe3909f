"""Rule-based customer segments: named, explainable, edited by marketers in TOML.

A segment is a name, a description and a list of rules; a user is in the segment when *all*
its rules hold. Segments are checked in file order and the **first match wins**, so every
user lands in exactly one segment, or in the reserved segment ``unassigned`` when no rule
set matches. The shipped set is ``profiles/default_segments.toml``::

    [[segment]]
    name = "frustrated_at_risk"
    description = "Recently unhappy customers: contact them before they leave"
    rules = [["recent_valence", "<", -0.2], ["days_since_last_review", "<=", 180]]

Rules
-----
A rule is ``[field, operator, value]`` (or ``{field = ..., op = ..., value = ...}``):

* ``field``: a column of the user profile table (``profiles.build_user_profiles``) or a
  derived column: ``days_since_last_review`` and ``tenure_days`` (days from the first review),
  both whole days relative to ``as_of`` (default: the newest ``last_review`` in the table).
  An unknown field raises :class:`~emorec.common.errors.ConfigError` naming it and listing the valid fields.
* ``operator``: one of ``<``, ``<=``, ``>``, ``>=``, ``=``, ``!=``, ``in``, ``not in``,
  ``is null``, ``is not null`` (``is null`` / ``is not null`` take no value, ``in`` /
  ``not in`` take a non-empty list).
* ``value``: a number for numeric columns, a string for text columns, true/false for
  boolean columns, a TOML date/datetime or ISO string for timestamp columns.

Missing values never match a comparison (SQL semantics: ``NULL < 0`` is not true), so a
user without ratings is never a "harsh critic" by accident; use ``is null`` to target them.

Evaluation and safety
---------------------
The rules run as one DuckDB ``CASE WHEN ... END`` over the profile table. Field names are
checked against the table's columns before they reach SQL (and are quoted as identifiers),
operators come from a fixed whitelist, values are always bound as query parameters (never
formatted into the SQL text) and segment names never enter the SQL at all (the query
returns the index of the first matching segment). Segment names must be identifiers
(``[a-z][a-z0-9_]*``, at most 64 characters) because they also name export files.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field, field_validator, model_validator

from emorec.common.config import StrictConfig
from emorec.common.errors import ConfigError, InputError
from emorec.common.time import days_between

__all__ = [
    "DEFAULT_SEGMENTS_FILE",
    "DERIVED_FIELDS",
    "OPERATORS",
    "UNASSIGNED",
    "Rule",
    "Segment",
    "SegmentConfig",
    "assign_segments",
    "evaluation_frame",
    "resolve_as_of",
    "segment_summary",
]

DEFAULT_SEGMENTS_FILE = Path(__file__).with_name("default_segments.toml")
#: The segment of users that match no rule set (reserved: no configured segment may use it).
UNASSIGNED = "unassigned"
UNASSIGNED_DESCRIPTION = "Matches no segment rule (not enough signal, or in between segments)"
#: Whitelisted operators (lower case, single spaces).
OPERATORS: tuple[str, ...] = ("<", "<=", ">", ">=", "=", "!=", "in", "not in", "is null", "is not null")
_NULL_OPS = ("is null", "is not null")
_LIST_OPS = ("in", "not in")
#: Columns computed from the profile table before the rules run.
DERIVED_FIELDS: dict[str, str] = {
    "days_since_last_review": "whole days from last_review to as_of",
    "tenure_days": "whole days from first_review to as_of",
}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                  "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL")


def _normalise_op(op: Any) -> str:
    if not isinstance(op, str):
        raise ConfigError(f"operator must be a string, got {op!r}; valid operators: {', '.join(OPERATORS)}")
    norm = " ".join(op.lower().split())
    if norm == "==":
        norm = "="
    if norm == "<>":
        norm = "!="
    if norm not in OPERATORS:
        raise ConfigError(f"unknown operator {op!r}; valid operators: {', '.join(OPERATORS)}")
    return norm


class Rule(StrictConfig):
    """One condition ``field operator value``; see the module docstring."""

    model_config = ConfigDict(frozen=True)
    section: ClassVar[str] = "segment rule"

    field: str = Field(min_length=1, max_length=200)
    op: str
    value: Any = None

    @field_validator("op", mode="before")
    @classmethod
    def _check_op(cls, v: Any) -> str:
        return _normalise_op(v)

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, data: Any) -> Any:
        if isinstance(data, (list, tuple)):
            if len(data) == 2:
                return {"field": data[0], "op": data[1]}
            if len(data) == 3:
                return {"field": data[0], "op": data[1], "value": data[2]}
            raise ConfigError(f"a rule is [field, operator, value] or [field, 'is null'], got {list(data)!r}")
        return data

    @model_validator(mode="after")
    def _check_value(self) -> Rule:
        if self.op in _NULL_OPS:
            if self.value is not None:
                raise ConfigError(f"operator {self.op!r} takes no value (rule on {self.field!r})")
        elif self.op in _LIST_OPS:
            if not isinstance(self.value, (list, tuple)) or not self.value:
                raise ConfigError(f"operator {self.op!r} needs a non-empty list of values (rule on {self.field!r})")
            for v in self.value:
                _check_scalar(v, self.field)
        else:
            _check_scalar(self.value, self.field)
        return self

    def describe(self) -> str:
        """The rule as a marketer reads it, e.g. ``recent_valence < -0.2``."""
        if self.op in _NULL_OPS:
            return f"{self.field} {self.op}"
        return f"{self.field} {self.op} {self.value!r}"


def _check_scalar(v: Any, field: str) -> None:
    if v is None or isinstance(v, (list, tuple, dict)):
        raise ConfigError(f"rule on {field!r} needs a single value (number, string, boolean or date), got {v!r}")
    if isinstance(v, float) and not math.isfinite(v):
        raise ConfigError(f"rule on {field!r}: value must be finite, got {v!r}")
    if not isinstance(v, (bool, int, float, str, dt.date, dt.datetime)):
        raise ConfigError(f"rule on {field!r}: unsupported value type {type(v).__name__}")


class Segment(StrictConfig):
    """A named segment: a user is in it when every rule holds (and no earlier segment matched)."""

    model_config = ConfigDict(frozen=True)
    section: ClassVar[str] = "segment"

    name: str
    description: str = ""
    rules: tuple[Rule, ...] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not NAME_PATTERN.match(v):
            raise ConfigError(
                f"segment name {v!r} is not an identifier: use lower-case letters, digits and _ "
                "(starting with a letter, at most 64 characters)"
            )
        if v == UNASSIGNED:
            raise ConfigError(f"segment name {UNASSIGNED!r} is reserved for users that match no segment")
        return v


class SegmentConfig(StrictConfig):
    """An ordered list of segments (first match wins) plus the ``unassigned`` fallback.

    Examples
    --------
    >>> cfg = SegmentConfig.model_validate({"segment": [
    ...     {"name": "unhappy", "rules": [["recent_valence", "<", 0]]}]})
    >>> cfg.names
    ('unhappy', 'unassigned')
    """

    model_config = ConfigDict(frozen=True, populate_by_name=True)
    section: ClassVar[str] = "segment config"

    segments: tuple[Segment, ...] = Field(alias="segment", min_length=1)
    unassigned_description: str = UNASSIGNED_DESCRIPTION

    @model_validator(mode="before")
    @classmethod
    def _unassigned_table(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "unassigned" in data:
            data = dict(data)
            block = data.pop("unassigned")
            if not isinstance(block, Mapping) or set(block) - {"description"}:
                raise ConfigError("[unassigned] takes only a description")
            data["unassigned_description"] = str(block.get("description", UNASSIGNED_DESCRIPTION))
        return data

    @model_validator(mode="after")
    def _unique(self) -> SegmentConfig:
        seen: set[str] = set()
        for s in self.segments:
            if s.name in seen:
                raise ConfigError(f"segment {s.name!r} is defined twice")
            seen.add(s.name)
        return self

    @classmethod
    def from_toml(cls, path: str | Path) -> SegmentConfig:
        """Read a segment file (``[[segment]]`` tables, optional ``[unassigned]``)."""
        path = Path(path)
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"segment config {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"segment config {path} is not valid TOML: {exc}") from None
        try:
            return cls.model_validate(data)
        except ValueError as exc:  # pydantic's ValidationError names the segment and rule
            raise ConfigError(f"segment config {path}: {exc}") from None

    @classmethod
    def default(cls) -> SegmentConfig:
        """The shipped segments (``profiles/default_segments.toml``)."""
        return cls.from_toml(DEFAULT_SEGMENTS_FILE)

    @property
    def names(self) -> tuple[str, ...]:
        """Segment names in evaluation order, ending with ``unassigned``."""
        return (*tuple(s.name for s in self.segments), UNASSIGNED)

    def descriptions(self) -> dict[str, str]:
        out = {s.name: s.description for s in self.segments}
        out[UNASSIGNED] = self.unassigned_description
        return out

    def fields(self) -> set[str]:
        return {r.field for s in self.segments for r in s.rules}


# --------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------


def resolve_as_of(profiles: pd.DataFrame, as_of: Any = None) -> pd.Timestamp | None:
    """``as_of`` as a UTC timestamp; default the newest ``last_review`` of the table."""
    if as_of is not None:
        ts = pd.Timestamp(as_of)
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if "last_review" in profiles.columns and len(profiles):
        newest = pd.to_datetime(profiles["last_review"], utc=True).max()
        return None if pd.isna(newest) else newest
    return None


def evaluation_frame(profiles: pd.DataFrame, as_of: Any = None) -> pd.DataFrame:
    """The profile table plus the derived fields, as the rules see it."""
    ref = resolve_as_of(profiles, as_of)
    df = profiles.copy()
    for col, src in (("days_since_last_review", "last_review"), ("tenure_days", "first_review")):
        if src in df.columns and ref is not None:
            df[col] = np.floor(days_between(ref, pd.to_datetime(df[src], utc=True)))
        else:
            df[col] = np.nan
    return df


def _kind(duck_type: str) -> str:
    t = duck_type.upper()
    if t.startswith(_NUMERIC_TYPES):
        return "number"
    if t == "BOOLEAN":
        return "bool"
    if t.startswith(("TIMESTAMP", "DATE")):
        return "time"
    if t.startswith("VARCHAR"):
        return "string"
    return "other"


def _param(value: Any, kind: str, rule: Rule) -> Any:
    """The value as bound to the query, after checking that it fits the column's type."""
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"rule {rule.describe()}: {rule.field!r} is numeric, the value must be a number")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"rule {rule.describe()}: {rule.field!r} is boolean, the value must be true or false")
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise ConfigError(f"rule {rule.describe()}: {rule.field!r} is text, the value must be a string")
        return value
    if kind == "time":
        try:
            ts = pd.Timestamp(value)
        except (ValueError, TypeError):
            raise ConfigError(f"rule {rule.describe()}: {rule.field!r} is a timestamp, the value must be a date") from None
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return ts.to_pydatetime()
    raise ConfigError(f"rule {rule.describe()}: rules on column {rule.field!r} of type {kind} are not supported")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _compile(config: SegmentConfig, column_types: Mapping[str, str]) -> tuple[str, list[Any]]:
    """``CASE WHEN <segment 0> THEN 0 ... ELSE -1 END`` and its parameters."""
    valid = sorted(column_types)
    whens, params = [], []
    for k, seg in enumerate(config.segments):
        conds = []
        for rule in seg.rules:
            if rule.field not in column_types:
                raise ConfigError(
                    f"segment {seg.name!r}: unknown field {rule.field!r}; valid fields: {', '.join(valid)}"
                )
            col, kind = _quote_ident(rule.field), _kind(column_types[rule.field])
            if rule.op in _NULL_OPS:
                conds.append(f"{col} {rule.op.upper()}")
            elif rule.op in _LIST_OPS:
                values = [_param(v, kind, rule) for v in rule.value]
                conds.append(f"{col} {rule.op.upper()} ({', '.join('?' * len(values))})")
                params.extend(values)
            else:
                conds.append(f"{col} {rule.op} ?")
                params.append(_param(rule.value, kind, rule))
        whens.append(f"WHEN ({' AND '.join(conds)}) THEN {k}")
    return "CASE " + " ".join(whens) + " ELSE -1 END", params


def assign_segments(profiles: pd.DataFrame, config: SegmentConfig | None = None, as_of: Any = None) -> pd.DataFrame:
    """Put every user in exactly one segment.

    Parameters
    ----------
    profiles
        The user profile table (one row per ``user_id``).
    config
        Segments in priority order; the shipped defaults when ``None``.
    as_of
        Reference time of ``days_since_last_review`` / ``tenure_days``; default the newest
        ``last_review`` in ``profiles``.

    Returns
    -------
    pandas.DataFrame
        ``user_id``, ``segment`` (the first segment whose rules all hold, else
        ``"unassigned"``), in the order of ``profiles``.

    Raises
    ------
    ConfigError
        A rule names an unknown field (the message lists the valid ones) or its value does not
        fit the column's type.
    """
    config = config or SegmentConfig.default()
    if "user_id" not in profiles.columns:
        raise InputError("the profile table has no user_id column")
    frame = evaluation_frame(profiles, as_of)
    # keep only what the rules need (less to scan) plus a row number to restore the order
    needed = [c for c in frame.columns if c in config.fields()]
    con = duckdb.connect()
    try:
        con.register("profiles_input", frame)
        described = con.execute("DESCRIBE profiles_input").fetchall()
        column_types = {row[0]: row[1] for row in described}
        case_sql, params = _compile(config, column_types)
        sel = ", ".join(_quote_ident(c) for c in needed) or "1 AS _dummy"
        con.execute(f"CREATE TEMP VIEW profiles_eval AS SELECT row_number() OVER () - 1 AS _row, {sel} FROM profiles_input")
        idx = con.execute(f"SELECT _row, {case_sql} AS _seg FROM profiles_eval ORDER BY _row", params).fetchnumpy()
    finally:
        con.close()
    seg_idx = np.full(len(frame), -1, dtype=np.int64)
    seg_idx[np.asarray(idx["_row"], dtype=np.int64)] = np.asarray(idx["_seg"], dtype=np.int64)
    names = np.asarray(config.names, dtype=object)  # index -1 -> unassigned (the last name)
    return pd.DataFrame({
        "user_id": pd.array(frame["user_id"].astype("string").to_numpy(), dtype="string"),
        "segment": pd.array(names[seg_idx], dtype="string"),
    })


def segment_summary(
    profiles: pd.DataFrame,
    assignments: pd.DataFrame,
    config: SegmentConfig | None = None,
    as_of: Any = None,
) -> pd.DataFrame:
    """One row per segment (file order, ``unassigned`` last, empty segments included).

    Columns: ``segment``, ``description``, ``rules`` (readable), ``users``, ``share``, and
    the segment means of ``recent_valence``, ``mean_rating``, ``share_negative``,
    ``days_since_last_review`` and ``monetary`` where the profile has them.
    """
    config = config or SegmentConfig.default()
    frame = evaluation_frame(profiles, as_of)
    df = frame.merge(assignments[["user_id", "segment"]], on="user_id", how="inner")
    metrics = [c for c in ("recent_valence", "mean_rating", "share_negative", "days_since_last_review", "monetary")
               if c in df.columns]
    g = df.groupby(df["segment"].astype(str), sort=False)
    means = g[metrics].mean() if metrics else pd.DataFrame(index=g.size().index)
    counts = g.size()
    rules = {s.name: " AND ".join(r.describe() for r in s.rules) for s in config.segments}
    rules[UNASSIGNED] = "(no rule matched)"
    desc = config.descriptions()
    total = max(len(df), 1)
    rows = []
    for name in config.names:
        row = {"segment": name, "description": desc[name], "rules": rules[name],
               "users": int(counts.get(name, 0)), "share": float(counts.get(name, 0)) / total}
        for m in metrics:
            row[f"mean_{m}" if not m.startswith("mean_") else m] = float(means[m].get(name, np.nan)) if name in means.index else np.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    out["segment"] = out["segment"].astype("string")
    return out


def rules_table(config: SegmentConfig) -> list[tuple[str, str, list[str]]]:
    """``(name, description, [readable rules])`` per segment, ``unassigned`` last."""
    out = [(s.name, s.description, [r.describe() for r in s.rules]) for s in config.segments]
    out.append((UNASSIGNED, config.unassigned_description, ["(no rule matched)"]))
    return out
