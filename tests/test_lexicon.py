import numpy as np
import pandas as pd

from emorec.sentiment import LexiconScorer, get_scorer, review_text, text_hash
from emorec.sentiment.schema import FEATURE_COLUMNS


def test_schema_polarity_and_order():
    texts = ["I love it, works perfectly 😍", "not good at all, it broke 😡", "", "it is a cable"]
    scorer = LexiconScorer()
    df = scorer.score(texts)
    assert list(df.columns) == list(scorer.columns)
    assert list(df.columns)[: len(FEATURE_COLUMNS)] == list(FEATURE_COLUMNS)
    assert df.filter(like="emo_").isna().all().all()  # a lexicon has no emotion model
    assert df.asp_durability_mentions[1] == 1 and df.asp_durability_sentiment[1] < 0
    assert len(df) == 4
    np.testing.assert_allclose(df[["p_negative", "p_neutral", "p_positive"]].sum(axis=1), 1.0, atol=1e-5)
    assert df.valence[0] > 0.5 and df.p_positive[0] > 0.9
    assert df.valence[1] < -0.3 and df.p_negative[1] > 0.9
    assert df.is_empty.tolist() == [False, False, True, False]
    assert df.loc[2, "p_neutral"] == 1.0 and df.loc[2, "valence"] == 0.0
    assert df.p_neutral[3] > df.p_positive[3] and df.p_neutral[3] > df.p_negative[3]


def test_polarity_label_uses_vaders_band():
    from emorec.sentiment.lexicon import VADER_THRESHOLDS, vader_compound

    texts = ["this is good", "this is not good", "it is a cable", "", "ok"]
    scorer = LexiconScorer()
    df = scorer.score(texts)
    assert scorer.thresholds == {"polarity": VADER_THRESHOLDS} == {"polarity": {"negative": -0.05, "positive": 0.05}}
    compound = vader_compound(texts)  # VADER itself, not the scorer's columns
    expected = ["positive" if c >= 0.05 else "negative" if c <= -0.05 else "neutral" for c in compound]  # VADER's rule
    expected[3] = "neutral"  # the empty review's defined row
    assert df.polarity_label.tolist() == expected
    assert df.polarity_label[:3].tolist() == ["positive", "negative", "neutral"]
    assert df.ekman_label.isna().all()  # no emotion model


def test_negation_and_emoji_matter():
    s = LexiconScorer()
    good, not_good = s.score(["this is good", "this is not good"]).valence
    assert good > 0 > not_good
    plain, angry = s.score(["it arrived", "it arrived 😡"]).valence
    assert angry < plain


def test_bad_inputs_do_not_crash():
    texts = ["😍😍😍", "x" * 100_000, "Das ist nicht gut", "\x00\x01\x02", None]
    df = LexiconScorer().score(texts)
    assert len(df) == 5 and df.is_empty.tolist() == [False, False, False, False, True]


def test_get_scorer_unknown_lists_valid():
    import pytest

    from emorec.common.errors import ConfigError

    with pytest.raises(ConfigError, match="lexicon"):
        get_scorer("nope")


def test_review_text_and_hash():
    t = review_text(pd.Series(["Great", "Wow!", None, ""]), pd.Series(["works", "ok", "body", ""]))
    assert t.tolist() == ["Great. works", "Wow! ok", "body", ""]
    h = text_hash(t)
    assert h.str.len().eq(16).all() and h[0] != h[1]
    assert text_hash(pd.Series(["Great. works"]))[0] == h[0]


def test_parallel_scoring_matches_serial():
    from emorec.sentiment.parallel import score_chunks

    texts = [f"review {i}: {'great value' if i % 3 else 'flimsy, broke after a week 😡'}" for i in range(300)]
    chunks = [texts[i:i + 50] for i in range(0, 300, 50)]
    scorer = LexiconScorer()
    serial = pd.concat(list(score_chunks(scorer, chunks, workers=1)), ignore_index=True)
    parallel = pd.concat(list(score_chunks(scorer, chunks, workers=2)), ignore_index=True)
    pd.testing.assert_frame_equal(serial, parallel)


def test_windowed_vader_matches_the_stock_analyzer():
    """The O(1) negation/idiom window gives exactly VADER's scores (see lexicon._analyzer)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from emorec.jobs.demo_shop import DemoConfig, generate_demo_shop
    from emorec.sentiment.lexicon import _analyzer

    demo = generate_demo_shop(DemoConfig(n_users=60, seed=3)).reviews
    texts = [*(demo["title"].fillna("") + ". " + demo["text"].fillna("")).tolist(), "not good", "never so good", "never this bad", "without doubt great", "kind of bad", "sort of nice", "not bad at all", "no good", "NO problems at all", "least good", "at least good", "very least helpful", "it's the bomb", "the shit", "yeah right", "cut the mustard", "hand to mouth", "it was not the best but not bad", "a b c d e f not good at all but great sound", "great " * 200 + "but not good " * 50]
    stock = SentimentIntensityAnalyzer()
    fast = _analyzer()
    assert type(fast) is not SentimentIntensityAnalyzer
    for text in texts:
        assert fast.polarity_scores(text) == stock.polarity_scores(text), text
