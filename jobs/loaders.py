"""Read review and item files as found in the wild into the tables of :mod:`jobs.contract`.

Supported review layouts
------------------------
* JSON lines, plain or gzip (detected by its magic bytes): the Amazon 2014 layout
  (``reviewerID, asin, overall, reviewText, summary, unixReviewTime, reviewTime, helpful``),
  the Amazon 2018 layout (``verified, vote, style, image`` as well) and objects with canonical
  keys. The layout is recognised per record by the keys it has: each field is read from the first
  key of its alias list (:data:`REVIEW_ALIASES`) that the record has.
* CSV / TSV (delimiter sniffed from the header line) and Parquet (read in row-group batches),
  with canonical column names, common aliases (case-insensitive) or an explicit mapping.
  A CSV row with more fields than the header is an error (pandas would cut it silently).

Every input record ends up either in ``reviews`` or in ``quarantine`` (``n_read == len(reviews) +
len(quarantine)``): a record that fails a check is quarantined with the canonical field, a human
reason and the raw record without personal fields (both scrubbed of e-mail addresses, URLs and
phone numbers); duplicates are collapsed, counted and also written to the quarantine. A file
without a column for a required field raises :class:`SchemaError` at once; a file without any
record (empty, blank, or a header only) raises :class:`EmptyFileError`. Every column that is
neither read into a field nor personal is kept, per review, as a JSON object in ``extra``, and
listed in the file's :class:`ColumnReport` with the optional fields that found no column.

Line numbers are the file's: for JSON lines the line of the object, for CSV the line where the
row starts (the header is line 1; quoted fields spanning several lines are counted), for
Parquet and in-memory frames the row number. Rows of a CSV file without any value are skipped
like blank lines.

Duplicates are exact copies (user, item, rating, title, text, time) and copies with the same user,
time, title and non-empty text (the 2018 dumps repeat a review under each product variant); they are
recognised across chunks by 16-byte digests, so memory grows by about 70 bytes per review.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import json
import logging
import math
import re
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from emorec.common.errors import InputError
from emorec.sentiment.text import scrub_pii

from .contract import (
    ITEM_COLUMNS,
    MAX_REVIEW_CHARS,
    MIN_TIMESTAMP,
    QUARANTINE_COLUMNS,
    RATING_RANGE,
    REQUIRED_REVIEW_FIELDS,
    REVIEW_COLUMNS,
    TEXT_FIELDS,
    conform,
    empty_frame,
    is_personal_field,
    max_timestamp,
)

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "csv", "parquet")
_SUFFIX_FORMATS = {".json": "jsonl", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "csv",
                   ".parquet": "parquet", ".pq": "parquet"}

#: Source columns/keys looked for (case-insensitively, best first) when a field has no explicit mapping.
REVIEW_ALIASES: dict[str, tuple[str, ...]] = {
    "review_id": ("review_id", "id"),
    "user_id": ("user_id", "user", "userid", "customer_id", "reviewer_id", "reviewerID"),
    "item_id": ("item_id", "item", "itemid", "product_id", "asin", "sku"),
    "rating": ("rating", "stars", "star_rating", "score", "overall"),
    "title": ("title", "summary", "headline", "review_title"),
    "text": ("text", "review", "body", "review_text", "reviewText", "content"),
    "timestamp": ("timestamp", "time", "date", "created_at", "review_date", "unixReviewTime", "reviewTime"),
    "helpful_votes": ("helpful_votes", "helpful", "vote", "votes"),
    "verified": ("verified", "verified_purchase"),
}
ITEM_ALIASES: dict[str, tuple[str, ...]] = {
    "item_id": ("item_id", "item", "itemid", "product_id", "asin", "sku", "id"),
    "title": ("title", "name", "product_title", "product_name"),
    "category": ("category", "categories", "main_cat", "product_category"),
    "price": ("price",),
}
_SHORT_NAMES = {"user": "user_id", "item": "item_id"}
_REVIEW_REQUIRED = (*tuple((f,) for f in REQUIRED_REVIEW_FIELDS), TEXT_FIELDS)

_SCHEMA_SAMPLE = 1000  # JSON objects inspected for the file-level column check
_MAX_RECORD = 10_000  # characters of a quarantined record that are kept
_MAX_VALUE = 2_000  # characters of one value of a quarantined record that are kept (so its ids survive the cut)
_OPTIONAL_FIELDS = ("rating", "timestamp", "title", "text")  # warned about when no column provides them
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")
_MAX_VOTES = 10**12  # more helpful votes than that is not a count
_NAT = np.iinfo(np.int64).min  # NaT as int64 nanoseconds
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HASH_KEYS = ("emorec-dedup-k01", "emorec-dedup-k02")  # two 64-bit hashes make a 16-byte digest
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d*)?")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d*)?")
_BOOLS = {"true": True, "t": True, "yes": True, "y": True, "1": True,
          "false": False, "f": False, "no": False, "n": False, "0": False}
_JSON_PAIR = re.compile(  # a "key": value pair inside raw JSON text (the value may be cut off)
    r'\s*"((?:[^"\\]|\\.)*)"\s*:\s*(?:"(?:[^"\\]|\\.)*"?|null|true|false|-?[0-9][0-9.eE+-]*)\s*,?')


class SchemaError(InputError):
    """A file lacks a column (or JSON key) for a required field."""


class EmptyFileError(InputError):
    """A review file holds no record: empty, only blank lines, or a header without rows."""


@dataclass
class ColumnReport:
    """How the columns (JSON keys) of one review file were used.

    Attributes
    ----------
    source : str
        The file.
    used : dict of str to str
        Field -> the column it was read from.
    unused : list of str
        Columns read into no field and not personal: kept per review in ``extra`` (JSON).
    personal : list of str
        Columns recognised as personal data (:func:`jobs.contract.is_personal_field`): never read.
    missing : dict of str to list of str
        Optional field (rating, timestamp, title, text) -> the column names looked for, for every
        optional field that found no column.
    """

    source: str
    used: dict[str, str] = field(default_factory=dict)
    unused: list[str] = field(default_factory=list)
    personal: list[str] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)

    def warnings(self) -> list[str]:
        """Lines for a person: fields without a column, and the columns nobody read."""
        out = []
        for name, looked in self.missing.items():
            out.append(f"{self.source}: no column for {name} (looked for {', '.join(looked)}); all reviews have no "
                       f"{name} -- if a column holds it, map it: --map {name}=COLUMN")
        if self.unused:
            out.append(f"{self.source}: column(s) {', '.join(map(str, self.unused))} not used by any field: kept in the "
                       "reviews' `extra` column (JSON); map one with --map FIELD=COLUMN if it is a review field")
        return out


class _Invalid(ValueError):
    """One value fails validation; the message is the quarantine reason."""


@dataclass
class LoadResult:
    """Reviews and quarantined records read from one source (or one chunk of it).

    Attributes
    ----------
    reviews : pandas.DataFrame
        Valid reviews, conformed to ``REVIEW_COLUMNS``.
    quarantine : pandas.DataFrame
        Rejected records (including collapsed duplicates), conformed to ``QUARANTINE_COLUMNS``.
    n_read : int
        Input records seen: non-blank lines for JSON lines, data rows for CSV/Parquet/frames.
        Always ``len(reviews) + len(quarantine)``.
    n_duplicates : int
        Records collapsed as duplicates (they are also in ``quarantine``).
    source : str
        File name (or the name given for an in-memory frame).
    columns : ColumnReport, optional
        How the file's columns were used (on the first chunk of a file).
    """

    reviews: pd.DataFrame
    quarantine: pd.DataFrame
    n_read: int
    n_duplicates: int
    source: str
    columns: ColumnReport | None = None


@dataclass
class _Chunk:
    """Raw values of one batch of input records, before validation."""

    fields: dict[str, np.ndarray]  # canonical field -> raw values (object arrays; None = absent)
    lines: np.ndarray  # 1-based line / data row of each record
    originals: Sequence[bytes] | pd.DataFrame  # JSON lines or source rows, rendered only when quarantined
    rejected: list[tuple[int, str, str]] = field(default_factory=list)  # (line, reason, raw text): unparsable
    n_read: int = 0
    extra: np.ndarray | None = None  # per record: JSON text of the unused columns, or None
    columns: ColumnReport | None = None


# --- column mapping --------------------------------------------------------------------------------------
def _canonical(name: str) -> str:
    """The canonical spelling of a field name (``User`` -> ``user_id``); not checked."""
    key = name.strip().lower()
    return _SHORT_NAMES.get(key, key)


def _field_name(name: str) -> str:
    """The canonical review field for a canonical or short name; ValueError for an unknown one."""
    key = _canonical(name)
    if key not in REVIEW_ALIASES:
        raise InputError(f"unknown field {name!r} in column mapping; valid fields: {', '.join(REVIEW_ALIASES)} "
                         f"(short names: {', '.join(_SHORT_NAMES)})")
    return key


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    """Parse ``FIELD=COLUMN`` pairs (as given to ``--map``) into a column mapping.

    Parameters
    ----------
    pairs : sequence of str
        E.g. ``["user=customer_id", "text=body"]``. ``FIELD`` is a canonical review field or a short
        name (``user``, ``item``).

    Returns
    -------
    dict of str to str
        Canonical field -> source column, e.g. ``{"user_id": "customer_id", "text": "body"}``.

    Raises
    ------
    InputError
        For a pair without ``=``, field or column, or an unknown field (the message lists the valid ones).
    """
    mapping: dict[str, str] = {}
    for pair in pairs:
        name, sep, column = (part.strip() for part in str(pair).partition("="))
        if not (sep and name and column):
            raise InputError(f"malformed column mapping {pair!r}: expected FIELD=COLUMN, e.g. user=customer_id")
        if "," in column and "=" in column:
            raise InputError(f"column mapping {pair!r} holds several pairs: give one --map per field, e.g. "
                             f"--map {' --map '.join(p.strip() for p in str(pair).split(','))}")
        field_name = _field_name(name)
        if mapping.get(field_name, column) != column:
            raise InputError(f"field {field_name!r} is mapped twice ({mapping[field_name]!r} and {column!r})")
        mapping[field_name] = column
    return mapping


def _review_mapping(mapping: Mapping[str, str] | None) -> dict[str, str]:
    """Validate a review mapping: canonical keys, and no personal column read into a review
    (except an e-mail or phone column as the user id: a shop whose customer ids are e-mail
    addresses maps them, and should ingest with ``--pseudonymize-ids``; never a name)."""
    out = {_field_name(k): str(v) for k, v in (mapping or {}).items()}
    personal = {f: c for f, c in out.items()
                if is_personal_field(c) and (f != "user_id" or "name" in c.lower())}
    if personal:
        raise InputError(f"column mapping {personal} reads personal data (names, e-mail addresses, phone numbers and "
                         "postal addresses are never stored)")
    return out


def _resolve(found: Iterable[Any], mapping: Mapping[str, str], aliases: Mapping[str, tuple[str, ...]],
             ) -> dict[str, Any]:
    """The source column of each field (None if absent): the mapped column, else the first alias found."""
    found = list(found)
    by_lower: dict[str, Any] = {}
    for col in found:
        by_lower.setdefault(str(col).lower(), col)
    out = {}
    for name, names in aliases.items():
        if name in mapping:
            col = mapping[name]
            out[name] = col if col in found else by_lower.get(col.lower())
        else:
            out[name] = next((by_lower[a.lower()] for a in names if a.lower() in by_lower), None)
    return out


def _check_schema(resolved: Mapping[str, Any], found: Iterable[Any], mapping: Mapping[str, str],
                  aliases: Mapping[str, tuple[str, ...]], required: Sequence[tuple[str, ...]], where: Any) -> None:
    """Raise :class:`SchemaError` when a required field (or a mapped column) has no source column."""
    shown = ", ".join(map(str, found)) or "(none)"
    for group in required:
        if all(resolved[f] is None for f in group):
            looked = ", ".join(dict.fromkeys(c for f in group for c in ([mapping[f]] if f in mapping else aliases[f])))
            raise SchemaError(f"{where}: no column for required field {' or '.join(map(repr, group))} "
                              f"(looked for: {looked}); found columns: {shown}")
    for name, col in mapping.items():
        if name in resolved and resolved[name] is None:
            raise SchemaError(f"{where}: column {col!r} mapped to field {name!r} not found; found columns: {shown}")


def _consumed(found: Iterable[Any], mapping: Mapping[str, str]) -> set[Any]:
    """Columns some field reads: mapped ones, and every alias (an alias is a per-record fallback in JSON)."""
    aliases = {a.lower() for f, names in REVIEW_ALIASES.items() if f not in mapping for a in names}
    mapped = {str(c).lower() for c in mapping.values()}
    return {c for c in found if str(c).lower() in aliases or str(c).lower() in mapped}


def _column_report(found: Sequence[Any], resolved: Mapping[str, Any], mapping: Mapping[str, str],
                   source: str) -> ColumnReport:
    """The :class:`ColumnReport` of a file with columns ``found`` resolved to ``resolved``."""
    consumed = _consumed(found, mapping)
    personal = [str(c) for c in found if c not in consumed and is_personal_field(c)]
    unused = [str(c) for c in found if c not in consumed and not is_personal_field(c)]
    missing = {f: ([mapping[f]] if f in mapping else list(REVIEW_ALIASES[f]))
               for f in _OPTIONAL_FIELDS if resolved.get(f) is None}
    if resolved.get("text") is None and resolved.get("title") is None:
        missing = {f: v for f, v in missing.items() if f not in TEXT_FIELDS}  # a schema error, not a warning
    return ColumnReport(source, {f: str(c) for f, c in resolved.items() if c is not None}, unused, personal, missing)


def _extra_json(values: Mapping[str, Any]) -> str | None:
    """The unused columns of one record as JSON text (empty values left out; scrubbed), or None."""
    kept = {str(k): v for k, v in values.items() if v is not None and not (isinstance(v, float) and math.isnan(v))
            and not (isinstance(v, str) and not v.strip())}
    if not kept:
        return None
    text = json.dumps(kept, ensure_ascii=False, default=str)
    return scrub_pii(text.encode("utf-8", "backslashreplace").decode("utf-8"))


# --- reading ---------------------------------------------------------------------------------------------
def _format(path: Path, fmt: str | None) -> str:
    """The file format, from ``fmt`` or the file's suffix (``.gz`` looked through)."""
    if fmt is None:
        suffixes = [s.lower() for s in path.suffixes]
        if suffixes[-1:] == [".gz"]:
            suffixes.pop()
        fmt = _SUFFIX_FORMATS.get(suffixes[-1] if suffixes else "")
        if fmt is None:
            raise InputError(f"cannot tell the format of {path} from its suffix: rename it to end in one of "
                             f"{', '.join(_SUFFIX_FORMATS)} (optionally followed by .gz)")
    fmt = {"json": "jsonl", "ndjson": "jsonl", "tsv": "csv"}.get(fmt.lower(), fmt.lower())
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return fmt


