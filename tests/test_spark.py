"""The Spark engine (``jobs.spark``) against the embedded pipeline on the demo shop.

One session-scoped ``local[2]`` SparkSession (UI off, 4 shuffle partitions, local dirs in
the test's temp folder). Skips when PySpark or Java is absent.

The default run keeps one Spark run (the session fixture ``runs``: ingest, score and profile on
Spark and embedded, compared table by table) and one Spark recommend (ALS); the tests that run
Spark again (other models, resumption, forgetting, quality) are marked ``slow``.
"""

from __future__ import annotations

import math
import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

pytestmark = [
    pytest.mark.spark,
    # PySpark 4.x's own pandas-3 deprecation noise (its internals, not emorec's code)
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
]

pyspark = pytest.importorskip("pyspark", reason="PySpark is not installed (pip install 'emorec[spark]')")
if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
    pytest.skip("Java is not installed (Spark 4 needs Java 17)", allow_module_level=True)

from emorec.jobs import pipeline  # noqa: E402
from emorec.jobs.demo_shop import generate_demo_shop  # noqa: E402
from emorec.jobs.spark.pipeline import SparkPipeline  # noqa: E402
from emorec.jobs.store import Workspace  # noqa: E402
from emorec.recommender import ServiceConfig  # noqa: E402

N_USERS = 200


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from emorec.jobs.spark.session import get_session

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    local = tmp_path_factory.mktemp("spark-local")
    session = get_session("local[2]", {
        "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2",
        "spark.local.dir": str(local), "spark.sql.warehouse.dir": str(local / "warehouse"),
        "spark.driver.memory": "1g",
    })
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def shop():
    return generate_demo_shop(n_users=N_USERS, seed=7)


@pytest.fixture(scope="session")
def inputs(shop, tmp_path_factory):
    """The demo reviews in two files, with a bad row, an in-file duplicate and a review id
    repeated in the second file (so the quarantine paths are compared too)."""
    folder = tmp_path_factory.mktemp("spark-inputs")
    reviews = shop.reviews.drop(columns=["source", "line"])
    half = len(reviews) // 2
    a, b = reviews.iloc[:half].copy(), reviews.iloc[half:].copy()
    bad = a.iloc[[3]].assign(rating=9.0, review_id="BAD1")
    again = a.iloc[[5]].assign(text="the same id, another text")  # same review_id in file b
    a = pd.concat([a, bad, a.iloc[[7]]], ignore_index=True)  # + exact duplicate of row 7
    b = pd.concat([b, again], ignore_index=True)
    paths = [folder / "part-a.csv", folder / "part-b.csv"]
    for frame, path in zip((a, b), paths):
        frame.to_csv(path, index=False)
    shop.items.to_csv(folder / "items.csv", index=False)
    return paths, folder / "items.csv"


@pytest.fixture(scope="session")
def runs(spark, inputs, tmp_path_factory):
    """The whole pipeline, embedded and on Spark, on the same files with the lexicon scorer."""
    sources, items = inputs
    base = tmp_path_factory.mktemp("spark-ws")
    emb, spk = Workspace(base / "embedded"), Workspace(base / "spark")
    scorer = pipeline.resolve_scorer(emb, "lexicon")
    stages = SparkPipeline(spark)
    results = {}
    for name, ws, eng in (("embedded", emb, pipeline), ("spark", spk, stages)):
        results[name] = [eng.ingest(ws, sources, None, items), eng.score(ws, scorer), eng.profile(ws)]
    return emb, spk, results


