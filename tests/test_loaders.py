"""Tests for jobs.loaders: every record ends up in reviews or quarantine, with exact reasons."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emorec.jobs.contract import QUARANTINE_COLUMNS, REVIEW_COLUMNS
from emorec.jobs.loaders import (
    EmptyFileError,
    LoadResult,
    SchemaError,
    iter_review_chunks,
    load_items,
    load_reviews,
    load_reviews_frame,
    parse_mapping,
)

REAL_FILE = (Path(__file__).resolve().parents[2]
             / "shared/data/amazon-musical-instruments-2014/reviews_Musical_Instruments_5.json.gz")
T0 = 1393545600  # 2014-02-28


def amazon14(i: int, **over) -> dict:
    rec = {"reviewerID": f"U{i % 20}", "asin": f"I{i % 7}", "reviewerName": "Jane Secret", "helpful": [i % 3, 5],
           "reviewText": f"review number {i} is great", "overall": 5.0, "summary": "ok",
           "unixReviewTime": T0 + i, "reviewTime": "02 28, 2014"}
    rec.update(over)
    return rec


def write_jsonl(path: Path, records: list, gz: bool = False) -> Path:
    lines = [r if isinstance(r, (str, bytes)) else json.dumps(r) for r in records]
    data = b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def checked(result: LoadResult) -> LoadResult:
    """The invariants every load keeps."""
    assert result.n_read == len(result.reviews) + len(result.quarantine)
    assert dict(result.reviews.dtypes.astype(str)) == REVIEW_COLUMNS
    assert dict(result.quarantine.dtypes.astype(str)) == QUARANTINE_COLUMNS
    assert result.reviews["review_id"].is_unique
    assert "reviewerName" not in result.reviews.columns
    stored = result.reviews.to_json(date_format="iso") + result.quarantine.to_json()
    assert "Jane Secret" not in stored and "reviewerName" not in stored
    return result


def load(path, **kw) -> LoadResult:
    return checked(load_reviews(path, **kw))


def reasons(result: LoadResult) -> list[tuple[int, str, str]]:
    q = result.quarantine
    return list(zip(q["line"].tolist(), q["field"].tolist(), q["reason"].tolist()))


# --- JSON lines ----------------------------------------------------------------------------------------
def test_three_broken_lines_among_100(tmp_path):
    recs = [amazon14(i) for i in range(100)]
    recs[10] = "{not json"
    del recs[50]["asin"]
    recs[90]["overall"] = 9
    res = load(write_jsonl(tmp_path / "reviews.json", recs))
    assert (res.n_read, len(res.reviews), len(res.quarantine), res.n_duplicates) == (100, 97, 3, 0)
    (l1, f1, r1), *rest = reasons(res)
    assert (l1, f1) == (11, "") and r1.startswith("unparsable JSON: ")
    assert rest == [(51, "item_id", "missing item_id"), (91, "rating", "rating out of range 1..5: 9")]
    assert res.quarantine["record"][0] == "{not json"
    assert json.loads(res.quarantine["record"][1])["reviewerID"] == "U10"
    assert res.source == "reviews.json" and set(res.reviews["source"]) == {"reviews.json"}
    assert res.reviews["line"].tolist() == [i for i in range(1, 101) if i not in (11, 51, 91)]


def test_gzip_is_detected_by_magic_bytes(tmp_path):
    recs = [amazon14(i) for i in range(5)]
    for name in ("r.json.gz", "r.jsonl"):  # the second is gzip despite its name
        assert len(load(write_jsonl(tmp_path / name, recs, gz=True)).reviews) == 5


def test_amazon_2014_layout(tmp_path):
    recs = [amazon14(0, helpful=[3, 5]), amazon14(1, overall=4.0)]
    del recs[1]["unixReviewTime"]  # only "reviewTime": "02 28, 2014"
    r = load(write_jsonl(tmp_path / "r.json", recs)).reviews
    assert r[["user_id", "item_id", "rating", "title", "text"]].values.tolist() == [
        ["U0", "I0", 5.0, "ok", "review number 0 is great"], ["U1", "I1", 4.0, "ok", "review number 1 is great"]]
    assert r["helpful_votes"].tolist() == [3, 1]
    assert r["timestamp"].tolist() == [pd.Timestamp(T0, unit="s", tz="UTC")] * 2
    assert r["verified"].isna().all()


def test_amazon_2018_layout(tmp_path):
    base = {"overall": 5.0, "reviewTime": "02 28, 2014", "reviewerID": "A1", "asin": "B1",
            "reviewerName": "Jane Secret", "style": {"Size:": " Large"}, "reviewText": "fine", "summary": "Five Stars",
            "unixReviewTime": T0}
    recs = [dict(base, verified=True, vote="1,234", image=["http://x/1.jpg"]),
            dict(base, asin="B2", reviewText="other", verified=False)]
    r = load(write_jsonl(tmp_path / "r.json", recs)).reviews
    assert r["helpful_votes"].tolist() == [1234, pd.NA]
    assert r["verified"].tolist() == [True, False]
    assert set(r.columns) == set(REVIEW_COLUMNS)


def test_generic_json_and_numeric_ids(tmp_path):
    recs = [{"user_id": 123, "item_id": 7.0, "rating": "4", "text": "ok", "timestamp": "2020-05-01T10:00:00Z",
             "review_id": "R1"},
            {"user_id": " u2 ", "item_id": "007", "text": "ok", "timestamp": "2020-05-01"}]
    r = load(write_jsonl(tmp_path / "r.ndjson", recs)).reviews
    assert r["user_id"].tolist() == ["123", " u2 "] and r["item_id"].tolist() == ["7", "007"]  # kept exactly
    assert r["rating"].tolist()[0] == 4.0 and math.isnan(r["rating"].tolist()[1])
    assert r["timestamp"].tolist() == [pd.Timestamp("2020-05-01T10:00:00Z"), pd.Timestamp("2020-05-01", tz="UTC")]
    assert r["review_id"][0] == "R1" and r["review_id"][1].startswith("r") and len(r["review_id"][1]) == 17


def test_stable_review_ids(tmp_path):
    recs = [amazon14(i) for i in range(3)]
    a = load(write_jsonl(tmp_path / "a.json", recs)).reviews["review_id"].tolist()
    b = load(write_jsonl(tmp_path / "b.json", recs[::-1])).reviews["review_id"].tolist()
    assert a == b[::-1] and len(set(a)) == 3


def test_non_utf8_line_is_quarantined(tmp_path):
    good = [json.dumps(amazon14(i)).encode() for i in range(4)]
    bad = json.dumps(amazon14(9, reviewText="caf\u00e9")).encode().replace(b"\\u00e9", b"\xe9")
    res = load(write_jsonl(tmp_path / "r.json", [*good[:2], bad, *good[2:]]))
    assert len(res.reviews) == 4 and reasons(res) == [(3, "", "not valid UTF-8")]
    assert "caf\\xe9" in res.quarantine["record"][0]


def test_personal_fields_never_stored(tmp_path):
    broken = '{"reviewerID": "U1", "reviewerName": "Jane Secret", "asin": '  # unparsable, name removed by regex
    cut = '{"reviewerID": "U1", "asin": "I1", "reviewerName": "Jane Sec'
    recs = [amazon14(0), broken, cut, amazon14(1, overall="abc"), [amazon14(2)]]
    res = load(write_jsonl(tmp_path / "r.json", recs))  # checked() asserts the name is nowhere
    assert len(res.reviews) == 1 and len(res.quarantine) == 4
    assert reasons(res)[2:] == [(4, "rating", "rating not a number: 'abc'"),
                                (5, "", "JSON value is not an object but list")]


def test_json_value_checks(tmp_path):
    recs = [amazon14(0, reviewText=["a list"]), amazon14(1, summary=5), amazon14(2, reviewerID=None),
            amazon14(3, reviewerID="  "), amazon14(4, reviewText="", summary=" "),
            amazon14(5, reviewText="", summary="Great"), amazon14(6, helpful="x"), amazon14(7, verified="maybe"),
            amazon14(8, overall=None)]
    res = load(write_jsonl(tmp_path / "r.json", recs))
    assert reasons(res) == [(1, "text", "text is not a string"), (2, "title", "title is not a string"),
                            (3, "user_id", "missing user_id"), (4, "user_id", "missing user_id"),
                            (5, "text", "empty text (no title and no body)"),
                            (7, "helpful_votes", "helpful_votes not a count: 'x'"),
                            (8, "verified", "verified not a boolean: 'maybe'")]
    kept = res.reviews.set_index("line")
    assert kept.loc[6, "title"] == "Great" and kept.loc[6, "text"] == ""  # title-only review is kept
    assert math.isnan(kept.loc[9, "rating"])  # missing rating is kept


def test_nan_and_inf_ratings(tmp_path):
    lines = [json.dumps(amazon14(0)).replace("5.0", "NaN"), json.dumps(amazon14(1)).replace("5.0", "Infinity"),
             amazon14(2, overall="nan"), amazon14(3, overall="inf"), amazon14(4, overall=""), amazon14(5, overall=0.5)]
    res = load(write_jsonl(tmp_path / "r.json", lines))
    assert reasons(res) == [(1, "rating", "rating not finite"), (2, "rating", "rating not finite"),
                            (3, "rating", "rating not finite"), (4, "rating", "rating not finite"),
                            (6, "rating", "rating out of range 1..5: 0.5")]
    assert res.reviews["line"].tolist() == [5] and res.reviews["rating"].isna().all()


def test_timestamps(tmp_path):
    recs = [amazon14(0, unixReviewTime=0), amazon14(1, unixReviewTime=4_102_444_800),  # 1970, 2100
            amazon14(2, unixReviewTime="yesterday"), amazon14(3, unixReviewTime=(T0 + 3) * 1000),  # ms
            amazon14(4, unixReviewTime="2014-02-28T00:00:04+00:00"), amazon14(5, unixReviewTime=str(T0 + 5)),
            amazon14(6, unixReviewTime=None, reviewTime=None), amazon14(7, unixReviewTime="1969-12-31")]
    del recs[6]["reviewTime"], recs[6]["unixReviewTime"]
    res = load(write_jsonl(tmp_path / "r.json", recs))
    assert reasons(res) == [(1, "timestamp", "timestamp out of range: 1970-01-01T00:00:00+00:00"),
                            (2, "timestamp", "timestamp out of range: 2100-01-01T00:00:00+00:00"),
                            (3, "timestamp", "timestamp unparsable: 'yesterday'"),
                            (8, "timestamp", "timestamp out of range: 1969-12-31T00:00:00+00:00")]
    ts = res.reviews.set_index("line")["timestamp"]
    assert [ts[i] for i in (4, 5, 6)] == [pd.Timestamp(T0 + i, unit="s", tz="UTC") for i in (3, 4, 5)]
    assert pd.isna(ts[7])


def test_duplicates_exact_and_variant(tmp_path):
    a, b = amazon14(1), amazon14(2)
    variant = dict(a, asin="OTHER")  # the 2018 dumps: the same review under another product variant
    other_rating = dict(b, overall=1.0, reviewText="new text")
    recs = [a, b, a, variant, b, other_rating, dict(a, reviewText="")]
    res = load(write_jsonl(tmp_path / "r.json", recs))
    assert res.n_duplicates == 3 and len(res.reviews) == 4
    assert reasons(res) == [(3, "", "duplicate of line 1"), (4, "", "duplicate of line 1"),
                            (5, "", "duplicate of line 2")]
    # across chunks, too
    chunks = [checked(c) for c in iter_review_chunks(tmp_path / "r.json", chunk_size=1)]
    assert sum(c.n_duplicates for c in chunks) == 3 and sum(len(c.reviews) for c in chunks) == 4


def test_duplicate_review_id(tmp_path):
    recs = [{"review_id": "R1", "user_id": "u", "item_id": "i", "text": "one"},
            {"review_id": "R1", "user_id": "u", "item_id": "i", "text": "two"},
            {"review_id": "R1", "user_id": "u", "item_id": "i", "text": "one"}]
    res = load(write_jsonl(tmp_path / "r.jsonl", recs))
    assert reasons(res) == [(2, "review_id", "duplicate review_id (first on line 1)"), (3, "", "duplicate of line 1")]
    assert res.n_duplicates == 1


def test_long_record_is_truncated(tmp_path):
    res = load(write_jsonl(tmp_path / "r.json", [amazon14(0, overall=7, reviewText="x" * 20_000)]))
    record = res.quarantine["record"][0]
    assert len(record) < 10_100 and record.startswith('{"reviewerID"') and "…[truncated " in record


def test_missing_required_key_in_json_fails_at_once(tmp_path):
    recs = [{"reviewerID": "u", "product": "p", "reviewText": "t"}] * 3
    with pytest.raises(SchemaError) as err:
        load_reviews(write_jsonl(tmp_path / "r.json", recs))
    msg = str(err.value)
    assert "item_id" in msg and "asin" in msg and "product" in msg and "r.json" in msg
    assert len(load(tmp_path / "r.json", mapping={"item": "product"}).reviews) == 1  # 2 duplicates


def test_key_check_looks_at_the_first_1000_objects(tmp_path):
    good = [{"user_id": f"u{i}", "item_id": "i", "text": "t"} for i in range(1000)]
    no_item = [{"user_id": f"v{i}", "text": "t"} for i in range(1500)]
    with pytest.raises(SchemaError, match=r"first 1000 JSON objects.*field .item_id."):
        next(iter_review_chunks(write_jsonl(tmp_path / "a.json", ["[]", *no_item]), chunk_size=10))
    chunks = [checked(c) for c in iter_review_chunks(write_jsonl(tmp_path / "b.json", good + no_item[:5]),
                                                     chunk_size=300)]
    assert [c.n_read for c in chunks] == [1000, 5]  # the first chunk waits for 1000 objects
    assert chunks[1].quarantine["reason"].tolist() == ["missing item_id"] * 5


def test_blank_and_empty_files(tmp_path):
    for name, data, what in [("e.json", b"", "is empty"), ("b.json", b"\n \n", "only blank lines"),
                             ("e.csv", b"", "is empty"), ("h.csv", b"user_id,item_id,text\n", "header line but no data"),
                             ("h2.csv", b"user_id,item_id,text\n\n\n", "header line but no data")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(EmptyFileError, match=f"{name}.*{what}"):
            load_reviews(tmp_path / name)
    lines = write_jsonl(tmp_path / "r.json", ["", amazon14(0), "   ", amazon14(1)])
    res = load(lines)
    assert res.n_read == 2 and res.reviews["line"].tolist() == [2, 4]


# --- CSV and Parquet -----------------------------------------------------------------------------------
def test_csv_with_mapping_aliases_and_semicolons(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("customer_id;Product_ID;Stars;body;created_at;reviewerName\n"
                    "007;NA;4;good;2020-01-02;Jane Secret\n"
                    "008;;5;fine;2020-01-03;Jane Secret\n"
                    "009;X1;abc;fine;2020-01-04;Jane Secret\n"
                    '010;X2;;"multi\nline; text";1600000000;Jane Secret\n')
    res = load(path)
    assert res.reviews[["user_id", "item_id", "text"]].values.tolist() == [["007", "NA", "good"],
                                                                          ["010", "X2", "multi\nline; text"]]
    assert res.reviews["line"].tolist() == [2, 5]  # file lines: the header is line 1
    assert reasons(res) == [(3, "item_id", "missing item_id"), (4, "rating", "rating not a number: 'abc'")]
    assert json.loads(res.quarantine["record"][1]) == {"customer_id": "009", "Product_ID": "X1", "Stars": "abc",
                                                       "body": "fine", "created_at": "2020-01-04"}
    mapped = load(path, mapping=parse_mapping(["user=Product_ID", "item=customer_id"]))
    assert mapped.reviews["user_id"].tolist() == ["NA", "X2"]
    assert reasons(mapped)[0] == (3, "user_id", "missing user_id")  # the empty Product_ID is the user now


def test_tsv_and_gzipped_csv(tmp_path):
    df = pd.DataFrame({"user": ["a", "b"], "item": ["x", "y"], "review": ["t, with comma", "u"]})
    df.to_csv(tmp_path / "r.tsv", sep="\t", index=False)
    df.to_csv(tmp_path / "r.csv.gz", index=False, compression="gzip")
    for name in ("r.tsv", "r.csv.gz"):
        assert load(tmp_path / name).reviews["text"].tolist() == ["t, with comma", "u"]


def test_csv_missing_required_column(tmp_path):
    path = tmp_path / "r.csv"
    pd.DataFrame({"customer": ["a"], "item_id": ["x"], "text": ["fine"]}).to_csv(path, index=False)
    with pytest.raises(SchemaError) as err:
        load_reviews(path)
    msg = str(err.value)
    assert "'user_id'" in msg and "customer_id" in msg and "found columns: customer, item_id, text" in msg
    assert str(path) in msg
    assert len(load(path, mapping={"user_id": "customer"}).reviews) == 1
    with pytest.raises(SchemaError, match="'nope' mapped to field 'rating'"):
        load_reviews(path, mapping={"user_id": "customer", "rating": "nope"})


def test_csv_row_with_extra_fields_is_an_error(tmp_path):
    (tmp_path / "r.csv").write_text("user_id,item_id,text\na,b,c\nd,e,f,g\n")
    with pytest.raises(ValueError, match="more fields than the header"):
        load_reviews(tmp_path / "r.csv")


def test_csv_non_utf8_cell(tmp_path):
    (tmp_path / "r.csv").write_bytes(b"user_id,item_id,text\na,b,caf\xe9\nc,d,ok\n")
    res = load(tmp_path / "r.csv")
    assert reasons(res) == [(2, "text", "text is not valid UTF-8")] and res.reviews["user_id"].tolist() == ["c"]


def test_parquet(tmp_path):
    df = pd.DataFrame({"reviewerID": ["u1", "u2", "u3"], "asin": ["i1", "i2", None], "overall": [5.0, np.nan, 3.0],
                       "reviewText": ["a", "b", "c"], "unixReviewTime": [T0, T0 + 1, T0 + 2],
                       "helpful": [[1, 2], [0, 0], [3, 3]], "reviewerName": ["Jane Secret"] * 3})
    df.to_parquet(tmp_path / "r.parquet", row_group_size=2)
    res = load(tmp_path / "r.parquet")
    assert res.reviews["user_id"].tolist() == ["u1", "u2"] and res.reviews["helpful_votes"].tolist() == [1, 0]
    assert math.isnan(res.reviews["rating"][1])
    assert reasons(res) == [(3, "item_id", "missing item_id")]
    assert [len(c.reviews) for c in iter_review_chunks(tmp_path / "r.parquet", chunk_size=2)] == [2, 0]


def test_load_reviews_frame():
    df = pd.DataFrame({"user_id": ["u1", "u1", None], "item_id": ["i1", "i1", "i2"], "rating": [4.0, 4.0, 5.0],
                       "text": ["same", "same", "x"],
                       "timestamp": pd.to_datetime([T0, T0, T0], unit="s", utc=True)})
    res = checked(load_reviews_frame(df, "demo"))
    assert res.source == "demo" and res.reviews["line"].tolist() == [1]
    assert reasons(res) == [(2, "", "duplicate of line 1"), (3, "user_id", "missing user_id")]


def test_unknown_format(tmp_path):
    with pytest.raises(ValueError, match="cannot tell the format"):
        load_reviews(tmp_path / "r.xml")
    with pytest.raises(ValueError, match="unknown format"):
        load_reviews(tmp_path / "r.json", fmt="xml")


# --- mapping and items ---------------------------------------------------------------------------------
def test_parse_mapping():
    assert parse_mapping(["user=customer_id", " text = body ", "Item_ID=sku"]) == {
        "user_id": "customer_id", "text": "body", "item_id": "sku"}
    assert parse_mapping([]) == {}
    with pytest.raises(ValueError, match=r"unknown field 'colour'.*valid fields: review_id, user_id"):
        parse_mapping(["colour=c"])
    with pytest.raises(ValueError, match="mapped twice"):
        parse_mapping(["user=a", "user_id=b"])
    for bad in ("user", "user=", "=col"):
        with pytest.raises(ValueError, match=f"malformed column mapping {bad!r}"):
            parse_mapping([bad])
    # several pairs in one --map (a first user's guess) say how to write them, not "no column 'kunde,item_id=...'"
    with pytest.raises(ValueError, match=r"give one --map per field, e\.g\. --map user_id=kunde --map item_id=artikel"):
        parse_mapping(["user_id=kunde,item_id=artikel"])
    assert parse_mapping(["text=body, with a comma"]) == {"text": "body, with a comma"}  # a column name may hold a comma
    with pytest.raises(ValueError, match="personal data"):
        load_reviews_frame(pd.DataFrame({"u": ["a"], "item_id": ["b"], "text": ["c"]}), "x", {"user": "reviewerName"})


def test_load_items(tmp_path):
    (tmp_path / "items.csv").write_text('sku,name,category,price\n007,Pick,Guitars,"$1,299.00"\n008,Strap,,\n')
    items = load_items(tmp_path / "items.csv")
    assert items["item_id"].tolist() == ["007", "008"] and items["title"].tolist() == ["Pick", "Strap"]
    assert items["price"].tolist()[0] == 1299.0 and math.isnan(items["price"].tolist()[1])
    assert items["category"].isna().tolist() == [False, True]
    write_jsonl(tmp_path / "meta.json", [{"asin": "A", "title": "T", "categories": [["Music", "Guitars"]], "price": 3}])
    assert load_items(tmp_path / "meta.json")["category"].tolist() == ["Music > Guitars"]
    (tmp_path / "bad.csv").write_text("item_id,price\na,1\nb,12 EUR\n")
    with pytest.raises(ValueError, match=r"row 2: price unparsable: '12 EUR'"):
        load_items(tmp_path / "bad.csv")
    (tmp_path / "noid.csv").write_text("name,price\na,1\n")
    with pytest.raises(SchemaError, match=r"'item_id'.*found columns: name, price"):
        load_items(tmp_path / "noid.csv")
    (tmp_path / "twice.csv").write_text("item_id\na\nb\na\n")
    with pytest.raises(ValueError, match=r"'a' appears more than once .rows 1 and 3."):
        load_items(tmp_path / "twice.csv")


# --- the real Amazon file ------------------------------------------------------------------------------
@pytest.mark.realdata
def test_real_amazon_file():
    if not REAL_FILE.exists():
        pytest.skip(f"real data not found at {REAL_FILE} (../shared/data is absent on this machine)")
    res = load(REAL_FILE)
    r = res.reviews
    assert (len(r), r["user_id"].nunique(), r["item_id"].nunique()) == (10_261, 1_429, 900)
    assert (len(res.quarantine), res.n_duplicates) == (0, 0)
    assert ((r["text"].str.strip() == "") & (r["title"].str.strip() != "")).sum() == 7