def _open_binary(path: Path) -> IO[bytes]:
    """Open a file for binary reading, decompressing gzip (recognised by its magic bytes)."""
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _objects(values: Iterable[Any], n: int) -> np.ndarray:
    """A 1-d object array of ``values`` (lists stay elements)."""
    return np.fromiter(values, dtype=object, count=n)


def _frame_chunk(df: pd.DataFrame, resolved: Mapping[str, Any], first_line: int | np.ndarray,
                 unused: Sequence[Any] = ()) -> _Chunk:
    """A chunk from a frame of source columns (CSV, Parquet, in-memory); missing values become None.

    ``first_line``: the line (row number) of the first row, or the line of every row. ``unused``:
    columns kept per record in ``extra``.
    """
    df = df.reset_index(drop=True)
    fields = {f: (np.full(len(df), None, dtype=object) if col is None
                  else df[col].to_numpy(dtype=object, na_value=None)) for f, col in resolved.items()}
    lines = (np.asarray(first_line, dtype=np.int64) if isinstance(first_line, np.ndarray)
             else np.arange(first_line, first_line + len(df), dtype=np.int64))
    extra = None
    cols = [c for c in unused if c in df.columns]
    if cols:
        extra = _objects((_extra_json(r) for r in df[cols].astype(object).to_dict("records")), len(df))
    return _Chunk(fields, lines, df, [], len(df), extra)