def _assert_same(a: pd.DataFrame, b: pd.DataFrame, rtol: float = 0.0) -> float:
    """Same columns, dtypes and rows; floats within ``rtol`` (NaN where NaN). Returns the max abs diff."""
    assert list(a.columns) == list(b.columns)
    assert a.dtypes.astype(str).tolist() == b.dtypes.astype(str).tolist()
    assert len(a) == len(b)
    worst = 0.0
    for c in a.columns:
        if a[c].dtype.kind == "f":
            x, y = a[c].to_numpy(np.float64, na_value=np.nan), b[c].to_numpy(np.float64, na_value=np.nan)
            np.testing.assert_array_equal(np.isnan(x), np.isnan(y), err_msg=c)
            ok = ~np.isnan(x)
            np.testing.assert_allclose(y[ok], x[ok], rtol=rtol, atol=0, err_msg=c)
            if ok.any():
                worst = max(worst, float(np.abs(x[ok] - y[ok]).max()))
        else:
            pd.testing.assert_series_equal(a[c], b[c], check_names=True, obj=c)
    return worst


def test_ingest_same_tables_and_counts(runs):
    emb, spk, results = runs
    _assert_same(emb.read_table("reviews"), spk.read_table("reviews"))
    q = spk.read_table("quarantine")
    _assert_same(emb.read_table("quarantine"), q)
    assert set(q["field"]) >= {"rating", "review_id"} and q["reason"].str.startswith("duplicate of line").any()
    assert results["spark"][0].counts == results["embedded"][0].counts
    assert results["spark"][0].counts["read"] == len(q) + len(spk.read_table("reviews"))
    _assert_same(emb.read_table("items"), spk.read_table("items"))


def test_scores_identical(runs):
    emb, spk, results = runs
    assert _assert_same(emb.read_table("review_scores"), spk.read_table("review_scores")) == 0.0
    assert spk.table_metadata("review_scores") == emb.table_metadata("review_scores")
    assert results["spark"][1].counts == results["embedded"][1].counts


def test_user_profiles_identical(runs):
    emb, spk, _ = runs
    assert _assert_same(emb.read_table("user_profiles"), spk.read_table("user_profiles")) == 0.0
    assert spk.table_metadata("user_profiles") == emb.table_metadata("user_profiles")


def test_item_profiles_equal_to_float_tolerance(runs):
    emb, spk, _ = runs
    a, b = emb.read_table("item_profiles"), spk.read_table("item_profiles")
    assert a["category"].notna().all()  # shrinkage toward categories is exercised
    assert _assert_same(a, b, rtol=1e-12) < 1e-12
    assert spk.table_metadata("item_profiles") == emb.table_metadata("item_profiles")


@pytest.mark.slow
def test_item_shrinkage_without_catalog_uses_global_mean(spark, runs, tmp_path):
    """Without an item table every item shrinks toward the global mean; still equal."""
    emb, spk, _ = runs
    pair = []
    for src in (emb, spk):
        ws = Workspace(tmp_path / ("e" if src is emb else "s"))
        for name in ("reviews", "review_scores"):
            ws.write_table(name, src.read_table(name), src.table_metadata(name))
        pair.append(ws)
    pipeline.profile(pair[0])
    SparkPipeline(spark).profile(pair[1])
    a, b = pair[0].read_table("item_profiles"), pair[1].read_table("item_profiles")
    assert a["category"].isna().all()
    _assert_same(a, b, rtol=1e-12)


@pytest.mark.slow
def test_score_reuses_unchanged_rows(spark, runs):
    _, spk, _ = runs
    before = spk.read_table("review_scores")
    res = SparkPipeline(spark).score(spk, pipeline.resolve_scorer(spk, "lexicon"))
    assert res.counts["reused"] == len(before) and res.counts["scored"] == 0
    _assert_same(before, spk.read_table("review_scores"))


