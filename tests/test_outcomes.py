"""Outcomes of held-out reviews (emorec.recommender.outcomes), checked on hand-made cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emorec.common.errors import InputError
from emorec.recommender.outcomes import NEUTRAL, REGRETTED, SATISFIED, UNKNOWN, OutcomeConfig, outcome_codes, review_outcomes


def test_stars_decide_and_text_fills_in():
    nan = np.nan
    rating = [5, 4, 4, 3, 3, 2, 1, nan, nan, nan, nan]
    valence = [0.0, -0.9, nan, -0.6, -0.2, 0.9, 0.0, 0.5, -0.5, 0.0, nan]
    want = [SATISFIED, SATISFIED, SATISFIED,  # 4-5 stars, whatever the text says
            REGRETTED,  # 3 stars with clearly negative text (valence <= -0.5)
            NEUTRAL,  # 3 stars, mildly negative text
            REGRETTED, REGRETTED,  # 1-2 stars, whatever the text says
            SATISFIED, REGRETTED, NEUTRAL,  # no stars: the text decides
            UNKNOWN]  # neither
    assert outcome_codes(rating, valence).tolist() == want


def test_thresholds_come_from_the_config():
    cfg = OutcomeConfig(satisfied_min_stars=5, regretted_max_stars=3, three_star_regret_valence=None,
                        satisfied_valence=0.6, regretted_valence=-0.1)
    assert outcome_codes([5, 4, 3, np.nan, np.nan], [0, 0, -0.9, 0.5, -0.2], cfg).tolist() == [
        SATISFIED, NEUTRAL, REGRETTED, NEUTRAL, REGRETTED]
    with pytest.raises(ValueError, match="must be below"):
        OutcomeConfig(regretted_max_stars=4, satisfied_min_stars=4)
    with pytest.raises(ValueError, match="unknown outcome field"):
        OutcomeConfig(stars=3)


def test_review_outcomes_joins_scores_on_review_id():
    reviews = pd.DataFrame({"review_id": ["a", "b", "c"], "rating": [np.nan, 3.0, np.nan]}, index=[10, 11, 12])
    scores = pd.DataFrame({"review_id": ["c", "b", "a"], "valence": [0.1, -0.8, 0.7]})
    out = review_outcomes(reviews, scores)
    assert out.index.tolist() == [10, 11, 12]
    assert out.tolist() == [SATISFIED, REGRETTED, NEUTRAL]
    # no scores: stars only, a missing rating is unknown
    assert review_outcomes(reviews).tolist() == [UNKNOWN, NEUTRAL, UNKNOWN]
    with pytest.raises(InputError, match="review_id"):
        review_outcomes(reviews.drop(columns="review_id"), scores)
