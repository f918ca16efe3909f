"""`emorec forget` is complete and crash-safe (issue 18, item 2): per-user evaluation outputs,
quarantined records whose text was cut before the user id, aggregates rebuilt without the person,
and a forget killed with a real SIGKILL during its retrain leaves nothing that serves the person."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pandas as pd
import pytest

from emorec.jobs.cli import main
from emorec.jobs.demo_shop import generate_demo_shop
from emorec.jobs.forget import PENDING_FILE
from emorec.jobs.pipeline import load_service
from emorec.jobs.store import KILL_ENV, Workspace

ROOT = Path(__file__).resolve().parents[1]
JANE = "P-JANE-7"


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("forget-shop")
    demo = generate_demo_shop(n_users=60, seed=11)
    paths = demo.write(folder / "demo")
    newest = int(pd.to_datetime(demo.reviews["timestamp"], utc=True).max().timestamp())
    items = demo.items["item_id"].tolist()
    lines = [json.dumps({"reviewerID": JANE, "asin": items[k], "overall": 1.0, "summary": "Awful",
                         "reviewText": "It broke after two days, terrible quality.", "unixReviewTime": newest - 86400 * k})
             for k in range(4)]
    # a long record, quarantined (bad rating), whose user id comes after 20,000 characters of text
    lines.append(json.dumps({"asin": items[5], "overall": "seven", "reviewText": "x" * 20_000, "reviewerID": JANE,
                             "unixReviewTime": newest}))
    # a review over the size cap, user id last as well
    lines.append(json.dumps({"asin": items[6], "overall": 2.0, "reviewText": "y" * 150_000, "reviewerID": JANE,
                             "unixReviewTime": newest}))
    pii = folder / "jane.jsonl"
    pii.write_text("\n".join(lines) + "\n")
    return {"reviews": Path(paths["reviews"]), "items": Path(paths["items"]), "jane": pii, "items_jane": items[:4]}


def run_shop(ws: Path, shop: dict) -> None:
    assert main(["run", "-w", str(ws), "-q", "--reviews", str(shop["reviews"]), str(shop["jane"]),
                 "--items", str(shop["items"]), "--scorer", "lexicon", "--model", "als", "--replace"]) == 0
    assert main(["monitor", "-w", str(ws), "-q", "--min-reviews", "1", "--z", "0.5"]) == 0


def mentions(ws: Path) -> dict[str, int]:
    """Rows of every table and evaluation output that still name Jane."""
    w = Workspace(ws)
    found = {}
    for t in w.tables():
        df = w.read_table(t)
        n = sum(int(df[c].astype(str).str.contains(JANE, regex=False).sum()) for c in df.columns
                if df[c].dtype == object or isinstance(df[c].dtype, pd.StringDtype))
        if n:
            found[t] = n
    for p in (ws / "evaluations").rglob("*.parquet") if (ws / "evaluations").exists() else []:
        if JANE in pd.read_parquet(p).to_csv():
            found[str(p)] = 1
    return found


def cli(ws: Path, *args: str, kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != KILL_ENV}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    if kill_at:
        env[KILL_ENV] = kill_at
    return subprocess.run([sys.executable, "-m", "emorec.jobs.cli", args[0], "-w", str(ws), *args[1:]], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_forget_is_complete(tmp_path, shop):
    ws = tmp_path / "ws"
    run_shop(ws, shop)
    w = Workspace(ws)
    per_user = ws / "evaluations" / "20260101T000000-abcdef" / "per_user.parquet"  # as `emorec evaluate` writes it
    per_user.parent.mkdir(parents=True)
    pd.DataFrame({"variant": ["A", "A"], "user_id": [JANE, "U00001"], "ndcg@10": [0.5, 0.25]}).to_parquet(per_user)
    q = w.read_table("quarantine")
    long_rows = q.loc[q["user_id"] == JANE]
    # the long records keep her id: in the user_id column, and in the record (values are cut, not the record)
    assert len(long_rows) == 2 and long_rows["record"].str.contains(JANE).all()
    assert (long_rows["record"].str.len() <= 10_100).all() and "text too long" in " ".join(long_rows["reason"])
    items_before = w.read_table("item_profiles").set_index("item_id")
    before = mentions(ws)
    assert {"reviews", "quarantine", "user_profiles", "recommendations", str(per_user)} <= set(before), before

    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["forget", "-w", str(ws), "--user", JANE]) == 0
    assert mentions(ws) == {}
    assert "rebuilt without them: item_profiles, alerts" in out.getvalue()
    assert pd.read_parquet(per_user)["user_id"].tolist() == ["U00001"]
    # item profiles no longer count her reviews: they equal profiles built afresh from what is left
    items_after = w.read_table("item_profiles").set_index("item_id")
    for item in shop["items_jane"]:
        assert items_after.loc[item, "n_reviews"] == items_before.loc[item, "n_reviews"] - 1
    rebuilt = w.read_table("item_profiles")
    assert main(["profile", "-w", str(ws), "-q"]) == 0
    pd.testing.assert_frame_equal(rebuilt, w.read_table("item_profiles"))
    # and the next run on the same files keeps her out, long records included
    run_shop(ws, shop)
    assert mentions(ws) == {} and JANE not in load_service(w).users_


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["model:recommender", "forget:tables"])
def test_a_killed_forget_never_serves_the_person_and_completes_on_rerun(tmp_path, shop, kill_at, caplog):
    ws = tmp_path / "ws"
    run_shop(ws, shop)
    w = Workspace(ws)
    assert JANE in load_service(w).users_
    res = cli(ws, "forget", "--user", JANE, kill_at=kill_at)  # SIGKILL during the retrain / before the tables
    assert res.returncode == -signal.SIGKILL, res.stderr
    assert (ws / PENDING_FILE).exists()
    assert not (ws / "models" / "recommender" / "CURRENT").exists()  # the model that knows her is unpublished
    # nothing serves, exports, queries or retrains on her until the erasure is complete
    for argv in (["recommend", "--user", JANE], ["recommend"], ["query", "SELECT * FROM reviews"], ["train"],
                 ["segment"], ["run", "--scorer", "lexicon"]):
        caplog.clear()
        assert main([argv[0], "-w", str(ws), *argv[1:]]) == 2, argv
        assert "has not finished" in caplog.text and "emorec forget" in caplog.text
    # rerunning forget (no id needed) completes it from the recorded hashes
    res = cli(ws, "forget")
    assert res.returncode == 0, res.stderr
    assert "completed the erasure" in res.stdout and "retrained" in res.stdout
    assert not (ws / PENDING_FILE).exists()
    assert mentions(ws) == {}
    service = load_service(w)
    assert JANE not in service.users_ and len(service.users_) > 0
    for version in w.model_versions("recommender"):
        assert JANE not in pd.read_parquet(version / "users.parquet").iloc[:, 0].tolist()
    assert main(["recommend", "-w", str(ws), "-q"]) == 0
    assert JANE not in set(w.read_table("recommendations")["user_id"])
    statuses = w.read_table("runs").query("command == 'forget'")["status"].tolist()
    assert statuses == ["killed", "ok"]
