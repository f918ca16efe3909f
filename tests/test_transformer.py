"""Transformer scorer and shop fine-tuning, on a tiny untrained adapter (fast, offline)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from emorec.common.errors import ArtifactError, ConfigError, InputError
from emorec.sentiment.aspects import AspectConfig
from emorec.sentiment.encoder import EmotionEncoder, EncoderConfig, load_base
from emorec.sentiment.finetune import SHOP_TRAINING, finetune_polarity, split_by_user
from emorec.sentiment.labels import EKMAN_GROUPS
from emorec.sentiment.schema import EKMAN_COLUMNS, EMOTION_COLUMNS, FEATURE_COLUMNS
from emorec.sentiment.transformer import TransformerScorer


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "adapter"
    _, bert = load_base()
    EmotionEncoder(bert, EncoderConfig(version="test-untrained"), seed=3).save_pretrained(path)
    return path


def test_adapter_is_small_and_roundtrips(tiny_model):
    assert (tiny_model / "adapter.safetensors").stat().st_size < 5_000_000
    model, _tok = EmotionEncoder.from_pretrained(tiny_model)
    assert model.config.version == "test-untrained" and len(model.config.emotion_labels) == 28


def test_scorer_schema_and_bad_inputs(tiny_model):
    scorer = TransformerScorer(tiny_model, aspects=AspectConfig().with_extra({"sound": ["sound"]}))
    texts = ["great sound but the cable broke", "", "😍😍", "x " * 50_000, "Das ist nicht gut", "\x00\x07 ok", "fine"]
    df = scorer.score(texts)
    assert list(df.columns) == list(scorer.columns) and len(df) == len(texts)
    assert list(df.columns)[: len(FEATURE_COLUMNS)] == list(FEATURE_COLUMNS)
    np.testing.assert_allclose(df[["p_negative", "p_neutral", "p_positive"]].sum(axis=1), 1.0, atol=1e-5)
    assert df.valence.between(-1, 1).all()
    nonempty = ~df.is_empty
    assert df.is_empty.tolist() == [False, True, False, False, False, False, False]
    assert df.loc[nonempty, list(EMOTION_COLUMNS) + list(EKMAN_COLUMNS)].notna().all().all()
    assert df.loc[~nonempty, list(EMOTION_COLUMNS)].isna().all().all()
    assert df.asp_sound_mentions[0] == 1 and df.asp_durability_mentions[0] == 1
    assert df.asp_sound_sentiment.between(-1, 1).sum() == 1
    # Ekman groups are the max of their members: every group, the many-member ones included
    for group, members in EKMAN_GROUPS.items():
        members_max = df.loc[nonempty, [f"emo_{m}" for m in members]].max(axis=1)
        np.testing.assert_allclose(df.loc[nonempty, f"ekman_{group}"], members_max, rtol=1e-6, err_msg=group)
    # so a group is not just its namesake label: joy's 12 members lift it above emo_joy on some text
    assert (df.loc[nonempty, "ekman_joy"] > df.loc[nonempty, "emo_joy"] + 1e-6).any()
    # a model saved without thresholds: the argmax of the head decides, no Ekman label
    assert scorer.thresholds["polarity"] is None
    probs = df.loc[nonempty, ["p_negative", "p_neutral", "p_positive"]].to_numpy()
    assert df.loc[nonempty, "polarity_label"].tolist() == [("negative", "neutral", "positive")[i] for i in probs.argmax(1)]
    assert df.polarity_label[1] == "neutral" and df.ekman_label.isna().all()


def _with_thresholds(src, dst, band, ekman):
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["polarity_thresholds"] = band
    cfg.setdefault("extra", {})["group_thresholds"] = {"ekman": ekman}
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def test_labels_follow_the_stored_thresholds(tiny_model, tmp_path):
    texts = ["great sound", "it broke", "", "a cable", "okay I guess"]
    plain = TransformerScorer(tiny_model).score(texts)
    v = plain.valence.to_numpy()
    lo, hi = float(np.sort(v[:2])[0]) + 1e-4, float(np.sort(v[:2])[1]) - 1e-4  # a band between two valences
    lo, hi = min(lo, hi), max(lo, hi)
    ekman = {"anger": 0.9, "disgust": 0.9, "fear": 0.9, "joy": 0.9, "sadness": 0.9, "surprise": 0.9, "neutral": 0.01}
    folder = _with_thresholds(tiny_model, tmp_path / "m", {"negative": lo, "positive": hi}, ekman)
    scorer = TransformerScorer(folder)
    assert scorer.thresholds["polarity"] == {"negative": lo, "positive": hi} and scorer.thresholds["ekman"] == ekman
    assert scorer.model_version != TransformerScorer(tiny_model).model_version  # new thresholds never reuse cached scores
    df = scorer.score(texts)
    np.testing.assert_allclose(df.valence, v, atol=1e-6)
    expected = ["negative" if x <= lo else "positive" if x >= hi else "neutral" for x in v]
    expected[2] = "neutral"  # the empty review
    assert df.polarity_label.tolist() == expected
    # neutral's threshold is tiny, every other group's is high: the label is the group with the highest p / t
    assert df.ekman_label[[0, 1, 3, 4]].tolist() == ["neutral"] * 4 and df.ekman_label.isna()[2]
    bad = _with_thresholds(tiny_model, tmp_path / "bad", {"negative": 0.5, "positive": -0.5}, ekman)
    with pytest.raises(ConfigError, match="polarity_thresholds"):
        _ = TransformerScorer(bad).thresholds


def test_progress_threads_and_precision(tiny_model):
    texts = ["one", "", "two three", "four five six"] * 5
    calls = []
    scorer = TransformerScorer(tiny_model, threads=1, max_tokens=16)
    before = torch.get_num_threads()
    scorer.score(texts, progress=calls.append)
    assert sum(calls) == len(texts) and len(calls) > 2  # per batch, not once at the end
    assert torch.get_num_threads() == before  # the scorer's threads only while it scores
    with pytest.raises(ConfigError, match="precision"):
        TransformerScorer(tiny_model, precision="fp8")
    with pytest.raises(ConfigError, match="threads"):
        TransformerScorer(tiny_model, threads=0)
    bf16 = TransformerScorer(tiny_model, precision="bf16")
    assert bf16.version.endswith("-bf16")
    np.testing.assert_allclose(bf16.score(texts[:4]).p_positive, scorer.score(texts[:4]).p_positive, atol=0.05)


def test_concurrent_streams_score_the_same_in_input_order(tiny_model):
    texts = [("word " * (i % 13)).strip() or "ok" for i in range(40)] + ["", "a longer review about the strap and the case"]
    one = TransformerScorer(tiny_model, threads=2, streams=1, max_tokens=24)
    assert one.resolved_streams() == 1
    assert TransformerScorer(tiny_model, threads=2).resolved_streams() == 2  # the default on 2 threads
    assert TransformerScorer(tiny_model, threads=1).resolved_streams() == 1
    assert TransformerScorer(tiny_model, threads=2, precision="bf16").resolved_streams() == 2  # autocast runs in each stream
    with pytest.raises(ConfigError, match="streams"):
        TransformerScorer(tiny_model, streams=0)
    expected = one.score(texts)
    before = torch.get_num_threads()
    for streams in (2, 3):
        calls = []
        got = TransformerScorer(tiny_model, threads=2, streams=streams, max_tokens=24).score(texts, progress=calls.append)
        assert torch.get_num_threads() == before
        assert sum(calls) == len(texts) and len(calls) > 3  # per batch, the empty review counted too
        pd_cols = [c for c in expected.columns if expected[c].dtype.kind == "f"]
        np.testing.assert_allclose(got[pd_cols].to_numpy(), expected[pd_cols].to_numpy(), atol=1e-5, err_msg=str(streams))
        assert got.polarity_label.tolist() == expected.polarity_label.tolist()


def test_encode_batches_streams_keep_batch_order_and_raise_worker_errors():
    from emorec.sentiment.encoder import encode_batches, length_batches

    class Echo(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, input_ids, mask):
            if (input_ids == 99).any():
                raise ValueError("token 99")
            return {"sum": (input_ids * mask).sum(1).float() * self.w}

    ids = [[1] * (1 + i % 7) for i in range(30)]
    order = [idx.tolist() for idx in length_batches([len(x) for x in ids], max_tokens=12, max_batch=64)]
    before = torch.get_num_threads()
    for streams in (1, 2, 4):
        got = list(encode_batches(Echo(), ids, max_tokens=12, streams=streams))
        assert [idx.tolist() for idx, _, _ in got] == order
        for idx, out, _ in got:
            assert out["sum"].tolist() == [float(len(ids[i])) for i in idx]
    with pytest.raises(ValueError, match="token 99"):
        list(encode_batches(Echo(), [*ids, [99]], max_tokens=12, streams=2))
    assert torch.get_num_threads() == before

    class Autocast(torch.nn.Module):  # reports the autocast state of the thread that runs it
        def forward(self, input_ids, mask):
            on = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
            return {"on": torch.full((len(input_ids),), float(on))}

    for streams in (1, 2):
        for dtype, want in ((None, 0.0), (torch.bfloat16, 1.0)):
            outs = [out["on"] for _, out, _ in encode_batches(Autocast(), ids, max_tokens=12, streams=streams, autocast=dtype)]
            assert torch.cat(outs).eq(want).all(), (streams, dtype)


def test_bf16_scores_the_same_on_one_or_two_streams(tiny_model):
    texts = [("word " * (i % 13)).strip() or "ok" for i in range(30)] + ["a longer review about the strap and the case"]
    fp32 = TransformerScorer(tiny_model, threads=2, max_tokens=24).score(texts)
    one = TransformerScorer(tiny_model, threads=2, streams=1, precision="bf16", max_tokens=24).score(texts)
    two = TransformerScorer(tiny_model, threads=2, streams=2, precision="bf16", max_tokens=24).score(texts)
    np.testing.assert_allclose(two.valence, one.valence, atol=1e-6)  # the same arithmetic in the workers
    assert not np.allclose(two.valence, fp32.valence, atol=1e-7)  # bf16 did reach the workers
    np.testing.assert_allclose(two.valence, fp32.valence, atol=0.05)


def test_scorer_order_independent_and_quantized_close(tiny_model):
    texts = ["short", "a much longer review text that goes on and on about delivery", "mid length text here"]
    a = TransformerScorer(tiny_model).score(texts)
    b = TransformerScorer(tiny_model).score(texts[::-1]).iloc[::-1].reset_index(drop=True)
    np.testing.assert_allclose(a.valence, b.valence, atol=1e-5)
    q = TransformerScorer(tiny_model, quantize=True)
    assert q.version.endswith("-int8") and q.model_version != TransformerScorer(tiny_model).model_version
    np.testing.assert_allclose(q.score(texts).p_positive, a.p_positive, atol=0.05)


def test_missing_or_corrupt_model_names_the_path(tmp_path, tiny_model):
    with pytest.raises(ArtifactError, match=str(tmp_path / "nope")):
        TransformerScorer(tmp_path / "nope").score(["hello"])
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((tiny_model / "config.json").read_text())
    (broken / "adapter.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ArtifactError, match="corrupt"):
        TransformerScorer(broken).score(["hello"])


def test_split_by_user_is_disjoint_and_stable():
    users = np.array([f"u{i % 50}" for i in range(500)])
    role = split_by_user(users, 0.2, 0.1, seed=1)
    for r in ("train", "dev", "test"):
        assert set(users[role == r]).isdisjoint(set(users[role != r]))
    assert len(set(users[role == "test"])) == 10 and len(set(users[role == "dev"])) == 5
    assert (split_by_user(users[::-1], 0.2, 0.1, seed=1) == role[::-1]).all()


def _toy_shop():
    """120 reviews of 30 users whose words give their stars away, and a 3-step training config."""
    rng = np.random.default_rng(0)
    words = {5: "love it great", 1: "awful broke terrible", 3: "it is okay I guess"}
    ratings = rng.choice([1, 3, 5], size=120)
    texts = [words[r] + f" number {i}" for i, r in enumerate(ratings)]
    users = np.array([f"u{i % 30}" for i in range(120)])
    cfg = replace(SHOP_TRAINING, epochs=1, max_steps=3, eval_every=3, max_length=32, threads=1)
    return texts, ratings, users, cfg


def test_finetune_runs_deterministically(tiny_model):
    texts, ratings, users, cfg = _toy_shop()
    m1, rep = finetune_polarity(texts, ratings.astype(float), users, tiny_model, training=cfg, progress=False)
    m2, _ = finetune_polarity(texts, ratings.astype(float), users, tiny_model, training=cfg, progress=False)
    s1, s2 = m1.adapter_state(), m2.adapter_state()
    assert all(np.array_equal(s1[k].numpy(), s2[k].numpy()) for k in s1)
    assert rep["steps"] == 3 and set(rep["split"]) == {"train", "dev", "test"}
    assert {"accuracy", "macro_f1", "per_class", "confusion_matrix", "emotion_drift_mean_abs", "argmax"} <= set(rep)
    assert rep["augment_examples"] == round(0.15 * rep["split"]["train"])
    band = m1.config.polarity_thresholds
    assert band == rep["polarity_thresholds"] and band["negative"] <= band["positive"]
    assert m1.config.version.startswith("shop-test-untrained")
    with pytest.raises(InputError, match="not enough rated reviews"):
        finetune_polarity(texts[:3], [np.nan] * 3, users[:3], tiny_model, training=cfg, progress=False)


def test_finetune_adds_long_reviews_after_the_same_idioms(tiny_model, monkeypatch):
    import emorec.sentiment.finetune as finetune

    texts, ratings, users, cfg = _toy_shop()
    seen = []
    real = finetune.fit

    def spy(model, tokenizer, train, *args, **kwargs):
        seen.append(train)
        return real(model, tokenizer, train, *args, **kwargs)

    monkeypatch.setattr(finetune, "fit", spy)
    _, plain = finetune_polarity(texts, ratings.astype(float), users, tiny_model, training=cfg, progress=False, long_reviews=0)
    _, rep = finetune_polarity(texts, ratings.astype(float), users, tiny_model, training=cfg, progress=False, long_reviews=20)
    n_shop = rep["split"]["train"]
    assert rep["augment_long_reviews"] == 20 and plain["augment_long_reviews"] == 0
    assert rep["synthetic_examples"] == plain["synthetic_examples"] + 20 == len(seen[1].texts) - n_shop
    assert seen[1].texts[:n_shop] == seen[0].texts[:n_shop]  # the shop's reviews first, as before
    idioms, with_long = set(seen[0].texts[n_shop:]), seen[1].texts[n_shop:]
    assert idioms < set(with_long)  # the same idioms, and 20 texts more: the long reviews
    longer = [t for t in with_long if t not in idioms]
    assert len(longer) == 20 and min(len(t.split()) for t in longer) >= 10  # 3-13 sentences each
    assert set(seen[1].polarity[n_shop:].tolist()) <= {0, 1, 2}
    # the default: a quarter of the shop's training reviews (at most 1,500), after the same idioms
    _, default = finetune_polarity(texts, ratings.astype(float), users, tiny_model, training=cfg, progress=False)
    expected = min(finetune.MAX_LONG_REVIEWS, round(finetune.LONG_REVIEW_SHARE * n_shop))
    assert expected > 0 and default["augment_long_reviews"] == expected
    assert default["synthetic_examples"] == plain["synthetic_examples"] + expected and set(seen[2].texts[n_shop:]) > idioms


def test_finetune_in_bf16_trains_the_same_weights_closely_and_refuses_int8(tiny_model):
    texts, ratings, users, cfg = _toy_shop()
    fp32, _ = finetune_polarity(texts, ratings.astype(float), users, tiny_model, training=cfg, progress=False)
    bf16, rep = finetune_polarity(texts, ratings.astype(float), users, tiny_model, training=replace(cfg, precision="bf16"),
                                  progress=False)
    assert rep["training"]["precision"] == "bf16" and rep["steps"] == 3
    a, b = fp32.adapter_state(), bf16.adapter_state()
    assert all(b[k].dtype == torch.float32 for k in b)  # the weights stay fp32; only the forward pass is bf16
    assert any(not torch.equal(a[k], b[k]) for k in a)  # bf16 did reach the forward pass
    assert all(torch.allclose(a[k], b[k], atol=0.02) for k in a)
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16"):
        finetune_polarity(texts, ratings.astype(float), users, tiny_model, training=replace(cfg, precision="int8"), progress=False)


def test_finetune_blends_a_shop_ngram_head_chosen_on_dev(tiny_model, tmp_path):
    """The shop's words separate the classes and the tiny transformer cannot: the dev users choose
    a blend with the n-gram head, the scorer applies it, and ``ngram_head=None`` leaves none."""
    rng = np.random.default_rng(0)
    marker = {5: "zorbex", 1: "quillap", 3: "vantorim"}  # shop words the transformer cannot know
    filler = ["the", "strap", "cable", "tuner", "case", "pedal", "string", "bridge", "knob", "box", "arrived", "today", "with", "a", "manual"]
    ratings = rng.choice([1, 3, 5], size=240)
    texts = [" ".join(rng.choice(filler, 12)) + f" {marker[r]} " + " ".join(rng.choice(filler, 12)) for r in ratings]
    users = np.array([f"u{i % 60}" for i in range(240)])
    cfg = replace(SHOP_TRAINING, epochs=1, max_steps=2, eval_every=2, max_length=48, threads=1)
    model, rep = finetune_polarity(texts, ratings.astype(float), users, tiny_model, training=cfg, progress=False)
    assert model.ngram_head is not None and rep["ngram_blend"] == model.ngram_head.config.blend < 1.0
    assert set(rep["ngram_blend_dev_macro_f1"]) == {"1.0", "0.9", "0.8", "0.7", "0.6", "0.5"}
    assert rep["ngram_blend_dev_macro_f1"][str(rep["ngram_blend"])] > rep["ngram_blend_dev_macro_f1"]["1.0"]
    assert rep["macro_f1"] > 0.9  # the held-out users, through the blend
    folder = model.save_pretrained(tmp_path / "shop")
    scored = TransformerScorer(folder, threads=1).score(texts[:20])
    alone = TransformerScorer(tiny_model, threads=1)
    base = EmotionEncoder.from_pretrained(folder)[0]
    base.ngram_head = None
    base.save_pretrained(tmp_path / "no_head")
    assert not (tmp_path / "no_head" / "ngram_head.json").exists()
    transformer_only = TransformerScorer(tmp_path / "no_head", threads=1).score(texts[:20])
    p_t = transformer_only[["p_negative", "p_neutral", "p_positive"]].to_numpy()
    expected = model.ngram_head.blend_proba(texts[:20], p_t)
    assert np.allclose(scored[["p_negative", "p_neutral", "p_positive"]].to_numpy(), expected, atol=1e-4)
    assert TransformerScorer(folder).version != TransformerScorer(tmp_path / "no_head").version != alone.version
    no_head, rep2 = finetune_polarity(texts, ratings.astype(float), users, tiny_model, training=cfg, progress=False, ngram_head=None)
    assert no_head.ngram_head is None and rep2["ngram_blend"] is None
