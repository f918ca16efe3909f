"""VADER lexicon scorer: the fast path, no model weights.

VADER (Hutto & Gilbert, 2014; MIT licence, lexicon shipped inside ``vaderSentiment``) handles
negation ("not good"), intensifiers, capitals, punctuation and many emoji. We add valence for
common e-commerce emoji that its emoji table describes with neutral words (😡 is "pouting
face", 👎 "thumbs down"), so they count.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from .base import Scorer

#: Emoji whose VADER description carries no sentiment, mapped to words VADER scores.
EMOJI_WORDS: dict[str, str] = {
    "😡": " furious ", "😠": " angry ", "🤬": " furious ", "👎": " bad ", "💔": " heartbroken ",
    "🙄": " annoyed ", "😤": " frustrated ", "😒": " unhappy ", "😞": " disappointed ",
    "😩": " miserable ", "🤮": " disgusting ", "🤢": " disgusting ", "💩": " awful ",
    "👍": " good ", "👌": " good ", "🔥": " awesome ", "💯": " perfect ", "🙌": " great ",
    "👏": " great ", "✅": " good ", "⭐": " good ", "🌟": " great ", "❤️": " love ",
}

#: Softmax temperature and neutral band turning VADER's compound score into 3 probabilities.
POLARITY_SCALE = 4.0
NEUTRAL_BAND = 0.25
#: ``polarity_label`` band on the compound score: VADER's authors' thresholds (Hutto & Gilbert):
#: positive above 0.05, negative below -0.05, neutral between.
VADER_THRESHOLDS = {"negative": -0.05, "positive": 0.05}


def compound_to_polarity(compound: np.ndarray) -> np.ndarray:
    """Map compound scores in [-1, 1] to (negative, neutral, positive) probabilities.

    ``softmax(s * [-c, band - |c|, c])``: neutral wins near 0, each pole near +-1.
    """
    c = np.asarray(compound, dtype=np.float64)
    logits = POLARITY_SCALE * np.stack([-c, NEUTRAL_BAND - np.abs(c), c], axis=1)
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


@functools.cache
def _analyzer():
    """VADER's analyzer with two quadratic hot spots made constant-time (identical scores).

    ``SentimentIntensityAnalyzer._negation_check`` and ``_special_idioms_check`` lower-case the
    whole sentence for every sentiment word they look at, although they only read the three
    words before it and the two after it: O(words^2) per review, most of VADER's time on long
    reviews. The subclass hands them that window instead (callers guarantee ``i >= start_i + 1``,
    so no index wraps around), which gives the same result; ``tests/test_lexicon.py`` checks the
    scores against the stock analyzer.
    """
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    class WindowedAnalyzer(SentimentIntensityAnalyzer):
        def _negation_check(self, valence, words_and_emoticons, start_i, i):
            lo = max(0, i - 3)
            return SentimentIntensityAnalyzer._negation_check(valence, words_and_emoticons[lo:i + 1], start_i, i - lo)

        def _special_idioms_check(self, valence, words_and_emoticons, i):
            lo = max(0, i - 3)
            return SentimentIntensityAnalyzer._special_idioms_check(valence, words_and_emoticons[lo:i + 3], i - lo)

    return WindowedAnalyzer()


def _with_emoji_words(text: str) -> str:
    for emoji, words in EMOJI_WORDS.items():
        if emoji in text:
            text = text.replace(emoji, words)
    return text


def vader_compound(texts: Sequence[str]) -> np.ndarray:
    """VADER compound score in [-1, 1] per text, with :data:`EMOJI_WORDS` applied."""
    analyzer = _analyzer()
    return np.fromiter(
        (analyzer.polarity_scores(_with_emoji_words(t))["compound"] for t in texts), dtype=np.float64, count=len(texts)
    )


class LexiconScorer(Scorer):
    """VADER with negation and emoji handling; aspects scored per clause with VADER too.

    Emotion columns stay null: a lexicon has no emotion model.

    Examples
    --------
    >>> LexiconScorer().score(["not good at all 😡"]).valence.iloc[0] < 0
    True
    """

    name = "lexicon"
    version = "vader3.3.2-emoji1"
    parallel = True

    @property
    def thresholds(self) -> dict:
        """``{"polarity": VADER_THRESHOLDS}``: VADER's own band on the compound score."""
        return {"polarity": dict(VADER_THRESHOLDS)}

    def _score_nonempty(self, texts: list[str], progress=None) -> dict[str, np.ndarray]:
        from .aspects import aspect_features, lexicon_clause_valence

        compound = vader_compound(texts)
        probs = compound_to_polarity(compound)
        feats = {"p_negative": probs[:, 0], "p_neutral": probs[:, 1], "p_positive": probs[:, 2], "valence": compound}
        aspects = aspect_features(texts, self.aspects, lexicon_clause_valence, review_valence=compound)
        feats.update({c: aspects[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in aspects.columns})
        if progress is not None:
            progress(len(texts))
        return feats