def _parse_json_line(raw: bytes) -> dict:
    """The JSON object on one line; raises :class:`_Invalid` with the reason otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid("not valid UTF-8") from None
    try:
        obj = json.loads(text[1:] if text.startswith("\ufeff") else text)
    except (ValueError, RecursionError) as exc:
        raise _Invalid(f"unparsable JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise _Invalid(f"JSON value is not an object but {type(obj).__name__}")
    return obj


def _field_getter(keys: Iterable[str], mapping: Mapping[str, str]) -> Callable[[dict], tuple]:
    """Values of the review fields from a JSON object with these keys (its layout), in field order,
    then the JSON text of its unused, non-personal keys (None when there are none)."""
    keys = list(keys)
    picked = tuple(_resolve(keys, mapping, REVIEW_ALIASES).values())  # None (never a JSON key) = absent
    consumed = _consumed(keys, mapping)
    extra = tuple(k for k in keys if k not in consumed and not is_personal_field(k))
    if not extra:
        return lambda obj: (*map(obj.get, picked), None)
    return lambda obj: (*map(obj.get, picked), _extra_json({k: obj[k] for k in extra}))


def _read_jsonl(path: Path, mapping: Mapping[str, str], chunk_size: int, progress: dict) -> Iterator[_Chunk]:
    """JSON lines in chunks; the first chunk holds at least the first 1000 objects (for the key check)."""
    getters: dict[tuple, Callable[[dict], tuple]] = {}  # per layout (tuple of keys)
    sample: set[str] = set()
    n_sampled, checked = 0, False
    rows: list[tuple] = []
    raws: list[bytes] = []
    lines: list[int] = []
    rejected: list[tuple[int, str, str]] = []
    n_read = 0
    report: list[ColumnReport] = []

    def chunk() -> _Chunk:
        columns = list(zip(*rows)) or [()] * (len(REVIEW_ALIASES) + 1)
        fields = {f: _objects(c, len(rows)) for f, c in zip(REVIEW_ALIASES, columns)}
        c = _Chunk(fields, np.asarray(lines, dtype=np.int64), raws, rejected, n_read, _objects(columns[-1], len(rows)),
                   report.pop() if report else None)
        return c

    with _open_binary(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            progress["line"] = lineno
            if raw.isspace():
                continue
            n_read += 1
            try:
                obj = _parse_json_line(raw)
            except _Invalid as exc:
                rejected.append((lineno, str(exc), raw.decode("utf-8", "backslashreplace").rstrip("\r\n")))
            else:
                layout = tuple(obj)
                get = getters.get(layout)
                if get is None:
                    if len(getters) > 10_000:
                        getters.clear()
                    get = getters[layout] = _field_getter(layout, mapping)
                rows.append(get(obj))
                raws.append(raw)
                lines.append(lineno)
                if n_sampled < _SCHEMA_SAMPLE:
                    sample.update(layout)
                    n_sampled += 1
            if n_read >= chunk_size and (checked or n_sampled >= _SCHEMA_SAMPLE):
                if not checked:
                    report.append(_check_keys(sample, n_sampled, mapping, path))
                    checked = True
                yield chunk()
                rows, raws, lines, rejected, n_read = [], [], [], [], 0
    if n_sampled and not checked:
        report.append(_check_keys(sample, n_sampled, mapping, path))
    if n_read:
        yield chunk()


def _check_keys(keys: set[str], n_objects: int, mapping: Mapping[str, str], path: Path) -> ColumnReport:
    """The file-level check of JSON keys (see :func:`_check_schema`); returns the column report."""
    found = sorted(keys)
    resolved = _resolve(found, mapping, REVIEW_ALIASES)
    _check_schema(resolved, found, mapping, REVIEW_ALIASES, _REVIEW_REQUIRED,
                  f"{path} (keys of the first {n_objects} JSON objects)")
    return _column_report(found, resolved, mapping, path.name)


def _csv_source(path: Path, chunk_size: int) -> tuple[list[str], Iterator[tuple[pd.DataFrame, np.ndarray]]]:
    """Header and chunks of a CSV/TSV file as strings (IDs such as "007" or "NA" stay as written),
    each with the file line where each row starts (the header is line 1); rows without any
    value (blank lines) are dropped from the chunks but counted in the line numbers."""
    with _open_binary(path) as fh:
        raw_header = fh.readline()
        gz = isinstance(fh, gzip.GzipFile)
    try:
        header = raw_header.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: line 1 (the header) is not valid UTF-8 at byte {exc.start}") from None
    if not header.strip():
        return [], iter(())
    tsv = ".tsv" in [s.lower() for s in path.suffixes]
    opts = dict(sep="\t" if tsv else max((",", "\t", ";"), key=header.count), dtype=object,
                keep_default_na=False, index_col=False, encoding="utf-8-sig", encoding_errors="surrogateescape",
                compression="gzip" if gz else None, skip_blank_lines=False)

    def chunks() -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
        line = 1  # the header's line
        with pd.read_csv(path, chunksize=chunk_size, **opts) as reader:
            while True:
                try:
                    with warnings.catch_warnings():  # a row with extra fields would otherwise be cut silently
                        warnings.simplefilter("error", pd.errors.ParserWarning)
                        df = next(reader)
                except StopIteration:
                    return
                except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
                    what = ("a row has more fields than the header" if "fields" in str(exc)
                            else f"after line {line}")
                    raise InputError(f"{path}: malformed CSV ({what}): {exc}") from None
                breaks = np.zeros(len(df), dtype=np.int64)  # line breaks inside quoted fields
                blank = np.ones(len(df), dtype=bool)
                for col in df.columns:
                    values = df[col].to_numpy(dtype=object)
                    breaks += np.fromiter((v.count("\n") if v.__class__ is str else 0 for v in values), np.int64, len(df))
                    blank &= np.fromiter((v == "" or v is None for v in values), bool, len(df))
                starts = line + 1 + np.arange(len(df), dtype=np.int64) + np.concatenate([[0], np.cumsum(breaks)[:-1]])
                line += len(df) + int(breaks.sum())
                yield df.loc[~blank].reset_index(drop=True), starts[~blank]

    try:
        columns = list(pd.read_csv(path, nrows=0, **opts).columns)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: malformed CSV header (line 1): {exc}") from None
    return columns, chunks()


def _parquet_source(path: Path, chunk_size: int) -> tuple[list[str], Iterator[tuple[pd.DataFrame, None]]]:
    """Columns and record batches of a Parquet file (personal columns are never read)."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    found = list(pf.schema_arrow.names)
    batches = pf.iter_batches(batch_size=chunk_size, columns=[c for c in found if not is_personal_field(c)])
    return found, ((b.to_pandas(), None) for b in batches)


