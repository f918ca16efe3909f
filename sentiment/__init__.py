"""sentiment: per-review emotional feature vectors (the first stage of emorec)."""

from .base import Scorer, review_text, text_hash
from .lexicon import LexiconScorer
from .schema import FEATURE_COLUMNS, SCHEMA_VERSION, score_columns
from .text import clean_text, prepare_for_storage, scrub_pii

SCORERS = ("lexicon", "transformer")


def get_scorer(name: str = "lexicon", **kwargs) -> Scorer:
    """Return a scorer by name (keyword arguments go to its constructor).

    Unknown names raise :class:`~emorec.common.errors.ConfigError` listing the valid ones.
    """
    if name == "lexicon":
        return LexiconScorer(**kwargs)
    if name == "transformer":
        from .transformer import TransformerScorer

        return TransformerScorer(**kwargs)
    from emorec.common.errors import ConfigError

    raise ConfigError(f"unknown scorer {name!r}; valid scorers: {', '.join(SCORERS)}")


__all__ = [
    "FEATURE_COLUMNS",
    "SCHEMA_VERSION",
    "SCORERS",
    "LexiconScorer",
    "Scorer",
    "clean_text",
    "get_scorer",
    "prepare_for_storage",
    "review_text",
    "score_columns",
    "scrub_pii",
    "text_hash",
]
