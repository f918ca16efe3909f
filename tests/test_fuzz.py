"""Property-based fuzzing (hypothesis) of the loaders, the ingest cleaning and the scorers.

Invariant of every review loader: each input record is either ingested or quarantined with a
line number and a reason (``n_read == len(reviews) + len(quarantine)``, and the lines add up);
stored reviews satisfy the contract; a file-level failure is a ``SchemaError``/``ValueError``
whose message names the file (and the line, for a malformed CSV row); nothing else escapes.

The default run is small (``EMOREC_FUZZ_EXAMPLES`` examples per property, default 40) so the
test suite stays fast. The full fuzz run::

    EMOREC_FUZZ_EXAMPLES=10000 python -m pytest tests/test_fuzz.py -q -p no:cacheprovider
"""

from __future__ import annotations

import atexit
import gzip
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emorec.jobs.contract import MIN_TIMESTAMP, REVIEW_COLUMNS, max_timestamp
from emorec.jobs.loaders import REVIEW_ALIASES, EmptyFileError, SchemaError, iter_review_chunks, load_reviews_frame
from emorec.jobs.pipeline import clean_reviews
from emorec.sentiment.text import prepare_for_storage, scrub_pii

EXAMPLES = int(os.environ.get("EMOREC_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                                       HealthCheck.function_scoped_fixture])
TMP = Path(tempfile.mkdtemp(prefix="emorec-fuzz-"))
atexit.register(shutil.rmtree, TMP, True)

# --- strategies -----------------------------------------------------------------------------------------
nasty_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", " ", "a,b", 'say "hi"', "line\nbreak", "tab\there", "😡👍🏽", "\ufeffbom", "\x00nul", "\u202eRTL",
                     "=cmd|' /C calc'!A0", "\\", "null", "NaN", "-1", "0007", "\ud800" * 0 + "é", "1e400"]),
    st.text(min_size=2000, max_size=3000, alphabet="ab ,\"\n"),  # a long field
)
ids = st.one_of(nasty_text, st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=True),
                st.none(), st.booleans())
ratings = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10), st.sampled_from(
    ["5", "4.5", "five", "", " 3 ", "NaN", "inf", "-inf", "1e309"]), st.none(), st.lists(st.integers(), max_size=2))
timestamps = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["0", "-62135596800", "253402300799", "99999999999999", "1400000000", "2014-05-06",
                     "2014-05-06T10:00:00+02:00", "0001-01-01", "9999-12-31", "3000-01-01", "1969-12-31",
                     "05 6, 2014", "13 45, 2014", "yesterday", "", "1e20"]),
    st.none(),
)
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                           max_leaves=10)
keys = {f: st.sampled_from(names) for f, names in REVIEW_ALIASES.items()}


@st.composite
def records(draw) -> dict:
    """A review-like JSON object: the usual keys (some missing), wild values, extra keys."""
    obj = {}
    for field, values in (("user_id", ids), ("item_id", ids), ("rating", ratings), ("timestamp", timestamps),
                          ("title", nasty_text), ("text", st.one_of(nasty_text, json_values)),
                          ("review_id", ids), ("helpful_votes", json_values), ("verified", json_values)):
        if draw(st.integers(0, 9)) < 8:  # most fields present
            obj[draw(keys[field])] = draw(values)
    if draw(st.booleans()):
        obj["reviewerName"] = draw(nasty_text)
    obj.update(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=2)))
    return obj


def deep_json(depth: int) -> str:
    return '{"user_id": "u", "item_id": "i", "text": ' + "[" * depth + "]" * depth + "}"


json_lines = st.one_of(
    records().map(lambda r: json.dumps(r, allow_nan=True, ensure_ascii=False)),
    st.binary(max_size=80).map(lambda b: b.decode("latin-1")),  # bytes that are not JSON (or not UTF-8, see below)
    st.sampled_from(["[1, 2]", '"just a string"', "null", "{", '{"user_id": "u"', deep_json(100_000), deep_json(50),
                     '{"user_id": "u", "item_id": "i", "text": "' + "x" * 200_000 + '"}']),
)


# --- invariants -----------------------------------------------------------------------------------------
def check_result(chunks, path: Path, expect_read: int | None = None) -> None:
    n_read = n_rev = n_q = 0
    for res in chunks:
        assert res.n_read == len(res.reviews) + len(res.quarantine)
        assert list(res.reviews.columns) == list(REVIEW_COLUMNS)
        r, q = res.reviews, res.quarantine
        assert r["user_id"].str.strip().str.len().gt(0).all() and r["item_id"].str.strip().str.len().gt(0).all()
        assert r["review_id"].notna().all()
        ok_rating = r["rating"].isna() | r["rating"].between(1, 5)
        assert ok_rating.all()
        ts = r["timestamp"].dropna()
        assert ((ts >= MIN_TIMESTAMP) & (ts <= max_timestamp())).all()
        assert ((r["title"].fillna("") != "") | (r["text"].fillna("") != "")).all()
        assert q["line"].notna().all() and (q["line"] >= 1).all()
        assert q["reason"].fillna("").str.len().gt(0).all()
        assert not q["record"].fillna("").str.contains("reviewerName").any()
        n_read, n_rev, n_q = n_read + res.n_read, n_rev + len(r), n_q + len(q)
    assert n_read == n_rev + n_q
    if expect_read is not None:
        assert n_read == expect_read