@pytest.mark.slow
def test_recommendation_quality_within_noise(spark, shop, tmp_path):
    """Leave-last-out on the demo shop: MLlib ALS vs implicit's ALS, HR@10 within noise."""
    from emorec.recommender.metrics import evaluate_lists
    from emorec.recommender.splits import leave_last_out

    split = leave_last_out(shop.reviews)
    train, held = split.train, split.test
    src = tmp_path / "train.csv"
    train.drop(columns=["source", "line"]).to_csv(src, index=False)
    config = ServiceConfig(params={"factors": 32, "iterations": 10, "seed": 1})
    scores = {}
    for name, eng in (("embedded", pipeline), ("spark", SparkPipeline(spark))):
        ws = Workspace(tmp_path / name)
        eng.ingest(ws, [src])
        eng.train(ws, config)
        eng.recommend(ws, 10)
        recs = ws.read_table("recommendations")
        assert (recs.groupby("user_id").size() == 10).all()
        seen = set(zip(train["user_id"], train["item_id"]))
        assert not any(p in seen for p in zip(recs["user_id"], recs["item_id"]))
        per_user = evaluate_lists(recs, held, ks=(10,))
        scores[name] = (float(per_user["hr@10"].mean()), float(per_user["ndcg@10"].mean()))
    print(f"\nleave-last-out on the demo shop ({N_USERS} users): "
          + ", ".join(f"{k} HR@10 {v[0]:.3f} NDCG@10 {v[1]:.3f}" for k, v in scores.items()))
    (he, _), (hs, _) = scores["embedded"], scores["spark"]
    noise = 3 * math.sqrt((he * (1 - he) + hs * (1 - hs)) / len(held))
    assert abs(hs - he) <= noise, scores
    n_items = shop.reviews["item_id"].nunique()
    assert hs > 10 / n_items, scores  # above the hit rate of random lists


@pytest.mark.parametrize("model", ["als", pytest.param("popular", marks=pytest.mark.slow), pytest.param("hybrid", marks=pytest.mark.slow)])
def test_spark_recommend_equals_embedded_on_the_same_model(spark, runs, model):
    """The Spark-trained artifact is the standard one, and the Spark recommend stage writes
    exactly the lists the embedded stage writes from it."""
    _, spk, _ = runs
    stages = SparkPipeline(spark)
    params = {"hybrid": {"n_estimators": 20}, "als": {"factors": 8, "iterations": 3}}.get(model, {})
    stages.train(spk, ServiceConfig(model=model, params=params))
    service = pipeline.load_service(spk)
    assert service.config.model == model
    pipeline.recommend(spk, 5)
    embedded = spk.read_table("recommendations")
    res = stages.recommend(spk, 5)
    got = spk.read_table("recommendations")
    assert res.counts["users"] == len(service.users_) and len(got) == 5 * len(service.users_)
    pd.testing.assert_frame_equal(got, embedded)


@pytest.mark.slow
def test_hybrid_trained_on_spark_is_the_embedded_one(spark, runs):
    """Training candidates made per partition (several batches and partitions, a sampled round):
    the Spark-trained hybrid learns from the very rows the embedded engine makes, so the ranker
    and every list are the same."""
    emb, spk, _ = runs
    params = {"n_estimators": 20, "batch_size": 48, "max_train_queries": 300, "seed": 3}
    config = ServiceConfig(model="hybrid", params=params)
    res = SparkPipeline(spark).train(spk, config)
    pipeline.train(emb, config)
    on_spark, embedded = pipeline.load_service(spk), pipeline.load_service(emb)
    a, b = on_spark.model_, embedded.model_
    assert a.training_ == b.training_ and a.training_["round_queries"] == [150, 150]
    assert a.booster_.model_to_string() == b.booster_.model_to_string()
    users = embedded.users_.ids.tolist()
    pd.testing.assert_frame_equal(on_spark.recommend(users, n=10), embedded.recommend(users, n=10))
    assert res.counts["train_users"] == len(users)
    assert not (spk.root / "partial").exists()  # the round stages are cleaned up