def _read_table_chunks(path: Path, mapping: Mapping[str, str], chunk_size: int, progress: dict,
                       source: Callable[[Path, int], tuple[list[str], Iterator[tuple[pd.DataFrame, Any]]]],
                       ) -> Iterator[_Chunk]:
    """Chunks of a tabular file; the header is checked before any row is read."""
    found, frames = source(path, chunk_size)
    if not found:  # an empty file
        return
    resolved = _resolve(found, mapping, REVIEW_ALIASES)
    _check_schema(resolved, found, mapping, REVIEW_ALIASES, _REVIEW_REQUIRED, path)
    report = _column_report(found, resolved, mapping, path.name)
    unused = report.unused
    first = 1
    for df, lines in frames:
        chunk = _frame_chunk(df, resolved, first if lines is None else lines, unused)
        chunk.columns, report = report, None
        first += len(df)
        progress["line"] = int(chunk.lines.max()) if len(chunk.lines) else progress.get("line", 0)
        yield chunk


_READERS = {"jsonl": _read_jsonl, "csv": partial(_read_table_chunks, source=_csv_source),
            "parquet": partial(_read_table_chunks, source=_parquet_source)}


# --- value checks (each raises _Invalid with the quarantine reason) -------------------------------------
def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:80] + "…"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_unicode(text: str, name: str) -> str:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8, or bad \\u escapes
            raise _Invalid(f"{name} is not valid UTF-8") from None
    return text


def _parse_id(value: Any, name: str) -> str:
    """An id exactly as given (``" a "`` stays ``" a "``, ``"007"`` stays ``"007"``); blank is missing,
    control or invisible characters (NUL, zero-width spaces, ...) make it invalid."""
    if isinstance(value, str):
        text = value
    elif _is_number(value) and math.isfinite(value) and float(value).is_integer():
        text = str(int(value))
    elif value is None:
        text = ""
    else:
        raise _Invalid(f"{name} is not a string or integer: {_show(value)}")
    if not text.strip():
        raise _Invalid(f"missing {name}")
    if _CONTROL.search(text):
        raise _Invalid(f"{name} contains control or invisible characters: {_show(text)}")
    return _check_unicode(text, name)


def _parse_review_id(value: Any) -> str | None:
    return None if _blank(value) else _parse_id(value, "review_id")


def _parse_text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Invalid(f"{name} is not a string")
    if len(value) > MAX_REVIEW_CHARS:
        raise _Invalid(f"{name} too long: {len(value):,} characters (at most {MAX_REVIEW_CHARS:,} are stored)")
    return _check_unicode(value, name)


def _parse_rating(value: Any) -> float:
    if _blank(value):
        return math.nan
    try:
        if not (isinstance(value, str) or _is_number(value)):
            raise TypeError
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise _Invalid(f"rating not a number: {_show(value)}") from None
    if not math.isfinite(x):
        raise _Invalid("rating not finite")
    lo, hi = RATING_RANGE
    if not lo <= x <= hi:
        raise _Invalid(f"rating out of range {lo:g}..{hi:g}: {x:g}")
    return x


def _epoch_ns(value: int | float) -> int:
    """Epoch seconds (milliseconds above 1e11) as nanoseconds."""
    unit = 10**6 if abs(value) > 1e11 else 10**9
    return int(value) * unit if float(value).is_integer() else round(float(value) * unit)


