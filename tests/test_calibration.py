"""Decision thresholds (sentiment.calibration): the band search against brute force, labels."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from emorec.common.errors import ConfigError
from emorec.sentiment.calibration import (
    check_polarity_thresholds,
    choose_label_thresholds,
    choose_polarity_band,
    ekman_decision,
    label_names,
    polarity_decision,
)


def _brute_macro_f1(y, pred):
    """Macro-F1 over the classes present in y, counted by hand."""
    scores = []
    for c in sorted(set(y.tolist())):
        tp = sum(1 for a, b in zip(y, pred) if a == c and b == c)
        fp = sum(1 for a, b in zip(y, pred) if a != c and b == c)
        fn = sum(1 for a, b in zip(y, pred) if a == c and b != c)
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def test_band_search_finds_the_brute_force_optimum():
    rng = np.random.default_rng(4)
    y1 = rng.integers(0, 3, 120)
    v1 = np.round(np.clip(0.6 * (y1 - 1) + rng.normal(0, 0.35, 120), -1, 1), 1)  # ties on the grid
    y2 = rng.choice([0, 2], 80)  # a domain without neutral texts
    v2 = np.round(np.clip(0.3 * (y2 - 1) + rng.normal(0, 0.3, 80), -1, 1), 1)
    grid = np.round(np.arange(-1, 1.01, 0.1), 1)
    band, scores = choose_polarity_band({"a": (v1, y1), "b": (v2, y2)}, grid=grid)
    best = max(
        (_brute_macro_f1(y1, [0 if x <= lo else 2 if x >= hi else 1 for x in v1]) + _brute_macro_f1(y2, [0 if x <= lo else 2 if x >= hi else 1 for x in v2])) / 2
        for lo, hi in itertools.combinations(grid, 2)
    )
    assert (scores["a"] + scores["b"]) / 2 == pytest.approx(best)
    assert band["negative"] < band["positive"]
    assert scores["b"] == pytest.approx(_brute_macro_f1(y2, polarity_decision(v2, band)))


def test_unlabelled_rows_are_ignored_and_empty_domains_rejected():
    v = np.array([-0.9, -0.8, 0.0, 0.8, 0.9, 0.95])
    y = np.array([0, 0, 1, 2, 2, -1])
    band, scores = choose_polarity_band({"d": (v, y)})
    assert scores["d"] == 1.0 and -0.8 <= band["negative"] < 0.0 < band["positive"] <= 0.8
    with pytest.raises(ConfigError, match="'empty'"):
        choose_polarity_band({"empty": (v, np.full(6, -1))})


def test_polarity_decision_and_names():
    v = np.array([-0.5, -0.2, 0.0, 0.2, 0.5])
    band = {"negative": -0.2, "positive": 0.2}
    assert label_names(polarity_decision(v, band), ("negative", "neutral", "positive")).tolist() == [
        "negative", "negative", "neutral", "positive", "positive"]
    probs = np.array([[0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])
    assert polarity_decision(None, None, probs).tolist() == [2, 0]
    with pytest.raises(ConfigError):
        check_polarity_thresholds({"negative": 0.3, "positive": 0.1})
    with pytest.raises(ConfigError):
        check_polarity_thresholds({"neg": 0.0, "positive": 0.1})
    assert check_polarity_thresholds(None) is None


def test_label_thresholds_average_only_the_domains_that_annotate_a_label():
    rng = np.random.default_rng(0)
    grid = np.round(np.arange(0.1, 0.91, 0.1), 1)
    y_a = rng.random((200, 2)) < 0.3
    p_a = np.where(y_a, 0.7, 0.2) + rng.normal(0, 0.05, (200, 2))  # label 0 best cut near 0.45 in domain a
    y_b = rng.random((200, 2)) < 0.3
    p_b = np.where(y_b, 0.35, 0.1) + rng.normal(0, 0.03, (200, 2))  # domain b: lower probabilities
    t = choose_label_thresholds({"a": (p_a, y_a, np.array([True, True])), "b": (p_b, y_b, np.array([False, True]))}, grid)
    assert 0.3 <= t[0] <= 0.6  # label 0 from domain a alone
    assert t[1] <= 0.3  # label 1 has to work in domain b too
    with pytest.raises(ConfigError, match="annotated by no"):
        choose_label_thresholds({"b": (p_b, y_b, np.array([False, True]))}, grid)


def test_ekman_decision_is_relative_to_thresholds():
    probs = np.array([[0.30, 0.50], [0.10, 0.12]])
    assert ekman_decision(probs, np.array([0.2, 0.5])).tolist() == [0, 0]  # 0.3/0.2 > 0.5/0.5
    assert ekman_decision(probs, np.array([0.5, 0.5])).tolist() == [1, 1]


def test_ekman_label_agrees_with_the_polarity_decision():
    groups = ["anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"]
    t = np.full(7, 0.5)
    joy_wins = np.array([[0.2, 0.0, 0.0, 0.9, 0.3, 0.1, 0.0]] * 3)
    # unconstrained, joy wins every row; a row decided negative takes its strongest negative
    # group instead, a neutral row keeps joy
    assert ekman_decision(joy_wins, t).tolist() == [3, 3, 3]
    assert ekman_decision(joy_wins, t, np.array([0, 1, 2]), groups).tolist() == [4, 3, 3]
    sad_wins = np.array([[0.1, 0.0, 0.0, 0.2, 0.9, 0.3, 0.0]])
    assert ekman_decision(sad_wins, t, np.array([2]), groups).tolist() == [5]  # positive: surprise, not sadness
    with pytest.raises(ConfigError):
        ekman_decision(sad_wins, t, np.array([2]))
