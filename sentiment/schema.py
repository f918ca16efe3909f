"""The per-review feature schema shared by every scorer.

``review_scores`` rows carry ``review_id``, ``text_hash`` and the feature columns below. The
schema version, the scorer's name and model version, and the aspect set are stored with the
scores (Parquet metadata) so later stages can tell what produced them.

Schema 3
--------
p_negative, p_neutral, p_positive
    Polarity probabilities; they sum to 1.
valence
    Signed sentiment in [-1, 1]: VADER's compound score (lexicon scorer), or
    ``p_positive - p_negative`` (transformer scorer).
polarity_label
    ``negative`` / ``neutral`` / ``positive``: ``valence`` against the scorer's band
    (:attr:`sentiment.Scorer.thresholds` ``["polarity"]``; see :mod:`sentiment.calibration`).
    ``neutral`` for an empty review.
ekman_label
    The one Ekman group (or ``neutral``) whose probability is highest relative to its threshold,
    among the groups that agree with ``polarity_label``: a review decided negative is never
    ``joy``, one decided positive never anger, disgust, fear or sadness.
    Null for the lexicon scorer and for empty reviews.
emo_<label>
    Probability of each of the 28 GoEmotions labels (27 emotions + neutral), independent
    sigmoids. Null for the lexicon scorer, which has no emotion model.
ekman_<group>
    Ekman grouping (anger, disgust, fear, joy, sadness, surprise, neutral): the maximum of
    its member labels' probabilities. Null for the lexicon scorer.
asp_<aspect>_mentions, asp_<aspect>_sentiment
    Clauses of the review that mention the aspect, and their mean valence in [-1, 1]
    (null when the aspect is not mentioned). The aspect set is configurable
    (:class:`sentiment.aspects.AspectConfig`) and recorded in the metadata.
is_empty
    True when the review had no text; its row is the defined neutral row
    (p_neutral = 1, valence = 0, no emotions, no aspects).
n_tokens
    Whitespace tokens in the scored text.

Schema 3 added ``polarity_label`` and ``ekman_label`` (schema 2 had neither); scores of an older
schema are never reused (the schema version is part of every scorer's ``model_version``).
"""

from __future__ import annotations

from .labels import EKMAN_GROUPS, GOEMOTIONS_LABELS, POLARITY_LABELS

SCHEMA_VERSION = "3"

CORE_COLUMNS: dict[str, str] = {
    **{f"p_{label}": "float32" for label in POLARITY_LABELS},
    "valence": "float32",
    "is_empty": "bool",
    "n_tokens": "int32",
}
EMOTION_COLUMNS: dict[str, str] = {f"emo_{label}": "float32" for label in GOEMOTIONS_LABELS}
EKMAN_COLUMNS: dict[str, str] = {f"ekman_{group}": "float32" for group in EKMAN_GROUPS}
#: Decisions taken with the scorer's thresholds (strings; see :mod:`sentiment.calibration`).
LABEL_COLUMNS: dict[str, str] = {"polarity_label": "string", "ekman_label": "string"}
#: Columns every scorer outputs whatever the aspect set (aspect columns come after these).
FEATURE_COLUMNS: dict[str, str] = {**CORE_COLUMNS, **LABEL_COLUMNS, **EMOTION_COLUMNS, **EKMAN_COLUMNS}
KEY_COLUMNS: dict[str, str] = {"review_id": "string", "text_hash": "string"}


def checkpoint_dtypes(columns: dict[str, str]) -> dict[str, str]:
    """Types of the feature columns in scoring checkpoints: ``float64`` for every number (a
    missing value is NaN), ``string`` for the label columns."""
    return {c: ("string" if t == "string" else "float64") for c, t in columns.items()}


def score_columns(aspects=None) -> dict[str, str]:
    """All columns of the ``review_scores`` table for an aspect set (default aspects if None)."""
    from .aspects import aspect_columns

    return {**KEY_COLUMNS, **FEATURE_COLUMNS, **aspect_columns(aspects)}