def test_session_options(spark):
    from emorec.jobs.spark.session import get_session, parse_conf

    assert parse_conf(["spark.a=1", "spark.b = x=y"]) == {"spark.a": "1", "spark.b": "x=y"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_conf(["spark.executor.memory"])
    same = get_session("local[1]", {"spark.sql.shuffle.partitions": "3"})  # the active one is honoured
    assert same is spark and spark.conf.get("spark.sql.shuffle.partitions") == "3"
    spark.conf.set("spark.sql.shuffle.partitions", "4")


def test_bad_review_file_raises_naming_it(spark, tmp_path):
    from emorec.jobs.loaders import SchemaError

    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,2\n")
    with pytest.raises(SchemaError, match="user_id"):
        SparkPipeline(spark).ingest(Workspace(tmp_path / "ws"), [bad])


@pytest.mark.slow
def test_forgotten_users_stay_out(spark, inputs, tmp_path):
    """A forgotten user's reviews are dropped by the Spark ingest too (right to erasure)."""
    from emorec.jobs.forget import forget_users

    sources, items = inputs
    ws = Workspace(tmp_path / "ws")
    pipeline.ingest(ws, sources, None, items)
    user = ws.read_table("reviews")["user_id"].iloc[0]
    forget_users(ws, [user], retrain=False)
    emb = pipeline.ingest(ws, sources, None, items, replace=True)
    expected = ws.read_table("reviews")
    res = SparkPipeline(spark).ingest(ws, sources, None, items, replace=True)
    assert res.counts == emb.counts and res.counts["forgotten"] > 0
    got = ws.read_table("reviews")
    assert user not in set(got["user_id"])
    _assert_same(expected, got)


@pytest.mark.slow
def test_transformer_scorer_on_spark_matches_embedded(spark, shop, tmp_path):
    """The default (transformer) scorer through mapInPandas: same scores as embedded."""
    from emorec.sentiment.transformer import SHIPPED_MODEL

    if not (SHIPPED_MODEL / "config.json").exists():
        pytest.skip(f"the shipped emotion model is absent at {SHIPPED_MODEL}")
    src = tmp_path / "few.csv"
    shop.reviews.head(40).drop(columns=["source", "line"]).to_csv(src, index=False)
    emb, spk = Workspace(tmp_path / "e"), Workspace(tmp_path / "s")
    scorer = pipeline.resolve_scorer(emb, "transformer")
    pipeline.ingest(emb, [src])
    pipeline.score(emb, scorer)
    stages = SparkPipeline(spark)
    stages.ingest(spk, [src])
    stages.score(spk, pipeline.resolve_scorer(spk, "transformer"))
    a, b = emb.read_table("review_scores"), spk.read_table("review_scores")
    assert a["emo_joy"].notna().all()
    _assert_same(a, b, rtol=1e-4)


class _Killed(Exception):
    pass


@pytest.mark.slow
def test_spark_scoring_checkpoints_waves_and_resumes(spark, runs, inputs, tmp_path, monkeypatch):
    """A driver killed mid-scoring keeps its scored waves; Spark and the embedded stage resume them."""
    import emorec.jobs.spark.score as spark_score
    import emorec.jobs.store as store

    emb, _, _ = runs
    want = emb.read_table("review_scores")
    sources, items = inputs
    scorer = pipeline.resolve_scorer(emb, "lexicon")
    monkeypatch.setattr(spark_score, "SCORE_WAVE_ROWS", 300)  # ~6 waves on this shop
    waves = {"n": 0}

    def crash_after_two(tag):
        if tag == "spark-score:wave":
            waves["n"] += 1
            if waves["n"] == 2:
                raise _Killed

    for resume_with in ("spark", "embedded"):
        ws = Workspace(tmp_path / resume_with)
        pipeline.ingest(ws, sources, None, items)
        waves["n"] = 0
        monkeypatch.setattr(store, "crash_point", crash_after_two)
        with pytest.raises(_Killed):
            SparkPipeline(spark).score(ws, scorer)
        monkeypatch.setattr(store, "crash_point", lambda tag: None)
        assert not ws.has_table("review_scores")
        parts = ws.read_parts("review_scores", pipeline.checkpoint_key(scorer))
        assert len(parts) == 2 and 0 < sum(map(len, parts)) < len(want)
        engine = SparkPipeline(spark) if resume_with == "spark" else pipeline
        res = engine.score(ws, scorer)
        assert res.counts["resumed"] >= sum(map(len, parts)) and res.counts["reused"] == 0
        assert res.counts["resumed"] + res.counts["scored"] == len(want)
        assert _assert_same(want, ws.read_table("review_scores")) == 0.0
        assert not (ws.root / "partial").exists()
