"""Beyond-accuracy metrics on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from emorec.jobs.evaluation import beyond
from emorec.jobs.evaluation.beyond import BeyondContext, beyond_metrics, catalog_coverage, head_items
from emorec.jobs.evaluation.config import EmotionalFitConfig

TRAIN = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2", "u3", "u3", "u4"],
                      "item_id": ["a", "b", "a", "c", "a", "b", "d"]})
RECS = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u5", "u5"], "rank": [1, 2, 1, 1, 2],
                     "item_id": ["c", "d", "b", "a", "b"]})


def _profiles():
    users = pd.DataFrame({"user_id": ["u1", "u2", "u5"], "aspect_share_sound": [0.5, 0.1, 0.5],
                          "aspect_share_price": [0.1, 0.0, 0.4], "aspect_share_quality": [0.0, 0.0, 0.3]})
    items = pd.DataFrame({"item_id": ["a", "b", "c", "d"],
                          "aspect_strength_sound": [0.1, 0.0, 0.5, 0.5], "aspect_mentions_sound": [9, 9, 5, 1],
                          "aspect_strength_price": [0.3, -0.2, np.nan, 0.0], "aspect_mentions_price": [4, 9, 0, 0],
                          "aspect_strength_quality": [0.9, 0.9, 0.9, 0.9], "aspect_mentions_quality": [9, 9, 9, 9]})
    return users, items


def test_popularity_head_and_coverage():
    ctx = BeyondContext(TRAIN, head_share=0.25)
    assert ctx.popularity.to_dict() == {"a": 3, "b": 2, "c": 1, "d": 1} and ctx.n_users == 4
    assert ctx.head == {"a"}
    assert head_items(pd.Series({"x": 1, "y": 1, "z": 5}), 0.5) == {"z", "x"}  # ceil(1.5) = 2; tie: smaller id
    assert catalog_coverage(RECS, ctx, [1, 2]) == {"coverage@1": 0.75, "coverage@2": 1.0}  # {c,b,a} / 4, {c,d,b,a} / 4


def test_novelty_long_tail_arp_ild_by_hand():
    ctx = BeyondContext(TRAIN, head_share=0.25)
    m = beyond_metrics(RECS, ["u1", "u2", "u3", "u5"], ctx, [1, 2])
    assert list(m.index) == ["u1", "u2", "u3", "u5"]
    assert m.loc["u1", "novelty@2"] == pytest.approx(2.0)  # -log2(1/4) twice
    assert m.loc["u2", "novelty@1"] == pytest.approx(1.0)  # -log2(2/4)
    assert m.loc["u5", "novelty@2"] == pytest.approx((-math.log2(3 / 4) + 1.0) / 2)
    assert m.loc["u1", "long_tail@2"] == 1.0 and m.loc["u5", "long_tail@2"] == 0.5 and m.loc["u5", "long_tail@1"] == 0.0
    assert m.loc["u1", "arp@2"] == 1.0 and m.loc["u5", "arp@2"] == 2.5
    assert m.loc["u1", "ild@2"] == pytest.approx(1.0)  # c and d share no user
    assert m.loc["u5", "ild@2"] == pytest.approx(1 - 2 / math.sqrt(6))  # a={u1,u2,u3}, b={u1,u3}
    assert np.isnan(m.loc["u2", "ild@2"]) and np.isnan(m.loc["u1", "ild@1"])  # fewer than two items
    assert m.loc["u3"].isna().all()  # no list
    assert np.isnan(m["emotional_fit@2"]).all()  # no profiles given


def test_sparse_ild_path_matches_dense(monkeypatch):
    dense = beyond_metrics(RECS, ["u1", "u5"], BeyondContext(TRAIN), [2])
    monkeypatch.setattr(beyond, "DENSE_ILD_MAX_ITEMS", 0)
    sparse_ctx = BeyondContext(TRAIN)
    assert sparse_ctx._dense_sim is None
    sparse = beyond_metrics(RECS, ["u1", "u5"], sparse_ctx, [2])
    pd.testing.assert_series_equal(dense["ild@2"], sparse["ild@2"])


def test_emotional_fit_by_hand():
    users, items = _profiles()
    ctx = BeyondContext(TRAIN, 0.25, users, items, EmotionalFitConfig(care_share=0.2, max_aspects=2, praise_threshold=0.2, min_mentions=3))
    assert ctx.aspects == ["sound", "price", "quality"]
    # u1 cares about sound; u2 about nothing; u5 about sound and price (quality is 3rd: cut by max_aspects)
    assert ctx.care.to_dict() == {"u1": 1, "u2": 0, "u5": 3}
    # praised: a for price (0.3, 4 mentions); c for sound; d has 1 sound mention only; quality for all
    assert ctx.praise.to_dict() == {"a": 6, "b": 4, "c": 5, "d": 4}
    m = beyond_metrics(RECS, ["u1", "u2", "u5"], ctx, [1, 2])
    assert m.loc["u1", "emotional_fit@1"] == 1.0 and m.loc["u1", "emotional_fit@2"] == 0.5
    assert np.isnan(m.loc["u2", "emotional_fit@1"])  # cares about no aspect
    assert m.loc["u5", "emotional_fit@2"] == 0.5  # a praised for price, b for nothing u5 cares about
    assert ctx.users_with_care(["u1", "u2", "u5", "unknown"]) == 2
