"""sentiment: per-review emotional feature vectors (the first stage of emorec)."""

from .base import Scorer, review_text, text_hash
from .lexicon import LexiconScorer
from .schema import FEATURE_COLUMNS, SCHEMA_VERSION, SCORE_COLUMNS
from .text import clean_text, prepare_for_storage, scrub_pii

SCORERS: dict[str, type[Scorer]] = {"lexicon": LexiconScorer}


def get_scorer(name: str = "lexicon") -> Scorer:
    """Return a scorer by name; unknown names raise ``ValueError`` listing the valid ones."""
    try:
        return SCORERS[name]()
    except KeyError:
        raise ValueError(f"unknown scorer {name!r}; valid scorers: {', '.join(sorted(SCORERS))}") from None


__all__ = [
    "FEATURE_COLUMNS", "SCHEMA_VERSION", "SCORE_COLUMNS", "SCORERS", "LexiconScorer", "Scorer",
    "clean_text", "get_scorer", "prepare_for_storage", "review_text", "scrub_pii", "text_hash",
]
