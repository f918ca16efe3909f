"""End-to-end: the CLI on the demo shop, on the real Amazon file, and on bad input."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pytest

from emorec import sentiment
from emorec.jobs.cli import main
from emorec.jobs.store import Workspace


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory):
    ws = tmp_path_factory.mktemp("demo") / "ws"
    assert main(["run", "-w", str(ws), "--demo-users", "150", "-q"]) == 0
    return Workspace(ws)


def test_demo_run_writes_every_table(demo_ws):
    assert set(demo_ws.tables()) >= {"reviews", "quarantine", "items", "review_scores", "user_profiles",
                                     "item_profiles", "recommendations", "runs"}
    reviews = demo_ws.read_table("reviews")
    recs = demo_ws.read_table("recommendations")
    users = demo_ws.read_table("user_profiles")
    assert len(users) == reviews.user_id.nunique() == recs.user_id.nunique() == 150
    assert (recs.groupby("user_id").size() == 10).all()
    seen = set(zip(reviews.user_id, reviews.item_id))
    assert not any((u, i) in seen for u, i in zip(recs.user_id, recs.item_id))
    scores = demo_ws.read_table("review_scores")
    assert len(scores) == len(reviews) and scores.valence.between(-1, 1).all()
    assert demo_ws.table_metadata("review_scores")["schema_version"] == sentiment.SCHEMA_VERSION
    runs = demo_ws.read_table("runs")
    assert runs.status.tolist() == ["ok"] and runs.data_fingerprint.iloc[0]


def test_default_model_is_the_hybrid_on_the_demo_shop(demo_ws, capsys):
    from emorec.jobs import pipeline

    assert pipeline.auto_model(demo_ws)[0] == "hybrid"
    recs = demo_ws.read_table("recommendations")
    assert set(recs.source) <= {"hybrid", "popular"} and (recs.source == "hybrid").all()
    assert recs.explanation.notna().all()  # the hybrid explains every item


def test_auto_model_falls_back_to_als_where_the_hybrid_does_not_fit(demo_ws, tmp_path, monkeypatch, capsys):
    from emorec.jobs import pipeline

    model, reason = pipeline.auto_model(demo_ws, pipeline.AutoBudget(memory_gb=0.1))
    assert model == "als" and "the hybrid would need about" in reason and "over the budget of 0.1 GB" in reason
    model, reason = pipeline.auto_model(demo_ws)
    assert model == "hybrid" and "within the budget of 8 GB and 60 min" in reason
    # the CLI's budget reaches the choice, and the run summary says why
    import shutil

    small = tmp_path / "budget-ws"
    shutil.copytree(demo_ws.root, small)
    assert main(["train", "-w", str(small), "--budget-gb", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "--model auto chose als" in out and "over the budget of 0.05 GB and 60 min" in out
    # a shop whose customers each wrote one review: the hybrid has no "next review" to learn from
    path = tmp_path / "one_each.csv"
    pd.DataFrame({"user_id": [f"u{i}" for i in range(30)], "item_id": [f"i{i % 7}" for i in range(30)],
                  "rating": 5, "text": "great", "timestamp": "2024-01-01"}).to_csv(path, index=False)
    ws = tmp_path / "ws"
    assert main(["run", "-w", str(ws), "--reviews", str(path), "--scorer", "lexicon"]) == 0
    out = capsys.readouterr().out
    assert "hybrid could not train" in out and "trained als instead" in out and "--model auto chose hybrid" in out
    assert set(Workspace(ws).read_table("recommendations").source) <= {"als", "popular"}
    # without scores the choice is ALS, and --model-params then needs an explicit --model
    ws2 = Workspace(tmp_path / "ws2")
    assert main(["ingest", "-w", str(ws2.root), "--reviews", str(path)]) == 0
    assert pipeline.auto_model(ws2) == ("als", "no review scores (run `emorec score` first for the hybrid)")
    assert main(["train", "-w", str(ws2.root), "--model-params", '{"n_estimators": 5}']) == 2


def test_demo_text_sentiment_agrees_with_stars(demo_ws):
    scored = demo_ws.query("SELECT r.rating, s.valence FROM reviews r JOIN review_scores s USING (review_id)")
    assert scored.rating.corr(scored.valence, method="spearman") > 0.3


def test_rescoring_reuses_unchanged_reviews(demo_ws, capsys):
    assert main(["score", "-w", str(demo_ws.root)]) == 0
    out = capsys.readouterr().out
    assert "scored=0" in out and f"reused={len(demo_ws.read_table('reviews')):,}" in out


def test_recommend_one_user_prints_list(demo_ws, capsys):
    user = demo_ws.read_table("reviews").user_id.iloc[0]
    assert main(["recommend", "-w", str(demo_ws.root), "--user", user, "-n", "3", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["rank"] for r in rows] == [1, 2, 3] and all(r["user_id"] == user for r in rows)
    assert all(r["title"] for r in rows)


def test_recommend_one_user_prints_the_evidence(demo_ws, capsys):
    user = demo_ws.read_table("reviews").user_id.iloc[0]
    assert main(["recommend", "-w", str(demo_ws.root), "--user", user, "-n", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{user}: 3 items" and out[1].startswith("  1. ")
    assert all(line.startswith("     evidence [") for line in out[3::3]) and len(out) == 10


def test_similar_items_command_prints_titles(demo_ws, capsys, caplog):
    item = demo_ws.query("SELECT item_id, count(*) AS n FROM reviews GROUP BY 1 ORDER BY n DESC LIMIT 1").item_id.iloc[0]
    assert main(["similar", "-w", str(demo_ws.root), "--item", item, "-n", "4", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4] and {r["item_id"] for r in rows} == {item}
    assert item not in {r["similar_item_id"] for r in rows} and all(r["title"] for r in rows)
    assert main(["similar", "-w", str(demo_ws.root), "--item", item, "-n", "2"]) == 0
    assert "the hybrid's ease generator" in capsys.readouterr().out
    assert main(["similar", "-w", str(demo_ws.root), "--item", "no-such-item"]) == 2
    assert "'no-such-item' is unknown to the trained model" in caplog.text


def test_a_train_option_the_model_does_not_have_is_an_error(tmp_path, caplog):
    assert main(["train", "-w", str(tmp_path / "ws"), "--model", "ease", "--iterations", "3"]) == 2
    assert "--iterations does not apply to the ease model (its parameters: l2, max_memory_gb)" in caplog.text


def test_query_and_runs_commands(demo_ws, capsys):
    assert main(["query", "-w", str(demo_ws.root), "SELECT count(*) AS n FROM recommendations"]) == 0
    assert "1500" in capsys.readouterr().out
    assert main(["runs", "-w", str(demo_ws.root)]) == 0
    assert "run" in capsys.readouterr().out


def test_stage_before_its_input_is_a_clear_error(tmp_path, caplog):
    assert main(["profile", "-w", str(tmp_path / "empty")]) == 2
    assert "emorec ingest" in caplog.text


def _amazon_line(i: int, **over) -> str:
    rec = {"reviewerID": f"U{i % 20}", "asin": f"I{i % 7}", "reviewerName": "Jane Secret", "helpful": [0, 0],
           "reviewText": f"review number {i} is great", "overall": 5.0, "summary": "ok",
           "unixReviewTime": 1393545600 + i}
    rec.update(over)
    return json.dumps(rec)


def test_three_broken_lines_among_100(tmp_path, capsys):
    lines = [_amazon_line(i) for i in range(100)]
    lines[10] = "{not json"
    lines[50] = _amazon_line(50, asin="")
    lines[90] = _amazon_line(90, overall=9)
    path = tmp_path / "reviews.json.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    ws = tmp_path / "ws"
    assert main(["run", "-w", str(ws), "--reviews", str(path)]) == 0
    out = capsys.readouterr().out
    assert "reviews=97" in out and "quarantined=3" in out
    q = Workspace(ws).read_table("quarantine")
    assert q.line.tolist() == [11, 51, 91]
    assert q.field.tolist()[1:] == ["item_id", "rating"]
    stored = Workspace(ws).query("SELECT * FROM reviews").to_json(date_format="iso") + q.to_json()
    assert "Jane Secret" not in stored


def test_missing_required_column_fails_naming_it(tmp_path, caplog):
    path = tmp_path / "r.csv"
    pd.DataFrame({"customer": ["a"], "item_id": ["x"], "text": ["fine"]}).to_csv(path, index=False)
    assert main(["ingest", "-w", str(tmp_path / "ws"), "--reviews", str(path)]) == 2
    assert "user_id" in caplog.text and "customer" in caplog.text
    assert main(["ingest", "-w", str(tmp_path / "ws"), "--reviews", str(path), "--map", "user=customer"]) == 0


@pytest.mark.slow
@pytest.mark.realdata
def test_amazon_end_to_end(amazon_file, tmp_path, capsys):
    ws = Workspace(tmp_path / "ws")
    # The lexicon keeps this loader-to-lists check fast; the transformer path is covered on the demo shop.
    assert main(["run", "-w", str(ws.root), "--reviews", str(amazon_file), "--scorer", "lexicon"]) == 0
    reviews = ws.read_table("reviews")
    assert (len(reviews), reviews.user_id.nunique(), reviews.item_id.nunique()) == (10_261, 1_429, 900)
    assert len(ws.read_table("quarantine")) == 0
    recs = ws.read_table("recommendations")
    assert recs.user_id.nunique() == 1_429 and len(recs) == 14_290
    seen = set(zip(reviews.user_id, reviews.item_id))
    assert not any((u, i) in seen for u, i in zip(recs.user_id, recs.item_id))
    assert "reviewerName" not in reviews.columns


def test_train_sentiment_publishes_the_shop_ngram_head_with_the_model(demo_ws, tmp_path):
    """The workspace model folder carries the n-gram head that the dev users chose (and its
    manifest covers it); without the head, no head files are published. Long synthetic reviews
    reach the training when asked for."""
    import shutil
    from dataclasses import replace

    from emorec.jobs import pipeline
    from emorec.sentiment.encoder import EmotionEncoder, EncoderConfig, load_base
    from emorec.sentiment.finetune import LONG_REVIEW_SHARE, MAX_LONG_REVIEWS, SHOP_TRAINING

    ws = Workspace(shutil.copytree(demo_ws.root, tmp_path / "ws"))  # the shared demo workspace keeps no model
    base = tmp_path / "tiny"
    EmotionEncoder(load_base()[1], EncoderConfig(version="test-untrained"), seed=3).save_pretrained(base)
    training = replace(SHOP_TRAINING, epochs=1, max_steps=2, eval_every=2, max_length=32, threads=1)
    res = pipeline.train_sentiment(ws, training, max_train=300, base_model=base, version="with-head")
    folder = ws.model_path(pipeline.SENTIMENT_MODEL)
    report = json.loads((folder / "eval.json").read_text())
    assert set(report["ngram_blend_dev_macro_f1"]) == {"1.0", "0.9", "0.8", "0.7", "0.6", "0.5"}
    has_head = report["ngram_blend"] is not None
    assert (folder / "ngram_head.safetensors").exists() == has_head
    assert ("n-gram head" in res.notes[0]) == has_head
    assert report["augment_long_reviews"] == min(MAX_LONG_REVIEWS, round(LONG_REVIEW_SHARE * report["split"]["train"]))  # the default
    pipeline.train_sentiment(ws, training, max_train=300, base_model=base, version="no-head", ngram_head=False, long_reviews=10)
    folder = ws.model_path(pipeline.SENTIMENT_MODEL)
    report = json.loads((folder / "eval.json").read_text())
    assert report["ngram_blend"] is None and report["augment_long_reviews"] == 10
    assert not (folder / "ngram_head.json").exists() and not (folder / "ngram_head.safetensors").exists()
