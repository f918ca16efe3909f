"""The per-review feature schema shared by every scorer.

``review_scores`` rows carry ``review_id``, ``text_hash`` and the feature columns below. The
schema version and the scorer's name and version are stored with the scores (Parquet
metadata) so a later stage can tell what produced them.

Schema 1
--------
p_negative, p_neutral, p_positive
    Polarity probabilities; they sum to 1.
valence
    Signed sentiment in [-1, 1] (VADER compound for the lexicon scorer).
is_empty
    True when the review had no text; its row is the defined neutral row
    (p_neutral = 1, valence = 0).
n_tokens
    Whitespace tokens in the scored text.
"""

from __future__ import annotations

SCHEMA_VERSION = "1"

POLARITY_COLUMNS = ("p_negative", "p_neutral", "p_positive")
FEATURE_COLUMNS: dict[str, str] = {
    "p_negative": "float32",
    "p_neutral": "float32",
    "p_positive": "float32",
    "valence": "float32",
    "is_empty": "bool",
    "n_tokens": "int32",
}
KEY_COLUMNS: dict[str, str] = {"review_id": "string", "text_hash": "string"}
SCORE_COLUMNS: dict[str, str] = {**KEY_COLUMNS, **FEATURE_COLUMNS}
