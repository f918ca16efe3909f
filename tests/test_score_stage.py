"""The score stage: label columns, --threads, worker sizing and progress without a terminal."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from emorec.common import cpus
from emorec.jobs import pipeline
from emorec.jobs.cli import main
from emorec.jobs.store import Workspace
from emorec.sentiment.lexicon import vader_compound


@pytest.fixture(scope="module")
def lexicon_ws(tmp_path_factory):
    ws = tmp_path_factory.mktemp("score") / "ws"
    assert main(["run", "-w", str(ws), "--demo-users", "40", "--scorer", "lexicon", "--threads", "1", "-q"]) == 0
    return Workspace(ws)


def test_label_columns_are_stored_with_their_thresholds(lexicon_ws):
    scores = lexicon_ws.read_table("review_scores")
    reviews = lexicon_ws.read_table("reviews")
    assert set(scores.polarity_label.unique()) <= {"negative", "neutral", "positive"}
    assert scores.ekman_label.isna().all()  # the lexicon has no emotions
    text = (reviews.set_index("review_id").reindex(scores.review_id))
    from emorec.sentiment import review_text

    compound = vader_compound(review_text(text["title"], text["text"]).tolist())
    expected = np.where(compound >= 0.05, "positive", np.where(compound <= -0.05, "negative", "neutral"))
    expected[scores.is_empty.to_numpy()] = "neutral"
    assert (scores.polarity_label.to_numpy() == expected).all()
    assert lexicon_ws.table_metadata("review_scores")["thresholds"] == {"polarity": {"negative": -0.05, "positive": 0.05}}
    got = lexicon_ws.query("SELECT polarity_label, count(*) AS n FROM review_scores GROUP BY 1")
    assert got.n.sum() == len(scores)


def test_threads_must_be_positive(tmp_path):
    with pytest.raises(SystemExit):
        main(["score", "-w", str(tmp_path), "--threads", "0"])


def test_train_sentiment_long_reviews_must_be_a_count(tmp_path, capsys):
    from emorec.jobs.cli import build_parser

    assert build_parser().parse_args(["train-sentiment", "-w", str(tmp_path)]).augment_long_reviews is None  # the default share
    assert build_parser().parse_args(["train-sentiment", "-w", str(tmp_path), "--augment-long-reviews", "0"]).augment_long_reviews == 0
    assert build_parser().parse_args(["train-sentiment", "-w", str(tmp_path), "--augment-long-reviews", "1500"]).augment_long_reviews == 1500
    with pytest.raises(SystemExit):
        main(["train-sentiment", "-w", str(tmp_path), "--augment-long-reviews", "-1"])
    assert "--augment-long-reviews: must be at least 0, got -1" in capsys.readouterr().err


def test_workers_default_to_the_usable_cores(lexicon_ws, monkeypatch):
    seen = {}

    def fake_chunks(scorer, chunks, workers, progress=None):
        seen["workers"] = workers
        from emorec.sentiment.parallel import score_chunks

        yield from score_chunks(scorer, chunks, 1, progress)

    monkeypatch.setattr(pipeline, "score_chunks", fake_chunks)
    monkeypatch.setattr(pipeline, "PARALLEL_MIN", 0)
    monkeypatch.setattr(cpus, "available_cpus", lambda: 3)
    scorer = pipeline.resolve_scorer(lexicon_ws, "lexicon")
    monkeypatch.setattr(type(scorer), "version", "forced-rescore")
    pipeline.score(lexicon_ws, scorer)
    assert seen["workers"] == 3
    monkeypatch.setattr(type(scorer), "version", "forced-rescore-threads")
    pipeline.score(lexicon_ws, scorer, threads=2)  # --threads caps the pool
    assert seen["workers"] == 2


def test_progress_is_logged_per_chunk_without_a_terminal(lexicon_ws, monkeypatch, caplog):
    import emorec.common.progress as progress

    monkeypatch.setattr(pipeline, "SCORE_CHUNK", 100)
    original = progress.Progress.__init__

    def every_update(self, *args, **kwargs):
        original(self, *args, **{**kwargs, "every": 0.0})

    monkeypatch.setattr(progress.Progress, "__init__", every_update)
    scorer = pipeline.resolve_scorer(lexicon_ws, "lexicon")
    monkeypatch.setattr(type(scorer), "version", "forced-rescore-2")
    with caplog.at_level(logging.INFO, logger="emorec.jobs.pipeline"):
        res = pipeline.score(lexicon_ws, scorer, workers=1)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("score (lexicon):")]
    n = res.counts["scored"]
    assert len(lines) == -(-n // 100) and lines[-1].startswith(f"score (lexicon): {n:,} / {n:,} reviews (100%)")


def test_precision_reaches_the_transformer_and_is_refused_for_the_lexicon(lexicon_ws, tmp_path):
    from emorec.common.errors import ConfigError
    from emorec.jobs.cli import build_parser

    assert pipeline.resolve_scorer(lexicon_ws, "transformer", precision="bf16").precision == "bf16"
    assert pipeline.resolve_scorer(lexicon_ws, "transformer", quantize=True).precision == "int8"
    assert pipeline.resolve_scorer(lexicon_ws, "transformer").precision == "fp32"
    with pytest.raises(ConfigError, match="int8"):
        pipeline.resolve_scorer(lexicon_ws, "transformer", quantize=True, precision="bf16")
    with pytest.raises(ConfigError, match="only used by the transformer scorer, not 'lexicon'"):
        pipeline.resolve_scorer(lexicon_ws, "lexicon", precision="int8")
    for command in ("score", "run"):
        args = build_parser().parse_args([command, "-w", str(tmp_path), "--precision", "bf16"])
        assert args.precision == "bf16"
    with pytest.raises(SystemExit):
        main(["score", "-w", str(tmp_path), "--precision", "fp16"])
    from emorec.jobs.cli import _sentiment_training

    args = build_parser().parse_args(["train-sentiment", "-w", str(tmp_path), "--precision", "bf16"])
    assert _sentiment_training(args).precision == "bf16"
    assert _sentiment_training(build_parser().parse_args(["train-sentiment", "-w", str(tmp_path)])).precision == "fp32"
    with pytest.raises(SystemExit):  # int8 is for scoring, not training
        main(["train-sentiment", "-w", str(tmp_path), "--precision", "int8"])
