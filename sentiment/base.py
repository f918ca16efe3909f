"""The scorer contract: a batch of texts in, one row of features per text out."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from .schema import FEATURE_COLUMNS, SCHEMA_VERSION

#: ``progress(n)``: called as batches of ``n`` texts are done (they add up to the batch size).
ProgressCallback = Callable[[int], None]


class Scorer(ABC):
    """A review scorer.

    Subclasses set ``name`` and ``version``, implement :meth:`_score_nonempty` and expose their
    decision thresholds as :attr:`thresholds`. Empty texts never reach a model: they get the
    defined neutral row, flagged ``is_empty``. The label columns (``polarity_label``,
    ``ekman_label``) are decided here, from the probabilities and :attr:`thresholds`.

    Parameters
    ----------
    aspects
        The aspect set (:class:`sentiment.aspects.AspectConfig`); the default e-commerce set
        when omitted.
    """

    name: str = "abstract"
    version: str = "0"
    #: Whether scoring gains from worker processes (pure-Python scorers); see sentiment.parallel.
    parallel: bool = False

    def __init__(self, aspects=None) -> None:
        from .aspects import AspectConfig

        self.aspects = aspects if aspects is not None else AspectConfig()

    @property
    def model_version(self) -> str:
        """Identifies the scorer, its weights and its aspect set; part of every cache key."""
        aspect_key = hashlib.blake2b(self.aspects.model_dump_json().encode(), digest_size=4).hexdigest()
        return f"{self.name}-{self.version}-schema{SCHEMA_VERSION}-aspects{aspect_key}"

    @property
    def thresholds(self) -> dict:
        """Decision thresholds: ``{"polarity": {"negative": t, "positive": t} or None}`` (the
        valence band of ``polarity_label``; None: argmax of the probabilities), and for scorers
        with emotions ``"emotions"`` (per label) and ``"ekman"`` (per group)."""
        return {"polarity": None}

    @property
    def columns(self) -> dict[str, str]:
        """Feature columns and dtypes this scorer outputs (schema columns + its aspects)."""
        from .aspects import aspect_columns

        return {**FEATURE_COLUMNS, **aspect_columns(self.aspects)}

    def score(self, texts: Sequence[str], progress: ProgressCallback | None = None) -> pd.DataFrame:
        """Score a batch of texts.

        Parameters
        ----------
        texts
            Review texts (already cleaned, see :func:`sentiment.text.clean_text`).
        progress
            Called with the number of texts done after each internal batch (the calls add up
            to ``len(texts)``); for progress bars.

        Returns
        -------
        pandas.DataFrame
            One row per input text, in input order, with the columns of :attr:`columns`.
        """
        from .calibration import ekman_decision, label_names, polarity_decision
        from .labels import EKMAN_GROUPS, POLARITY_LABELS

        texts = ["" if t is None else str(t) for t in texts]
        n = len(texts)
        out: dict[str, np.ndarray] = {}
        for col, dtype in self.columns.items():
            if dtype == "string":
                out[col] = np.full(n, None, dtype=object)
                continue
            fill = 0 if dtype.startswith(("int", "bool")) else np.nan
            out[col] = np.full(n, fill, dtype=np.float64 if fill is np.nan else dtype)
        out["p_neutral"][:], out["valence"][:] = 1.0, 0.0
        out["p_negative"][:] = out["p_positive"][:] = 0.0
        out["polarity_label"][:] = "neutral"
        out["is_empty"] = np.array([not t.strip() for t in texts], dtype=bool)
        out["n_tokens"] = np.array([len(t.split()) for t in texts], dtype=np.int32)
        idx = np.flatnonzero(~out["is_empty"])
        if progress is not None and n > len(idx):
            progress(n - len(idx))
        if len(idx):
            feats = self._score_nonempty([texts[i] for i in idx], progress)
            for col, values in feats.items():
                out[col][idx] = values
            thresholds = self.thresholds
            probs = np.stack([out[c][idx] for c in ("p_negative", "p_neutral", "p_positive")], axis=1)
            polarity = polarity_decision(out["valence"][idx], thresholds.get("polarity"), probs)
            out["polarity_label"][idx] = label_names(polarity, POLARITY_LABELS)
            if thresholds.get("ekman") and "ekman_neutral" in feats:
                groups = list(EKMAN_GROUPS)
                ekman = np.stack([out[f"ekman_{g}"][idx] for g in groups], axis=1)
                t = np.array([thresholds["ekman"][g] for g in groups])
                out["ekman_label"][idx] = label_names(ekman_decision(ekman, t, polarity, groups), groups)
        return pd.DataFrame({c: pd.Series(out[c]).astype(t) for c, t in self.columns.items()})

    @abstractmethod
    def _score_nonempty(self, texts: list[str], progress: ProgressCallback | None = None) -> dict[str, np.ndarray]:
        """Feature arrays for non-empty texts; columns not returned keep their defaults
        (null emotions, no aspect mentions). Calls ``progress(n)`` as texts are done (all of
        them at the end when it has no batches of its own)."""


def review_text(title: pd.Series, text: pd.Series) -> pd.Series:
    """The text a scorer sees: title and body joined as ``"title. body"``."""
    title = title.fillna("").astype(str).str.strip()
    text = text.fillna("").astype(str).str.strip()
    sep = np.where((title != "") & (text != ""), np.where(title.str[-1:].isin([".", "!", "?"]), " ", ". "), "")
    return title + pd.Series(sep, index=title.index) + text


def text_hash(texts: pd.Series) -> pd.Series:
    """Stable 16-hex-digit hash of each text (the scoring-cache key with the model version)."""
    return pd.Series(
        [hashlib.blake2b(t.encode("utf-8"), digest_size=8).hexdigest() for t in texts],
        index=texts.index,
        dtype="string",
    )