def _datetime_ns(value: date | np.datetime64) -> int:
    """A date/datetime (naive = UTC) as epoch nanoseconds."""
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        ts = pd.Timestamp(value)
        return (ts.tz_localize("UTC") if ts.tz is None else ts).value
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // timedelta(microseconds=1) * 1000


def _string_ns(text: str) -> int:
    """Epoch seconds/ms, ISO 8601 or Amazon's "MM D, YYYY" as epoch nanoseconds."""
    if _NUMBER.fullmatch(text):
        return _epoch_ns(float(text) if "." in text else int(text))
    try:
        return _datetime_ns(datetime.fromisoformat(text))
    except ValueError:
        return _datetime_ns(datetime.strptime(text, "%m %d, %Y"))


def _parse_timestamp(value: Any, latest_ns: int) -> int:
    """Epoch nanoseconds (``_NAT`` when missing)."""
    if _blank(value):
        return _NAT
    try:
        if isinstance(value, str):
            ns = _string_ns(value.strip())
        elif _is_number(value):
            ns = _epoch_ns(value)
        elif isinstance(value, (date, np.datetime64)):
            ns = _datetime_ns(value)
        else:
            raise TypeError
    except (TypeError, ValueError, OverflowError):
        raise _Invalid(f"timestamp unparsable: {_show(value)}") from None
    if not MIN_TIMESTAMP.value <= ns <= latest_ns:
        try:
            shown = pd.Timestamp(ns, tz="UTC").isoformat()
        except (ValueError, OverflowError):
            shown = _show(value)
        raise _Invalid(f"timestamp out of range: {shown}")
    return ns


def _parse_votes(value: Any) -> int | None:
    raw = value
    if isinstance(value, str) and value.lstrip().startswith("["):  # a 2014 "helpful" pair written to CSV
        with suppress(ValueError):
            value = json.loads(value)
    if isinstance(value, (list, tuple, np.ndarray)):  # Amazon 2014: [helpful, total]
        value = value[0] if len(value) else None
    if _blank(value):
        return None
    try:
        if isinstance(value, str):
            count = int(value.strip().replace(",", ""))  # Amazon 2018: "1,234"
        elif _is_number(value) and float(value).is_integer():
            count = int(value)
        else:
            raise ValueError
    except (ValueError, OverflowError):
        count = -1
    if not 0 <= count <= _MAX_VOTES:  # also keeps the value inside Int64
        raise _Invalid(f"helpful_votes not a count: {_show(raw)}")
    return count


