"""The shop n-gram polarity head: fitting, blending, saving and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emorec.common.errors import ArtifactError, ConfigError, InputError
from emorec.sentiment.ngram_head import HEAD_CONFIG_FILE, HEAD_WEIGHTS_FILE, NgramHead, NgramHeadConfig, hashed_counts

WORDS = {0: ["awful", "broke", "returned it", "cheaply made"], 1: ["okay", "average", "it is fine"], 2: ["love it", "superb", "great tone"]}


def _reviews(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    filler = ["the strap", "a guitar", "my cable", "this tuner", "for the price"]
    texts = [f"{rng.choice(filler)} {rng.choice(WORDS[c])} {rng.choice(filler)}" for c in y]
    return texts, y


def test_head_learns_shop_words_and_blends():
    texts, y = _reviews(300, 0)
    head = NgramHead().fit(texts, y)
    test_texts, test_y = _reviews(100, 1)
    p = head.predict_proba(test_texts)
    assert p.shape == (100, 3) and p.dtype == np.float32 and np.allclose(p.sum(1), 1, atol=1e-5)
    assert (p.argmax(1) == test_y).mean() > 0.95
    flat = np.full((100, 3), 1 / 3, np.float32)
    assert np.array_equal(head.blend_proba(test_texts, flat), flat)  # blend 1: the transformer alone
    head.config = NgramHeadConfig(blend=0.25)
    assert np.allclose(head.blend_proba(test_texts, flat), 0.25 * flat + 0.75 * p, atol=1e-6)
    assert head.predict_proba([]).shape == (0, 3)
    bare = NgramHead(NgramHeadConfig(min_df=10_000)).fit(texts, y)  # no bucket survives: intercepts only
    assert len(bare.buckets_) == 0 and np.allclose(bare.predict_proba(test_texts), 1 / 3, atol=1e-3)


def test_hashing_is_stable_and_counts_bigrams():
    m = hashed_counts(["Great tone, great TONE!"], ngram_max=2, n_buckets=2**18)
    assert m.sum() == 4 + 3  # 4 words, 3 word pairs
    assert sorted(m.data.tolist()) == [1.0, 2.0, 2.0, 2.0]  # great, tone, "great tone" twice; "tone great" once
    assert np.array_equal(hashed_counts(["great tone"], 2, 2**18).indices, hashed_counts(["GREAT tone"], 2, 2**18).indices)


def test_save_roundtrip_stores_no_text(tmp_path):
    texts, y = _reviews(200, 2)
    head = NgramHead(NgramHeadConfig(blend=0.6)).fit(texts, y)
    head.save_pretrained(tmp_path)
    back = NgramHead.from_pretrained(tmp_path)
    assert back is not None and back.config == head.config
    assert np.allclose(back.predict_proba(texts), head.predict_proba(texts), atol=1e-6)
    stored = b"".join((tmp_path / f).read_bytes() for f in (HEAD_CONFIG_FILE, HEAD_WEIGHTS_FILE))
    assert b"guitar" not in stored and b"cheaply" not in stored
    assert NgramHead.from_pretrained(tmp_path / "none") is None


def test_bad_inputs_and_artifacts(tmp_path):
    with pytest.raises(InputError, match="record 1 is 3"):
        NgramHead().fit(["a b", "c d"], np.array([0, 3]))
    with pytest.raises(InputError, match="every polarity class"):
        NgramHead().fit(["great", "superb"], np.array([2, 2]))
    with pytest.raises(InputError, match="2 texts but 1 labels"):
        NgramHead().fit(["a", "b"], np.array([0]))
    with pytest.raises(ConfigError, match="not fitted"):
        NgramHead().predict_proba(["x"])
    with pytest.raises(ConfigError, match="blend"):
        NgramHeadConfig(blend=1.5)
    texts, y = _reviews(60, 3)
    NgramHead().fit(texts, y).save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / HEAD_CONFIG_FILE).read_text())
    (tmp_path / HEAD_CONFIG_FILE).write_text(json.dumps({**cfg, "ngram_max": 0}))
    with pytest.raises(ArtifactError, match="corrupt"):
        NgramHead.from_pretrained(tmp_path)
    (tmp_path / HEAD_CONFIG_FILE).write_text(json.dumps({**cfg, "n_buckets": 8}))
    with pytest.raises(ArtifactError, match="do not fit"):
        NgramHead.from_pretrained(tmp_path)
    (tmp_path / HEAD_CONFIG_FILE).write_text(json.dumps(cfg))
    (tmp_path / HEAD_WEIGHTS_FILE).write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="corrupt"):
        NgramHead.from_pretrained(tmp_path)
    (tmp_path / HEAD_WEIGHTS_FILE).unlink()
    with pytest.raises(ArtifactError, match="missing"):
        NgramHead.from_pretrained(tmp_path)
