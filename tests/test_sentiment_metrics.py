"""sentiment.metrics: the classification figures every sentiment benchmark reports."""

import numpy as np
import pytest

from emorec.sentiment.metrics import classification_report, multiclass_log_loss


def test_classification_report_counts_a_small_case_by_hand():
    y = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 2, 0])
    r = classification_report(y, pred, ("negative", "neutral", "positive"))
    assert r["confusion_matrix"]["rows_true_cols_pred"] == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert r["accuracy"] == pytest.approx(4 / 6)
    # F1: negative 2*1/(2+1+1) = 0.5, neutral 2*1/(2+1+0) = 2/3, positive 2*2/(4+0+1) = 0.8
    assert r["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)
    assert r["per_class"]["positive"]["support"] == 3


def test_multiclass_log_loss_is_the_mean_negative_log_probability_of_the_true_class():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.5, 0.25, 0.25]])
    y = np.array([0, 2, 1])
    assert multiclass_log_loss(y, p) == pytest.approx(-(np.log(0.7) + np.log(0.8) + np.log(0.25)) / 3)
    # a zero probability of the true class is clipped, not infinite
    assert multiclass_log_loss(np.array([1]), np.array([[1.0, 0.0, 0.0]]), eps=1e-7) == pytest.approx(-np.log(1e-7))


def test_multiclass_log_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="3 labels"):
        multiclass_log_loss(np.array([0, 1, 2]), np.ones((2, 3)) / 3)
    with pytest.raises(ValueError, match="no labels"):
        multiclass_log_loss(np.array([], np.int64), np.zeros((0, 3)))
