"""The shipped model on emorec's own e-commerce phrase suite (tests/data/idiom_suite.csv).

The held-out part was never trained or tuned on; the target is >= 90% sign accuracy on it and
on the whole suite (issue 15). The shipped model v3 reaches it (held-out 0.921, whole suite
0.922; v2 had 0.873 and 0.895): the target tests keep it there for any retrained model.
One model load and ~500 short phrases: a few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emorec.jobs.train_emotions import read_phrase_suite
from emorec.sentiment.transformer import SHIPPED_MODEL, TransformerScorer

SUITE = Path(__file__).resolve().parent / "data" / "idiom_suite.csv"
TARGET = 0.90


@pytest.fixture(scope="module")
def scored():
    suite = read_phrase_suite(SUITE)
    scores = TransformerScorer(SHIPPED_MODEL, threads=1).score(suite.texts)
    return suite, scores


def _sign_accuracy(suite, scores, mask):
    signed = mask & (suite.labels != 1)
    expected = np.where(suite.labels[signed] == 2, 1.0, -1.0)
    return float((np.sign(scores.valence.to_numpy()[signed]) == expected).mean())


def test_heldout_sign_accuracy(scored):
    suite, scores = scored
    acc = _sign_accuracy(suite, scores, suite.split == "heldout")
    wrong = [t for t, v, y, s in zip(suite.texts, scores.valence, suite.labels, suite.split)
             if s == "heldout" and y != 1 and np.sign(v) != (1 if y == 2 else -1)]
    assert acc >= TARGET, f"held-out sign accuracy {acc:.3f} < {TARGET}; wrong: {wrong}"


def test_whole_suite_sign_accuracy(scored):
    suite, scores = scored
    assert _sign_accuracy(suite, scores, np.ones(len(suite.texts), bool)) >= TARGET


def test_polarity_label_agrees_with_the_sign_on_polar_phrases(scored):
    """The label is a decision on the same valence: it never contradicts the sign, and the
    neutral band does not swallow the polar phrases (the issue: 46% neutral on snippets)."""
    suite, scores = scored
    signed = suite.labels != 1
    labels = scores.polarity_label.to_numpy()[signed]
    valence = scores.valence.to_numpy()[signed]
    assert not ((labels == "positive") & (valence < 0)).any() and not ((labels == "negative") & (valence > 0)).any()
    assert (labels == "neutral").mean() < 0.15


def test_eval_json_reports_the_same_heldout_figure(scored):
    suite, scores = scored
    report = json.loads((SHIPPED_MODEL / "eval.json").read_text())["phrase_suite"]
    assert report["heldout"]["sign_accuracy"] == pytest.approx(_sign_accuracy(suite, scores, suite.split == "heldout"), abs=0.01)


def test_ekman_label_never_contradicts_the_polarity_label(scored):
    """A review decided negative is never labelled joy, one decided positive never anger,
    disgust, fear or sadness (``sentiment.calibration.ekman_decision``)."""
    _, scores = scored
    neg, pos = scores.polarity_label == "negative", scores.polarity_label == "positive"
    assert not (neg & (scores.ekman_label == "joy")).any()
    assert not (pos & scores.ekman_label.isin(["anger", "disgust", "fear", "sadness"])).any()
    assert neg.any() and pos.any()
