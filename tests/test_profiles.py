import numpy as np
import pandas as pd
import pytest

from profiles import ProfileConfig, build_item_profiles, build_user_profiles
from profiles.aggregate import recency_weights


def _scored():
    ts = pd.to_datetime(["2020-01-01", "2021-12-01", "2022-01-01", "2021-06-01", None], utc=True)
    return pd.DataFrame({
        "review_id": list("abcde"),
        "user_id": ["u1", "u1", "u1", "u2", "u2"],
        "item_id": ["i1", "i2", "i1", "i1", "i3"],
        "rating": [5.0, 2.0, 1.0, 4.0, np.nan],
        "timestamp": ts,
        "valence": [0.9, -0.5, -0.9, 0.5, 0.0],
        "p_negative": [0.0, 0.8, 1.0, 0.0, 0.0],
        "p_neutral": [0.1, 0.1, 0.0, 0.2, 1.0],
        "p_positive": [0.9, 0.1, 0.0, 0.8, 0.0],
    })


def test_recency_weights_half_life():
    ts = pd.Series(pd.to_datetime(["2022-01-01", "2021-07-05", None], utc=True))
    w = recency_weights(ts, half_life_days=180)
    assert w[0] == 1.0 and w[1] == pytest.approx(0.5) and w[2] == 1.0


def test_user_profile_reads_recent_mood():
    users = build_user_profiles(_scored(), ProfileConfig(half_life_days=30)).set_index("user_id")
    u1 = users.loc["u1"]
    assert u1.n_reviews == 3
    assert u1.mean_valence == pytest.approx((0.9 - 0.5 - 0.9) / 3)
    # loved the shop in 2020, angry now: the recency-weighted valence is near the latest review
    assert u1.recent_valence < u1.mean_valence < 0.2 and u1.recent_valence < -0.6
    assert u1.share_negative == pytest.approx(2 / 3)
    # stars as valence minus text valence: (1 - 0.9) + (-0.5 + 0.5) + (-1 + 0.9) = 0
    assert u1.rating_text_gap == pytest.approx(0.0, abs=1e-9)
    assert users.loc["u2"].n_reviews == 2 and users.loc["u2"].mean_rating == 4.0


def test_single_review_user_and_empty_input():
    one = _scored().iloc[[0]]
    users = build_user_profiles(one)
    assert len(users) == 1 and users.valence_std.iloc[0] == 0.0
    assert build_user_profiles(_scored().iloc[:0]).empty


def test_item_profile_shrinks_small_items():
    items = build_item_profiles(_scored(), ProfileConfig(item_prior_strength=10)).set_index("item_id")
    i1 = items.loc["i1"]
    assert i1.n_reviews == 3 and i1.confidence == pytest.approx(3 / 13)
    global_mean = np.mean([0.9, -0.5, -0.9, 0.5, 0.0])
    assert abs(i1.valence_shrunk - global_mean) < abs(i1.mean_valence - global_mean)
    assert items.loc["i3"].share_positive == 0.0


def test_config_rejects_unknown_field():
    with pytest.raises(ValueError, match="half_lif"):
        ProfileConfig(half_lif=3)