def load_or_clear_error(path: Path, fmt: str | None = None, expect_read: int | None = None) -> None:
    try:
        chunks = list(iter_review_chunks(path, fmt=fmt, chunk_size=7))
    except SchemaError as exc:
        assert str(path) in str(exc)
        return
    except EmptyFileError as exc:  # no record at all: an error naming the file, never a silent empty load
        assert str(path) in str(exc) and expect_read in (None, 0), (exc, expect_read)
        return
    except ValueError as exc:
        msg = str(exc)
        assert str(path) in msg, msg
        assert "line" in msg or "row" in msg, msg
        return
    check_result(chunks, path, expect_read)
    # the ingest stage's cleaning keeps the count: rows with nothing left move to the quarantine
    for res in chunks:
        cleaned = clean_reviews(res)
        assert len(cleaned.reviews) + len(cleaned.quarantine) == res.n_read


# --- properties -----------------------------------------------------------------------------------------
@FUZZ
@given(lines=st.lists(json_lines, max_size=12), gz=st.booleans(), crlf=st.booleans())
def test_json_lines_every_record_is_ingested_or_quarantined(lines, gz, crlf):
    raw = ("\r\n" if crlf else "\n").join(lines).encode("utf-8", "surrogatepass")
    path = TMP / ("f.jsonl.gz" if gz else "f.jsonl")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    expect = sum(1 for line in raw.split(b"\n") if line and not (line + b"\n").isspace())  # lines end at \n only
    load_or_clear_error(path, expect_read=expect)


@FUZZ
@given(data=st.binary(max_size=400), suffix=st.sampled_from([".jsonl", ".csv", ".tsv", ".parquet", ".json.gz"]))
def test_arbitrary_bytes_never_crash(data, suffix):
    path = TMP / f"bytes{suffix}"
    path.write_bytes(data)
    load_or_clear_error(path)


@FUZZ
@given(rows=st.lists(records(), min_size=1, max_size=10), sep=st.sampled_from([",", ";", "\t"]))
def test_csv_every_row_is_ingested_or_quarantined(rows, sep):
    frame = pd.DataFrame([{k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in r.items()} for r in rows])
    path = TMP / ("f.tsv" if sep == "\t" else "f.csv")
    try:
        frame.to_csv(path, index=False, sep=sep)
    except UnicodeEncodeError:
        return  # lone surrogates cannot be written as UTF-8 by pandas; covered by the bytes test
    if frame.columns.empty:
        return
    load_or_clear_error(path)


@FUZZ
@given(rows=st.lists(records(), min_size=1, max_size=10))
def test_frames_with_wrong_types(rows):
    frame = pd.DataFrame(rows)
    try:
        res = load_reviews_frame(frame, "frame.test")
    except SchemaError as exc:
        assert "frame.test" in str(exc)
        return
    check_result([res], Path("frame.test"), expect_read=len(frame))


@FUZZ
@given(text=st.one_of(st.text(max_size=300), nasty_text))
def test_text_cleaning_never_crashes_and_is_stable(text):
    once = prepare_for_storage(text)
    assert isinstance(once, str)
    assert prepare_for_storage(once) == once  # storing twice changes nothing
    assert scrub_pii(once) == once


@pytest.fixture(scope="module")
def lexicon():
    from emorec import sentiment

    return sentiment.get_scorer("lexicon")


@FUZZ
@given(texts=st.lists(st.one_of(st.text(max_size=200), nasty_text), min_size=1, max_size=8))
def test_lexicon_scorer_on_any_text(lexicon, texts):
    out = lexicon.score(texts)
    assert len(out) == len(texts)
    assert set(lexicon.columns) <= set(out.columns)
    v = out["valence"].to_numpy(dtype=np.float64)
    assert np.all(np.isfinite(v)) and np.all(np.abs(v) <= 1 + 1e-9)
    probs = out[["p_negative", "p_neutral", "p_positive"]].to_numpy(dtype=np.float64)
    assert np.all(np.isfinite(probs)) and np.allclose(probs.sum(axis=1), 1, atol=1e-6)


def test_deep_and_huge_json_are_quarantined_with_reason(tmp_path):
    path = tmp_path / "deep.jsonl"
    path.write_text(deep_json(100_000) + "\n" + '{"user_id": "u", "item_id": "i", "text": "' + "x" * 300_000 + '"}\n'
                    + '{"user_id": "u", "item_id": "i", "rating": NaN, "text": "ok"}\n'
                    + '{"user_id": "u", "item_id": "j", "rating": Infinity, "text": "ok"}\n')
    res = next(iter(iter_review_chunks(path)))
    assert res.n_read == 4 and len(res.reviews) + len(res.quarantine) == 4
    q = res.quarantine.set_index("line")
    assert "unparsable JSON" in q.loc[1, "reason"] or "text" in q.loc[1, "reason"]
    assert "rating not finite" in q.loc[3, "reason"] and "rating not finite" in q.loc[4, "reason"]
    assert len(q.loc[1, "record"]) <= 10_100  # a huge record is truncated in the quarantine
    # a review over MAX_REVIEW_CHARS is quarantined with its size; its user id is kept for `forget`
    assert "text too long: 300,000 characters" in q.loc[2, "reason"] and q.loc[2, "user_id"] == "u"
    assert len(q.loc[2, "record"]) <= 10_100 and '"user_id": "u"' in q.loc[2, "record"]