def _parse_verified(value: Any) -> bool | None:
    if _blank(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if _is_number(value) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _BOOLS:
        return _BOOLS[value.strip().lower()]
    raise _Invalid(f"verified not a boolean: {_show(value)}")


def _parse_category(value: Any) -> str | None:
    if isinstance(value, (list, tuple, np.ndarray)):  # Amazon metadata: a path, or a list of paths
        if len(value) and isinstance(value[0], (list, tuple, np.ndarray)):
            value = value[0]
        value = " > ".join(map(str, value))
    if _blank(value):
        return None
    if not isinstance(value, str):
        raise _Invalid(f"category is not a string: {_show(value)}")
    return _check_unicode(value.strip(), "category")


def _parse_price(value: Any) -> float:
    if _blank(value):
        return math.nan
    text = value.strip().lstrip("$€£").strip() if isinstance(value, str) else value
    if isinstance(text, str) and _THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    try:
        if not (isinstance(text, str) or _is_number(text)):
            raise TypeError
        price = float(text)
    except (TypeError, ValueError, OverflowError):
        price = math.nan
    if not (math.isfinite(price) and price >= 0):
        raise _Invalid(f"price unparsable: {_show(value)}")
    return price


def _apply(parse: Callable[[Any], Any], values: Sequence[Any], memo: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Parse each value (with ``memo``, once per distinct value).

    Returns the parsed values and the reasons (None where the value is valid).
    """
    if memo:
        index: dict[Any, int] = {}
        uniques: list[Any] = []
        codes = []
        for v in values:
            try:
                key = (v.__class__, tuple(v) if v.__class__ is list else v)
                code = index.get(key)
            except TypeError:  # unhashable: a nested list, an array
                key = code = None
            if code is None:
                code = len(uniques)
                uniques.append(v)
                if key is not None:
                    index[key] = code
            codes.append(code)
        out, why = _apply(parse, uniques)
        at = np.asarray(codes, dtype=np.intp)
        return out[at], why[at]
    parsed, reasons = [], {}
    for i, v in enumerate(values):
        try:
            parsed.append(parse(v))
        except _Invalid as exc:
            parsed.append(None)
            reasons[i] = str(exc)
    why = np.full(len(parsed), None, dtype=object)
    why[list(reasons)] = list(reasons.values())
    return _objects(parsed, len(parsed)), why


def _parse_timestamps(values: np.ndarray, latest_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_apply` of :func:`_parse_timestamp`, vectorized for the common all-integer column in range."""
    if len(values) and all(v.__class__ is int for v in values):
        try:
            x = values.astype(np.int64)
        except OverflowError:
            x = None
        if x is not None:
            ms = np.abs(x) > 1e11
            secs = np.where(ms, x / 1e3, x)
            if ((secs >= MIN_TIMESTAMP.value / 1e9) & (secs <= latest_ns / 1e9)).all():
                return np.where(ms, x * 10**6, x * 10**9), np.full(len(x), None, dtype=object)
    return _apply(partial(_parse_timestamp, latest_ns=latest_ns), values, memo=True)


def _has_text(text: str | None) -> bool:
    return bool(text) and not text.isspace()


# --- validation ------------------------------------------------------------------------------------------
class _SeenDigests:
    """A set of 16-byte digests (sorted array) with the line where each was first seen."""

    def __init__(self) -> None:
        self.keys = np.empty(0, dtype="S16")
        self.lines = np.empty(0, dtype=np.int64)

    def earlier(self, digests: np.ndarray, lines: np.ndarray) -> np.ndarray:
        """Line of an earlier occurrence of each digest (0 for a first one); remembers the new ones."""
        uniq, first, inverse = np.unique(digests, return_index=True, return_inverse=True)
        pos = np.searchsorted(self.keys, uniq)
        known = np.zeros(len(uniq), dtype=np.int64)
        if len(self.keys):
            at = np.minimum(pos, len(self.keys) - 1)
            hit = self.keys[at] == uniq
            known[hit] = self.lines[at[hit]]
        out = np.where(known > 0, known, lines[first])[inverse]
        out[(known[inverse] == 0) & (first[inverse] == np.arange(len(digests)))] = 0
        new = known == 0
        self.keys = np.insert(self.keys, pos[new], uniq[new])
        self.lines = np.insert(self.lines, pos[new], lines[first[new]])
        return out


@dataclass
class _DedupState:
    """What one source has seen so far, so that duplicates are found across chunks."""

    exact: _SeenDigests = field(default_factory=_SeenDigests)
    variant: _SeenDigests = field(default_factory=_SeenDigests)
    review_ids: _SeenDigests = field(default_factory=_SeenDigests)


def _hashes(values: np.ndarray) -> np.ndarray:
    """Two independent 64-bit hashes of each value, shape (2, n)."""
    return np.stack([pd.util.hash_array(values, hash_key=key, categorize=False) for key in _HASH_KEYS])


def _digest(hashes: Sequence[np.ndarray]) -> np.ndarray:
    """16-byte digests of rows, from the :func:`_hashes` of their columns (order matters)."""
    h = np.zeros_like(hashes[0])
    for column in hashes:
        h = (h * np.uint64(0x100000001B3)) ^ column
    return np.ascontiguousarray(h.T).view("S16").ravel()


def _iso(ns: np.ndarray) -> np.ndarray:
    """ISO 8601 UTC strings of epoch nanoseconds ("" for NaT); fractions only where present."""
    dt = ns.view("M8[ns]")
    out = np.datetime_as_string(dt, unit="s", timezone="UTC").astype(object)
    frac = (ns % 10**9 != 0) & (ns != _NAT)
    out[frac] = np.datetime_as_string(dt[frac], unit="ns", timezone="UTC")
    out[ns == _NAT] = ""
    return out


def _stable_ids(user: np.ndarray, item: np.ndarray, iso: np.ndarray, title: np.ndarray, text: np.ndarray,
                ) -> np.ndarray:
    """ "r" + the first 16 hex digits of sha1(user, item, time, title, text joined by U+001F)."""
    return _objects(("r" + hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]
                     for parts in zip(user, item, iso, title, text)), len(user))


def _drop_personal_pairs(text: str) -> str:
    """Raw JSON text without its personal ``"key": value`` pairs (names, e-mail addresses, ...)."""
    return _JSON_PAIR.sub(lambda m: "" if is_personal_field(m.group(1)) else m.group(0), text)


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _MAX_VALUE:
        return f"{value[:_MAX_VALUE]}…[truncated {len(value) - _MAX_VALUE} chars]"
    return value


def quarantine_record(record: dict | str) -> str:
    """A raw record as text for the quarantine: personal fields removed, e-mail addresses, URLs and
    phone numbers scrubbed (:func:`sentiment.text.scrub_pii`), each value cut to 2,000 characters
    (so that the ids of a huge record survive) and the whole to 10,000."""
    if isinstance(record, dict):
        record = json.dumps({k: _cut(v) for k, v in record.items() if not is_personal_field(k)},
                            ensure_ascii=False, default=str)
    record = scrub_pii(_drop_personal_pairs(record).encode("utf-8", "backslashreplace").decode("utf-8"))
    extra = len(record) - _MAX_RECORD
    return record if extra <= 0 else f"{record[:_MAX_RECORD]}…[truncated {extra} chars]"


_record_text = quarantine_record


def _records(originals: Sequence[bytes] | pd.DataFrame, positions: np.ndarray) -> list[str]:
    """The quarantine text of some records of a chunk."""
    rows = (originals.iloc[positions].to_dict("records") if isinstance(originals, pd.DataFrame)
            else [_parse_json_line(originals[i]) for i in positions])
    return [_record_text(r) for r in rows]


def _raw_user_ids(values: np.ndarray) -> list[str | None]:
    """The user id of quarantined records as given (None when absent or not an id-like value)."""
    out: list[str | None] = []
    for v in values:
        if isinstance(v, str):
            out.append(v if v.strip() else None)
        elif _is_number(v) and math.isfinite(v) and float(v).is_integer():
            out.append(str(int(v)))
        else:
            out.append(None)
    return out


def _user_id_in_text(raw: str, keys: Sequence[str]) -> str | None:
    """The user id in a line too broken to parse: the string value of the first user-id key found."""
    for key in keys:
        m = re.search(rf'"{re.escape(key)}"\s*:\s*"((?:[^"\\]|\\.)*)"', raw, flags=re.IGNORECASE)
        if m:
            try:
                return json.loads(f'"{m.group(1)}"')
            except ValueError:
                return m.group(1)
    return None


def _quarantine(source: str, lines: Iterable[int], users: Iterable[str | None], fields: Iterable[str],
                reasons: Iterable[str], records: Iterable[str]) -> pd.DataFrame:
    """Quarantine rows; the reasons are scrubbed like the records (they may quote a raw value)."""
    return pd.DataFrame({"source": source, "line": pd.array(list(lines), dtype="Int64"),
                         "user_id": pd.array(list(users), dtype="string"), "field": list(fields),
                         "reason": [scrub_pii(r) for r in reasons], "record": list(records)})


def _checks(chunk: _Chunk) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Parse every field; returns parsed values, and the first failing field and reason per record."""
    parsers = {  # in the order of the checks
        "user_id": partial(_apply, partial(_parse_id, name="user_id")),
        "item_id": partial(_apply, partial(_parse_id, name="item_id")),
        "rating": partial(_apply, _parse_rating, memo=True),
        "timestamp": partial(_parse_timestamps, latest_ns=max_timestamp().value),
        "title": partial(_apply, partial(_parse_text, name="title")),
        "text": partial(_apply, partial(_parse_text, name="text")),
        "helpful_votes": partial(_apply, _parse_votes, memo=True),
        "verified": partial(_apply, _parse_verified, memo=True),
        "review_id": partial(_apply, _parse_review_id),
    }
    parsed, failures = {}, []
    n = len(chunk.lines)
    for name, parse_column in parsers.items():
        parsed[name], why = parse_column(chunk.fields[name])
        failures.append((name, why))
        if name == "text":
            empty = ~(np.fromiter(map(_has_text, parsed["title"]), bool, n) |
                      np.fromiter(map(_has_text, parsed["text"]), bool, n))
            failures.append(("text", np.where(empty, "empty text (no title and no body)", None)))
    reason, failed = np.full(n, None, dtype=object), np.full(n, "", dtype=object)
    for name, why in reversed(failures):  # the first failing check wins
        bad = why != None  # noqa: E711 (elementwise)
        reason[bad], failed[bad] = why[bad], name
    return parsed, failed, reason


def _validate(chunk: _Chunk, source: str, state: _DedupState) -> LoadResult:
    """Check, deduplicate and type one chunk; everything rejected goes to the quarantine."""
    parsed, failed, reason = _checks(chunk)
    good = reason == None  # noqa: E711 (elementwise)
    pos = np.flatnonzero(good)
    lines = chunk.lines[pos]
    v = {name: values[pos] for name, values in parsed.items()}  # the valid records
    v["rating"], v["timestamp"] = v["rating"].astype(np.float64), v["timestamp"].astype(np.int64)
    need = v["review_id"] == None  # noqa: E711 (elementwise)
    if need.any():
        v["review_id"][need] = _stable_ids(v["user_id"][need], v["item_id"][need], _iso(v["timestamp"][need]),
                                           v["title"][need], v["text"][need])

    # duplicates: exact copies, then the 2018 dumps' copies under other product variants
    dup = np.zeros(len(pos), dtype=np.int64)
    if len(pos):
        h = {c: _hashes(v[c]) for c in ("user_id", "item_id", "rating", "title", "text", "timestamp")}
        dup = state.exact.earlier(_digest([h[c] for c in ("user_id", "item_id", "rating", "title", "text",
                                                          "timestamp")]), lines)
        variant = (dup == 0) & (v["timestamp"] != _NAT) & np.fromiter(map(_has_text, v["text"]), bool, len(pos))
        if variant.any():
            dup[variant] = state.variant.earlier(
                _digest([h[c][:, variant] for c in ("user_id", "timestamp", "title", "text")]), lines[variant])
    same_id = np.zeros(len(pos), dtype=np.int64)
    keep = dup == 0
    if keep.any():
        same_id[keep] = state.review_ids.earlier(_digest([_hashes(v["review_id"][keep])]), lines[keep])
    is_dup, is_same_id = dup > 0, same_id > 0
    kept = ~(is_dup | is_same_id)
    reviews = pd.DataFrame({
        **{c: pd.array(v[c][kept], dtype="string") for c in ("review_id", "user_id", "item_id", "title", "text")},
        "rating": v["rating"][kept],
        "timestamp": pd.Series(v["timestamp"][kept].view("M8[ns]")).dt.tz_localize("UTC"),
        "helpful_votes": pd.array(v["helpful_votes"][kept], dtype="Int64"),
        "verified": pd.array(v["verified"][kept], dtype="boolean"),
        "source": source,
        "line": lines[kept],
        "extra": pd.array(chunk.extra[pos][kept] if chunk.extra is not None else [None] * int(kept.sum()), dtype="string"),
    })

    bad = np.flatnonzero(~good)
    raw_users = chunk.fields["user_id"]
    user_keys = list(dict.fromkeys(([chunk.columns.used["user_id"]] if chunk.columns and "user_id" in chunk.columns.used
                                    else []) + list(REVIEW_ALIASES["user_id"])))
    parts = [
        _quarantine(source, (r[0] for r in chunk.rejected), (_user_id_in_text(r[2], user_keys) for r in chunk.rejected),
                    [""] * len(chunk.rejected), (r[1] for r in chunk.rejected), (_record_text(r[2]) for r in chunk.rejected)),
        _quarantine(source, chunk.lines[bad], _raw_user_ids(raw_users[bad]), failed[bad], reason[bad],
                    _records(chunk.originals, bad)),
        _quarantine(source, lines[is_dup], v["user_id"][is_dup], [""] * int(is_dup.sum()),
                    (f"duplicate of line {n}" for n in dup[is_dup]), _records(chunk.originals, pos[is_dup])),
        _quarantine(source, lines[is_same_id], v["user_id"][is_same_id], ["review_id"] * int(is_same_id.sum()),
                    (f"duplicate review_id (first on line {n})" for n in same_id[is_same_id]),
                    _records(chunk.originals, pos[is_same_id])),
    ]
    parts = [p for p in parts if len(p)]
    quarantine = (pd.concat(parts, ignore_index=True).sort_values("line", kind="stable") if parts
                  else empty_frame(QUARANTINE_COLUMNS))
    return LoadResult(conform(reviews, REVIEW_COLUMNS),
                      conform(quarantine, QUARANTINE_COLUMNS), chunk.n_read, int(is_dup.sum()), source, chunk.columns)


def _combine(parts: Sequence[LoadResult], source: str) -> LoadResult:
    """One result from the results of consecutive chunks."""
    def cat(frames: list[pd.DataFrame], columns: dict[str, str]) -> pd.DataFrame:
        frames = [f for f in frames if len(f)]
        return conform(pd.concat(frames, ignore_index=True), columns) if frames else empty_frame(columns)

    return LoadResult(cat([p.reviews for p in parts], REVIEW_COLUMNS),
                      cat([p.quarantine for p in parts], QUARANTINE_COLUMNS),
                      sum(p.n_read for p in parts), sum(p.n_duplicates for p in parts), source,
                      next((p.columns for p in parts if p.columns is not None), None))


def _log_summary(source: str, n_read: int, n_reviews: int, n_quarantined: int, n_duplicates: int) -> None:
    log.info("%s: %d records read, %d reviews, %d quarantined (%d duplicates collapsed)", source, n_read,
             n_reviews, n_quarantined, n_duplicates)


# --- public API ------------------------------------------------------------------------------------------
def iter_review_chunks(path: str | Path, mapping: Mapping[str, str] | None = None, fmt: str | None = None,
                       chunk_size: int = 100_000) -> Iterator[LoadResult]:
    """Load a review file chunk by chunk, in bounded memory.

    Parameters
    ----------
    path : str or Path
        JSON lines (plain or gzip), CSV/TSV (plain or gzip) or Parquet file.
    mapping : mapping of str to str, optional
        Canonical field (or short name) -> source column/key; wins over the built-in aliases.
    fmt : {"jsonl", "csv", "parquet"}, optional
        The format; inferred from the suffix when omitted.
    chunk_size : int
        Records per chunk (the first JSON chunk holds at least 1000 objects, for the key check).

    Yields
    ------
    LoadResult
        One per chunk; duplicates are found across chunks, and each chunk keeps
        ``n_read == len(reviews) + len(quarantine)``.

    Raises
    ------
    SchemaError
        When the file has no column (no key in its first 1000 JSON objects) for user_id, item_id or
        text/title, or a mapped column is absent; raised before any chunk is yielded.
    EmptyFileError
        When the file holds no record at all (empty, blank lines only, or a CSV header without rows).
    InputError
        For a missing file, an unknown format, a bad mapping, a CSV row with more fields than the
        header, or a file that cannot be read to its end (truncated gzip, corrupt Parquet): the
        message names the file and the line reached.
    """
    path = Path(path)
    fmt = _format(path, fmt)
    mapping = _review_mapping(mapping)
    if chunk_size < 1:
        raise InputError(f"chunk_size must be positive, got {chunk_size}")
    if not path.is_file():
        raise InputError(f"review file {path} does not exist" if not path.exists() else f"{path} is not a file")
    return _iter_chunks(path, mapping, fmt, chunk_size)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of small acyclic objects are made (3x faster)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _iter_chunks(path: Path, mapping: dict[str, str], fmt: str, chunk_size: int) -> Iterator[LoadResult]:
    state, counts = _DedupState(), np.zeros(4, dtype=np.int64)
    progress = {"line": 0}  # the last line the reader reached, for the error of a file cut short
    chunks = _READERS[fmt](path, mapping, chunk_size, progress)
    where = "row" if fmt == "parquet" else "line"
    while True:
        with _gc_paused():  # only while this generator works, not while the caller holds a chunk
            try:
                chunk = next(chunks, None)
            except InputError:
                raise
            except FileNotFoundError:
                raise InputError(f"review file {path} does not exist") from None
            except (OSError, EOFError, zlib.error, pa.ArrowException, ValueError) as exc:  # a corrupt gzip or Parquet
                raise InputError(f"{path}: unreadable or truncated {fmt} file (after {where} {progress['line']:,}): "
                                 f"{type(exc).__name__}: {exc}") from None
            if chunk is None:
                break
            result = _validate(chunk, path.name, state)
        counts += (result.n_read, len(result.reviews), len(result.quarantine), result.n_duplicates)
        yield result
    if counts[0] == 0:
        size = path.stat().st_size
        what = ("is empty (0 bytes)" if size == 0 else "has a header line but no data rows" if fmt == "csv"
                else "has no rows" if fmt == "parquet" else "has only blank lines")
        raise EmptyFileError(f"review file {path} {what}: nothing to ingest")
    _log_summary(path.name, *map(int, counts))


def load_reviews(path: str | Path, mapping: Mapping[str, str] | None = None, fmt: str | None = None) -> LoadResult:
    """Load and validate a whole review file (see :func:`iter_review_chunks` for the parameters).

    Returns
    -------
    LoadResult
        Valid reviews, quarantined records and counts for the file.
    """
    path = Path(path)
    return _combine(list(iter_review_chunks(path, mapping, fmt)), path.name)


def load_reviews_frame(df: pd.DataFrame, source: str, mapping: Mapping[str, str] | None = None) -> LoadResult:
    """Validate an in-memory frame of reviews exactly as a file would be.

    Parameters
    ----------
    df : pandas.DataFrame
        Source columns (canonical names, aliases or mapped); missing values may be NaN, None or NA.
    source : str
        Name stored in the ``source`` column; ``line`` is the row position + 1.
    mapping : mapping of str to str, optional
        Canonical field -> column of ``df``.

    Returns
    -------
    LoadResult

    Raises
    ------
    SchemaError
        When ``df`` has no column for a required field.
    """
    mapping = _review_mapping(mapping)
    found = list(df.columns)
    resolved = _resolve(found, mapping, REVIEW_ALIASES)
    _check_schema(resolved, found, mapping, REVIEW_ALIASES, _REVIEW_REQUIRED, source)
    with _gc_paused():
        chunk = _frame_chunk(df, resolved, 1, [c for c in df.columns if c not in _consumed(found, mapping)
                                               and not is_personal_field(c)])
        chunk.columns = _column_report(found, resolved, mapping, source)
        result = _validate(chunk, source, _DedupState())
    _log_summary(source, result.n_read, len(result.reviews), len(result.quarantine), result.n_duplicates)
    return result


def _read_whole(path: Path) -> pd.DataFrame:
    """A whole (small) file as one frame of its source columns; every JSON line must be an object."""
    fmt = _format(path, None)
    if fmt != "jsonl":
        found, frames = (_csv_source if fmt == "csv" else _parquet_source)(path, 1_000_000)
        parts = [df for df, _ in frames] if found else []
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=found)
    objs = []
    with _open_binary(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            if raw.strip():
                try:
                    objs.append(_parse_json_line(raw))
                except _Invalid as exc:
                    raise InputError(f"{path} line {lineno}: {exc}") from None
    return pd.DataFrame(objs)


def load_items(path: str | Path, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Load an item table (CSV/TSV, Parquet or JSON lines; plain or gzip).

    Parameters
    ----------
    path : str or Path
        The file: ``item_id`` (required), ``title``, ``category``, ``price`` or their aliases.
    mapping : mapping of str to str, optional
        Item field -> source column; fields that are not item fields are ignored.

    Returns
    -------
    pandas.DataFrame
        Conformed to ``ITEM_COLUMNS``; a category list (Amazon metadata) becomes "A > B > C".

    Raises
    ------
    SchemaError
        When there is no item_id column (or a mapped column is absent).
    ValueError
        For a bad JSON line, or a row with a missing or repeated item_id or an unparsable price:
        the message names the row and the value.
    """
    path = Path(path)
    mapping = {_canonical(k): str(c) for k, c in (mapping or {}).items() if _canonical(k) in ITEM_ALIASES}
    if not path.is_file():
        raise InputError(f"item file {path} does not exist" if not path.exists() else f"{path} is not a file")
    df = _read_whole(path)
    if df.empty:
        raise EmptyFileError(f"item file {path} " + ("has a header but no rows" if len(df.columns) else "is empty")
                             + ": give an item table with at least one item, or leave out --items")
    found = list(df.columns)
    resolved = _resolve(found, mapping, ITEM_ALIASES)
    _check_schema(resolved, found, mapping, ITEM_ALIASES, [("item_id",)], path)
    raw = _frame_chunk(df, resolved, 1).fields
    parsers = {"item_id": partial(_parse_id, name="item_id"), "title": partial(_parse_text, name="title"),
               "category": _parse_category, "price": _parse_price}
    items = {}
    for name, parse in parsers.items():
        items[name], why = _apply(parse, raw[name], memo=True)
        bad = np.flatnonzero(why != None)  # noqa: E711 (elementwise)
        if len(bad):
            raise InputError(f"{path} row {bad[0] + 1}: {why[bad[0]]}")
    items = pd.DataFrame(items)
    repeated = np.flatnonzero(items["item_id"].duplicated(keep=False))
    if len(repeated):
        first = items["item_id"].iloc[repeated[0]]
        rows = np.flatnonzero(items["item_id"] == first)[:2] + 1
        raise InputError(f"{path}: item_id {first!r} appears more than once (rows {rows[0]} and {rows[1]})")
    log.info("%s: %d items", path.name, len(items))
    return conform(items, ITEM_COLUMNS)
