"""Privacy: no personal data beyond the shop's ids in any output, pseudonymized exports, and
``emorec forget`` (right to erasure) that stays in force on the next run."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import re
import stat
from pathlib import Path

import pandas as pd
import pytest

from emorec.jobs import forget_commands
from emorec.jobs.cli import _common, main
from emorec.jobs.demo_shop import generate_demo_shop
from emorec.jobs.forget import FORGOTTEN_TABLE, KEY_FILE
from emorec.jobs.pipeline import load_service
from emorec.jobs.store import Workspace
from emorec.sentiment.text import scrub_pii

SALT = "pepper-0123456789abcdef"
JANE = "P-JANE-1"
NAME = "Jane Q. Doolittle"
# realistic personal data, as customers write it into reviews
PII = {
    "email": ["jane.doolittle+shop@mail.example.co.uk", "j.doolittle@beispiel.de"],
    "phone": ["+44 7700 900123", "+49 (0) 30 12345678", "(415) 555-2671", "+33 6 12 34 56 78", "+91 98765 43210",
              "030 1234567", "07700 900456", "1-800-555-0199"],
    "url": ["https://www.facebook.com/jane.doolittle.77", "www.instagram.com/janedoo"],
}
PII_DIGITS = ["7700900123", "3012345678", "4155552671", "612345678", "9876543210", "301234567", "7700900456", "8005550199"]


# --- scrubbing ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw,token", [
    ("Call me on 07700 900123 if it breaks", "[phone]"),
    ("UK mobile +44 7700 900123", "[phone]"),
    ("Berlin office: 030 1234567", "[phone]"),
    ("Tel. 030/12345678 (abends)", "[phone]"),
    ("Handy 0151 12345678", "[phone]"),
    ("ruf mich an unter 0171 2345678", "[phone]"),
    ("+49 (0) 30 12345678", "[phone]"),
    ("appelez-moi au 06 12 34 56 78", "[phone]"),
    ("+33 6 12 34 56 78", "[phone]"),
    ("toll free 1-800-555-0199", "[phone]"),
    ("+1 (415) 555-2671", "[phone]"),
    ("(02) 9876 5432 Sydney", "[phone]"),
    ("+81 3-1234-5678", "[phone]"),
    ("+86 138 0013 8000", "[phone]"),
    ("call me on 13800138000", "[phone]"),
    ("WhatsApp: 98765 43210", "[phone]"),
    ("+55 11 91234-5678", "[phone]"),
    ("+7 495 123-45-67", "[phone]"),
    ("tel:+442079460958", "[phone]"),
    ("mail John.Smith+shop@mail.example.com", "[email]"),
    ("jürgen.müller@beispiel.de schreibt", "[email]"),
    ("contact: info [at] shop.com", "[email]"),
    ("jane (at) example (dot) com", "[email]"),
    ("my page https://www.facebook.com/jane.doe.77", "[url]"),
    ("see shop.example.de/angebote?id=3", "[url]"),
])
def test_realistic_personal_data_is_scrubbed(raw, token):
    out = scrub_pii(raw)
    assert token in out
    assert sum(c.isdigit() for c in out) <= 1 and "@" not in out and "facebook" not in out


@pytest.mark.parametrize("raw", [
    "Bought it 12-24-2013 for $19.99", "ISBN 978-3-16-148410-0", "order 123456789", "12,000 rpm, 2 x 1000 W",
    "version 1.2.3.4", "from 9:00 to 17:30", "20 000 mAh", "I called support 3 times in 2019 2020",
    "the phone has 128 GB and 4000 mAh", "got it at a good price, at last", "bought on amazon.com",
])
def test_ordinary_numbers_and_words_are_kept(raw):
    assert scrub_pii(raw) == raw


# --- a shop with personal data in its reviews -----------------------------------------------------------
@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("shop")
    demo = generate_demo_shop(n_users=60, seed=5)
    paths = demo.write(folder / "demo")
    newest = int(pd.to_datetime(demo.reviews["timestamp"], utc=True).max().timestamp())
    items = demo.items["item_id"].tolist()
    pii_text = (f"Terrible quality, it broke after two days. Email me at {PII['email'][0]} or "
                f"{PII['email'][1]}, call {', '.join(PII['phone'])}. Photos: {' and '.join(PII['url'])}")
    lines = [
        {"reviewerID": JANE, "reviewerName": NAME, "asin": items[k], "overall": 1.0, "summary": "Awful, call me",
         "reviewText": pii_text, "unixReviewTime": newest - 3600 * k}
        for k in range(3)
    ]
    lines.append({"reviewerID": JANE, "reviewerName": NAME, "asin": items[5], "overall": 9, "summary": "bad stars",
                  "reviewText": f"write to {PII['email'][0]}", "unixReviewTime": newest})  # quarantined
    lines.append({"reviewerID": "P-OTHER", "reviewerName": "Max Mustermann", "asin": items[6], "overall": 4.0,
                  "summary": "ok", "reviewText": "fine, ruf an: +49 30 98765432", "unixReviewTime": newest})
    pii = folder / "pii.jsonl"
    pii.write_text("".join(json.dumps(x) + "\n" for x in lines))
    (folder / "salt").write_text(SALT)
    return {"reviews": Path(paths["reviews"]), "items": Path(paths["items"]), "pii": pii, "salt": folder / "salt",
            "root": folder}


def run_all(ws: Path, shop: dict[str, Path], out: Path) -> None:
    args = ["-w", str(ws), "-q"]
    assert main(["run", *args, "--reviews", str(shop["reviews"]), str(shop["pii"]), "--items", str(shop["items"]),
                 "--scorer", "lexicon"]) == 0
    assert main(["segment", *args, "--out", str(out / "crm"), "--pseudonymize", "--salt-file", str(shop["salt"]),
                 "--report", str(out / "report.html")]) == 0
    assert main(["care", *args, "--top", "20"]) == 0
    assert main(["monitor", *args]) == 0


def all_text(ws: Path, extra: list[Path]) -> str:
    """Every string cell of every table, plus the text of the given files."""
    w = Workspace(ws)
    parts = []
    for t in w.tables():
        df = w.read_table(t)
        for c in df.columns:
            if df[c].dtype == object or isinstance(df[c].dtype, pd.StringDtype):
                parts.extend(df[c].dropna().astype(str))
        parts.append(json.dumps(w.table_metadata(t)))
    for p in extra:
        parts.append(p.read_bytes().decode("utf-8", "replace") if p.suffix != ".parquet" else pd.read_parquet(p).to_csv())
    return "\n".join(parts)


@pytest.fixture(scope="module")
def shop_ws(shop, tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("pii") / "ws"
    run_all(ws, shop, ws.parent)
    return ws


def test_no_personal_data_in_any_output(shop_ws, shop):
    out = shop_ws.parent
    files = [out / "report.html", *sorted((out / "crm").iterdir())]
    text = all_text(shop_ws, files)
    assert NAME not in text and "Mustermann" not in text  # reviewer names are never stored
    for value in PII["email"] + PII["url"] + PII["phone"]:
        assert value not in text, value
    for digits in PII_DIGITS:  # the number in any formatting (separators between its digits)
        assert not re.search(r"[\s().\-/+]{0,3}".join(digits), text), digits
    # the texts were stored (scrubbed), not dropped: the checks above are not vacuous
    w = Workspace(shop_ws)
    jane = w.query(f"SELECT text FROM reviews WHERE user_id = '{JANE}'")
    assert len(jane) == 3 and all("[email]" in t and "[phone]" in t and "[url]" in t for t in jane.text)
    q = w.read_table("quarantine")
    assert q.record.str.contains(JANE).any() and q.record.str.contains(r"\[email\]").any()
    care = w.read_table("care_queue")
    assert JANE in set(care.user_id)  # her complaint is in the care queue, with a scrubbed excerpt
    assert "[phone]" in text and "[email]" in text


def test_exports_are_pseudonymized_and_the_salt_stays_outside(shop_ws, shop):
    crm = shop_ws.parent / "crm"
    exported = pd.concat([pd.read_csv(p, dtype=str) for p in crm.glob("*.csv")])
    users = Workspace(shop_ws).read_table("user_profiles").user_id
    expected = {hmac.new(SALT.encode(), u.encode(), hashlib.sha256).hexdigest() for u in users}
    assert set(exported.user_id) == expected and len(expected) == len(users)
    manifest = json.loads((crm / "manifest.json").read_text())
    assert manifest["pseudonymized"] is True
    for p in [*crm.iterdir(), *shop_ws.rglob("*")]:  # the salt is in no export and nowhere in the workspace
        if p.is_file():
            assert SALT.encode() not in p.read_bytes(), p
    for p in crm.iterdir():
        assert JANE.encode() not in p.read_bytes() and b"U000" not in p.read_bytes()
    # the report made with --pseudonymize names customers (its care table) by the same pseudonyms
    report = (shop_ws.parent / "report.html").read_text()
    assert JANE not in report
    assert hmac.new(SALT.encode(), JANE.encode(), hashlib.sha256).hexdigest() in report


# --- right to erasure -----------------------------------------------------------------------------------
def forget(ws: Path, *ids: str, extra: tuple[str, ...] = ()) -> str:
    parser = argparse.ArgumentParser(prog="emorec")
    forget_commands.add_parsers(parser.add_subparsers(dest="command", required=True), _common())
    args = parser.parse_args(["forget", "-w", str(ws), *[a for i in ids for a in ("--user", i)], *extra])
    out = io.StringIO()
    assert forget_commands.run_command(args, Workspace(ws), out) == 0
    return out.getvalue()


def user_rows(ws: Path, user: str, review_ids: set[str]) -> dict[str, int]:
    """Rows that still mention ``user`` anywhere in the workspace tables."""
    w = Workspace(ws)
    found = {}
    for t in w.tables():
        if t == "runs":
            continue
        df = w.read_table(t)
        n = 0
        if "user_id" in df:
            n += int((df.user_id.astype(str) == user).sum())
        if "review_id" in df:
            n += int(df.review_id.astype(str).isin(review_ids).sum())
        if "record" in df:
            n += int(df.record.astype(str).str.contains(user, regex=False).sum())
        if n:
            found[t] = n
    return found


@pytest.mark.slow  # a whole run and a forget; tests/test_forget.py::test_forget_is_complete is the default one
def test_forget_removes_the_user_everywhere_and_the_next_run_keeps_them_out(shop, tmp_path):
    ws = tmp_path / "ws"
    run_all(ws, shop, tmp_path)
    w = Workspace(ws)
    # a per-user table added by a later stage (e.g. evaluation) is covered by its user_id column
    w.write_table("eval_per_user", pd.DataFrame({"user_id": [JANE, "U00001"], "ndcg": [0.5, 0.25]}))
    jane_reviews = set(w.query(f"SELECT review_id FROM reviews WHERE user_id = '{JANE}'").review_id)
    before = user_rows(ws, JANE, jane_reviews)
    assert {"reviews", "review_scores", "user_profiles", "segments", "care_queue", "quarantine",
            "eval_per_user"} <= set(before), before
    assert JANE in load_service(w).users_
    n_reviews, n_users = len(w.read_table("reviews")), len(w.read_table("user_profiles"))

    text = forget(ws, JANE)
    assert "forgot 1 user" in text and "retrained" in text
    assert user_rows(ws, JANE, jane_reviews) == {}
    assert len(w.read_table("reviews")) == n_reviews - 3 and len(w.read_table("user_profiles")) == n_users - 1
    assert w.read_table("eval_per_user").user_id.tolist() == ["U00001"]  # other users untouched
    service = load_service(w)
    assert JANE not in service.users_ and len(service.users_) == n_users - 1
    versions = [p for p in (ws / "models" / "recommender").iterdir() if p.is_dir()]
    assert all(JANE not in pd.read_parquet(v / "users.parquet").id.tolist() for v in versions)
    # the erasure is recorded without the id; the hash table does not hold it either
    r = w.read_table("runs")
    assert r.command.iloc[-1] == "forget" and r.status.iloc[-1] == "ok"
    assert JANE not in all_text(ws, [])
    assert stat.S_IMODE((ws / KEY_FILE).stat().st_mode) == 0o600
    assert len(w.read_table(FORGOTTEN_TABLE)) == 1

    # the next nightly run reads the same input files, which still hold her reviews
    run_all(ws, shop, tmp_path)
    assert user_rows(ws, JANE, jane_reviews) == {}
    counts = json.loads(w.read_table("runs").query("command == 'run'").counts.iloc[-1])
    assert counts["ingest.forgotten"] == 4  # 3 reviews + 1 quarantined record
    assert counts["ingest.read"] == counts["ingest.reviews"] + counts["ingest.quarantined"] + counts["ingest.forgotten"]
    assert JANE not in load_service(w).users_
    assert JANE.encode() not in b"".join(p.read_bytes() for p in (tmp_path / "crm").iterdir())
    # forgetting again is harmless
    assert "0 rows removed" in forget(ws, JANE)
    assert len(w.read_table(FORGOTTEN_TABLE)) == 1


def test_forget_without_retrain_deletes_models_that_know_the_user(shop, tmp_path):
    ws = tmp_path / "ws"
    assert main(["run", "-w", str(ws), "-q", "--reviews", str(shop["reviews"]), str(shop["pii"]),
                 "--scorer", "lexicon"]) == 0
    text = forget(ws, JANE, extra=("--no-retrain",))
    assert "emorec train" in text
    assert not (ws / "models" / "recommender" / "CURRENT").exists()
    assert main(["train", "-w", str(ws)]) == 0
    assert JANE not in load_service(Workspace(ws)).users_


def test_forget_refuses_without_ids(tmp_path):
    with pytest.raises((ValueError, SystemExit)):
        forget(tmp_path / "ws")


# --- issue 18: scrubbing gaps and personal data in the quarantine ----------------------------------------
@pytest.mark.parametrize("raw,token", [
    ("call me: 98765 43210", "[phone]"),  # Indian mobile, 5 + 5
    ("my number is 9876543210", "[phone]"),  # Indian mobile, bare
    ("text 5551234567 anytime", "[phone]"),  # US, bare
    ("reach me at 15551234567", "[phone]"),  # US with country code, bare
    ("jane at example dot com", "[email]"),
    ("write to jane.doe at gmail dot com please", "[email]"),
    ("jane @ example.com", "[email]"),
    ("card 4111 1111 1111 1111 was charged twice", "[card]"),  # Luhn-valid
    ("refund to DE89 3704 0044 0532 0130 00", "[iban]"),  # mod-97 valid
    ("ssn 123-45-6789", "[id]"),
])
def test_more_personal_data_is_scrubbed(raw, token):
    out = scrub_pii(raw)
    assert token in out and sum(c.isdigit() for c in out) <= 1 and "@" not in out and "example" not in out


@pytest.mark.parametrize("raw", [
    "card 4111 1111 1111 1112", "order 1234567890", "EAN 0306406152", "bought it at amazon dot com",
    "look at this dot com thing", "2019 2020 2021", "DE00 1234 5678 9012 3456 78",
])
def test_numbers_that_are_not_personal_are_kept(raw):
    assert scrub_pii(raw) == raw


def test_quarantine_reason_and_records_hold_no_personal_data(tmp_path):
    path = tmp_path / "r.jsonl"
    recs = [
        {"reviewerID": "U1", "asin": "I1", "overall": "call me on 9876543210 or jane.doe@example.com", "reviewText": "x"},
        {"reviewerID": "U2", "asin": "I2", "overall": 5, "reviewText": "<a href='mailto:max@example.org'></a>",
         "summary": "<b></b>"},  # empty after HTML removal
        {"reviewerID": "U3", "asin": "I3", "overall": 9, "reviewText": "fine", "ReviewerName": "Jane Roe",
         "customer_name": "Jane Roe", "shipping_address": "1 Main St, Springfield"},
        {"reviewerID": "U4", "asin": "I4", "overall": 5, "reviewText": "ok"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    ws = tmp_path / "ws"
    assert main(["ingest", "-w", str(ws), "--reviews", str(path), "-q"]) == 0
    q = Workspace(ws).read_table("quarantine")
    assert len(q) == 3
    stored = q.to_json()
    for secret in ("9876543210", "jane.doe", "example.com", "max@example.org", "Jane Roe", "Main St"):
        assert secret not in stored, secret
    assert "[phone]" in stored and "[email]" in stored
