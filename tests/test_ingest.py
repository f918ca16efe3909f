"""First use of `emorec ingest`: nothing dropped or replaced silently (issue 17, items 1-3 and 5;
issue 18, item 7)."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from emorec.jobs.cli import main
from emorec.jobs.store import Workspace

SHOP = "customer_id,product_id,stars,created_at,body\n" + "".join(
    f"c{i},p{i % 7},{1 + i % 5},2021-03-{1 + i % 28:02d},review number {i} of a shop\n" for i in range(200))
FIVE = "customer_id,product_id,stars,created_at,body\n" + "".join(
    f"n{i},p{i},4,2021-04-0{1 + i},a new review {i}\n" for i in range(5))


def ingest(ws: Path, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        rc = main(["ingest", "-w", str(ws), *args])
    return rc, out.getvalue()


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    paths = {"shop": tmp_path / "shop.csv", "five": tmp_path / "five.csv", "header": tmp_path / "header.csv",
             "empty": tmp_path / "empty.csv", "german": tmp_path / "german.csv"}
    paths["shop"].write_text(SHOP)
    paths["five"].write_text(FIVE)
    paths["header"].write_text("customer_id,product_id,stars,created_at,body\n")
    paths["empty"].write_bytes(b"")
    paths["german"].write_text("kunde,artikel,sterne,datum,text\nk1,a1,5,2021-01-02,Sehr gut\nk2,a2,1,2021-01-03,Kaputt\n")
    return paths


def test_ingest_twice_keeps_both_and_counts_duplicates(tmp_path, files):
    ws = tmp_path / "ws"
    assert ingest(ws, "--reviews", str(files["shop"]))[0] == 0
    rc, text = ingest(ws, "--reviews", str(files["five"]))
    assert rc == 0 and "added=5" in text and "reviews=205" in text
    assert "added 5 new reviews to the 200 stored" in text
    assert len(Workspace(ws).read_table("reviews")) == 205
    rc, text = ingest(ws, "--reviews", str(files["shop"]))  # the same file again: nothing doubles
    assert rc == 0 and "added=0" in text and "already_stored=200" in text
    assert len(Workspace(ws).read_table("reviews")) == 205


def test_an_edited_review_with_the_same_id_replaces_the_stored_one(tmp_path):
    ws = tmp_path / "ws"
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("review_id,user_id,item_id,text\nR1,u1,i1,first version\nR2,u2,i2,other\n")
    b.write_text("review_id,user_id,item_id,text\nR1,u1,i1,edited version\n")
    assert ingest(ws, "--reviews", str(a))[0] == 0
    rc, text = ingest(ws, "--reviews", str(b))
    assert rc == 0 and "updated=1" in text
    r = Workspace(ws).read_table("reviews").set_index("review_id")
    assert r.loc["R1", "text"] == "edited version" and len(r) == 2


def test_replace_is_explicit_and_prints_before_and_after(tmp_path, files):
    ws = tmp_path / "ws"
    assert ingest(ws, "--reviews", str(files["shop"]))[0] == 0
    rc, text = ingest(ws, "--reviews", str(files["five"]), "--replace")
    assert rc == 0 and "the 200 stored reviews were replaced by these 5" in text
    assert len(Workspace(ws).read_table("reviews")) == 5


@pytest.mark.parametrize("which,message", [("header", "has a header line but no data rows"), ("empty", "is empty")])
def test_header_only_or_empty_file_changes_nothing(tmp_path, files, caplog, which, message):
    ws = tmp_path / "ws"
    assert ingest(ws, "--reviews", str(files["shop"]))[0] == 0
    before = (ws / "tables" / "reviews.parquet").read_bytes()
    for extra in ([], ["--replace"]):
        caplog.clear()
        rc, _ = ingest(ws, "--reviews", str(files[which]), *extra)
        assert rc == 2 and f"{files[which]} {message}" in caplog.text and "nothing was changed" in caplog.text
        assert (ws / "tables" / "reviews.parquet").read_bytes() == before
    caplog.clear()  # `run` with such a file fails at ingest, before emptying anything
    assert main(["run", "-w", str(ws), "--reviews", str(files[which]), "--scorer", "lexicon", "--replace"]) == 2
    assert (ws / "tables" / "reviews.parquet").read_bytes() == before
    assert message in caplog.text


def test_an_empty_file_among_several_is_skipped_with_a_warning(tmp_path, files):
    rc, text = ingest(tmp_path / "ws", "--reviews", str(files["header"]), str(files["five"]))
    assert rc == 0 and "added=5" in text
    assert f"! review file {files['header']} has a header line but no data rows: nothing to ingest; skipped" in text


def test_a_file_whose_every_row_is_rejected_changes_nothing(tmp_path, files, caplog):
    ws = tmp_path / "ws"
    assert ingest(ws, "--reviews", str(files["shop"]))[0] == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,product_id,stars,body\nc1,,5,x\n,p2,5,y\n")
    before = (ws / "tables" / "reviews.parquet").read_bytes()
    assert ingest(ws, "--reviews", str(bad), "--replace")[0] == 2
    assert "no reviews in" in caplog.text and "nothing was changed" in caplog.text and "missing item_id" in caplog.text
    assert (ws / "tables" / "reviews.parquet").read_bytes() == before


def test_unmapped_columns_are_reported_and_kept(tmp_path, files):
    ws = tmp_path / "ws"
    rc, text = ingest(ws, "--reviews", str(files["german"]), "--map", "user=kunde", "--map", "item=artikel")
    assert rc == 0
    assert "no column for rating (looked for rating, stars" in text and "--map rating=COLUMN" in text
    assert "no column for timestamp" in text
    assert "column(s) sterne, datum not used by any field" in text
    reviews = Workspace(ws).read_table("reviews")
    assert reviews["rating"].isna().all()
    assert [json.loads(e) for e in reviews["extra"]] == [{"sterne": "5", "datum": "2021-01-02"},
                                                          {"sterne": "1", "datum": "2021-01-03"}]
    # mapped, the same columns fill the fields and the warnings are gone
    rc, text = ingest(ws, "--reviews", str(files["german"]), "--replace", "--map", "user=kunde", "--map", "item=artikel",
                      "--map", "rating=sterne", "--map", "timestamp=datum")
    assert rc == 0 and "no column for rating" not in text and "not used" not in text
    assert Workspace(ws).read_table("reviews")["rating"].tolist() == [5.0, 1.0]


def test_personal_columns_are_never_kept(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("user_id,item_id,text,ReviewerName,customer_name,shipping_address,E-Mail,colour\n"
                    "u1,i1,fine,Jane Roe,Jane Roe,1 Main St Springfield,jane@example.com,red\n")
    ws = tmp_path / "ws"
    rc, _text = ingest(ws, "--reviews", str(path))
    assert rc == 0
    w = Workspace(ws)
    stored = w.read_table("reviews").to_json(date_format="iso") + w.read_table("quarantine").to_json(date_format="iso")
    assert "Jane" not in stored and "Main St" not in stored and "example.com" not in stored
    assert json.loads(w.read_table("reviews")["extra"].iloc[0]) == {"colour": "red"}


def test_quarantine_lines_are_file_lines(tmp_path, caplog):
    path = tmp_path / "r.csv"
    path.write_text('user_id,item_id,rating,text\nu1,i1,5,"two\nlines"\n\nu2,i2,9,bad stars\nu3,,4,no item\n')
    ws = tmp_path / "ws"
    rc, text = ingest(ws, "--reviews", str(path))
    assert rc == 0
    q = Workspace(ws).read_table("quarantine").sort_values("line")
    lines = path.read_text().split("\n")
    assert q["line"].tolist() == [5, 6]
    assert lines[5 - 1].startswith("u2,i2,9") and lines[6 - 1].startswith("u3,,4")  # the lines the file has
    assert Workspace(ws).read_table("reviews")["line"].tolist() == [2]
    assert f'emorec query -w {ws} "SELECT * FROM quarantine"' in text  # the hint names the workspace
    assert "1 rating out of range 1..5" in text and "1 missing item_id" in text


def test_quarantine_summary_does_not_mangle_reasons(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"user_id": "u1", "item_id": "i1", "text": "ok"}\n{"user_id": "u2", "item_id": "i2", "text": "caf\xe9"}\n')
    rc, text = ingest(tmp_path / "ws", "--reviews", str(path))
    assert rc == 0 and "not valid UTF-8" in text and "UTF-N" not in text


def test_notes_and_warnings_are_told_apart(tmp_path):
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["run", "-w", str(tmp_path / "ws"), "--demo-users", "40", "--scorer", "lexicon", "-q"]) == 0
    lines = out.getvalue().splitlines()
    scorer = next(line for line in lines if "scorer lexicon" in line)
    assert scorer.strip().startswith("- ")  # information, not a warning


def test_pseudonymized_ids_never_appear(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user_id,item_id,rating,text\njane.doe@example.com,i1,5,great\njane.doe@example.com,i2,4,good\n"
                    "max@example.org,i1,9,bad rating\n")
    ws = tmp_path / "ws"
    rc, _ = ingest(ws, "--reviews", str(path), "--pseudonymize-ids")
    assert rc == 0
    w = Workspace(ws)
    everything = "".join(w.read_table(t).to_json(date_format="iso") for t in w.tables())
    assert "jane.doe" not in everything and "max@" not in everything
    users = w.read_table("reviews")["user_id"]
    assert users.nunique() == 1 and users.iloc[0].startswith("p") and len(users.iloc[0]) == 33
    assert w.read_table("quarantine")["user_id"].iloc[0].startswith("p")
    # a later ingest must pseudonymize too, so one customer keeps one id
    assert ingest(ws, "--reviews", str(path))[0] == 2
    rc, text = ingest(ws, "--reviews", str(path), "--pseudonymize-ids")
    assert rc == 0 and "already_stored=2" in text
    # forget takes the original id
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["forget", "-w", str(ws), "--user", "jane.doe@example.com", "--no-retrain"]) == 0
    assert len(w.read_table("reviews")) == 0 or users.iloc[0] not in set(w.read_table("reviews")["user_id"])


def test_items_are_merged_by_id(tmp_path, files):
    ws = tmp_path / "ws"
    a, b = tmp_path / "items_a.csv", tmp_path / "items_b.csv"
    a.write_text("item_id,title\np0,Old title\np1,Drum\n")
    b.write_text("item_id,title\np0,New title\np9,Flute\n")
    assert ingest(ws, "--reviews", str(files["shop"]), "--items", str(a))[0] == 0
    assert ingest(ws, "--reviews", str(files["five"]), "--items", str(b))[0] == 0
    items = Workspace(ws).read_table("items").set_index("item_id")["title"].to_dict()
    assert items == {"p0": "New title", "p1": "Drum", "p9": "Flute"}
