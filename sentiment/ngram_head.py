"""A shop's n-gram polarity head: logistic regression on hashed word n-grams of its own reviews.

MiniLM reads every shop the same way; a shop's own words ("returned", "hum", "cheaply made",
"for the price") carry polarity that a small transformer fine-tuned on a few thousand reviews
only partly learns. ``train-sentiment`` therefore also fits this head on the training users'
reviews and blends its probabilities with the transformer's polarity head,
``p = w * p_transformer + (1 - w) * p_ngram``, with ``w`` chosen on the dev users together with
the ``polarity_label`` band (``w = 1``, no head, when it does not help there). The emotion head
and the clause-level aspect valence stay the transformer's.

Features are hashed (crc32 of each lower-cased word uni- and bigram into
:attr:`NgramHeadConfig.n_buckets` buckets), with sublinear tf-idf and unit row norm; buckets seen
in fewer than ``min_df`` training reviews are dropped. No word or phrase is stored with the
model, only bucket numbers and weights, so the artifact does not carry the shop's text.

The classifier is multinomial logistic regression with class-balanced weights and an L2 penalty
(``C`` as in scikit-learn), fitted by L-BFGS (:func:`scipy.optimize.minimize`).
"""

from __future__ import annotations

import json
import logging
import re
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.optimize
import scipy.sparse as sp

from emorec.common.config import dataclass_from_dict
from emorec.common.errors import ArtifactError, ConfigError, InputError

log = logging.getLogger(__name__)

#: Files of a saved head, next to the transformer's ``config.json`` and adapter.
HEAD_CONFIG_FILE = "ngram_head.json"
HEAD_WEIGHTS_FILE = "ngram_head.safetensors"
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


@dataclass(frozen=True)
class NgramHeadConfig:
    """Settings of :class:`NgramHead` (fixed defaults, not tuned on any test data)."""

    #: Longest word n-gram (1: words only, 2: words and word pairs).
    ngram_max: int = 2
    #: Hash buckets (2**18: few collisions for a shop's ~10^5 distinct n-grams).
    n_buckets: int = 2**18
    #: Buckets seen in fewer training reviews are dropped.
    min_df: int = 2
    #: Inverse L2 strength (scikit-learn's ``C``).
    c: float = 1.0
    max_iter: int = 500
    #: Weight of the transformer's probabilities in the blend (chosen on dev data by
    #: ``train-sentiment``; 1 means the head is not used).
    blend: float = 1.0

    def __post_init__(self) -> None:
        if self.ngram_max < 1 or self.n_buckets < 2 or self.min_df < 1 or self.max_iter < 1:
            raise ConfigError(f"ngram head: ngram_max, n_buckets, min_df and max_iter must be positive, got {self}")
        if not self.c > 0:
            raise ConfigError(f"ngram head: c must be > 0, got {self.c}")
        if not 0.0 <= self.blend <= 1.0:
            raise ConfigError(f"ngram head: blend must be in [0, 1], got {self.blend}")


def hashed_counts(texts: Sequence[str], ngram_max: int, n_buckets: int) -> sp.csr_matrix:
    """Counts of each text's lower-cased word n-grams (1..``ngram_max``) per crc32 bucket."""
    indptr, indices = [0], []
    for text in texts:
        words = _TOKEN.findall(str(text).lower())
        grams = list(words)
        for n in range(2, ngram_max + 1):
            grams += [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
        indices.extend(zlib.crc32(g.encode("utf-8")) % n_buckets for g in grams)
        indptr.append(len(indices))
    data = np.ones(len(indices), np.float64)
    m = sp.csr_matrix((data, np.asarray(indices, np.int64), np.asarray(indptr, np.int64)), shape=(len(texts), n_buckets))
    m.sum_duplicates()
    return m


class NgramHead:
    """Hashed n-gram logistic regression over the three polarity classes.

    Fitted state: ``buckets_`` (kept bucket numbers, sorted), ``idf_`` (one per kept bucket),
    ``coef_`` (kept buckets x 3) and ``intercept_`` (3).
    """

    def __init__(self, config: NgramHeadConfig | None = None) -> None:
        self.config = config or NgramHeadConfig()

    # --- features ---------------------------------------------------------------------
    def _features(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """Sublinear tf-idf rows of unit norm over the kept buckets, from :func:`hashed_counts`."""
        d = len(self.buckets_)
        pos = np.minimum(np.searchsorted(self.buckets_, counts.indices), max(d - 1, 0))
        kept = (self.buckets_[pos] == counts.indices) if d else np.zeros(len(counts.indices), bool)
        rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
        x = sp.csr_matrix(((1.0 + np.log(counts.data[kept])) * self.idf_[pos[kept]], (rows[kept], pos[kept])), shape=(counts.shape[0], d))
        norms = np.sqrt(np.asarray(x.multiply(x).sum(1)).ravel())
        return sp.diags(1.0 / np.maximum(norms, 1e-12)) @ x

    # --- training ----------------------------------------------------------------------
    def fit(self, texts: Sequence[str], y: np.ndarray) -> NgramHead:
        """Fit on ``texts`` with classes ``y`` (0 negative, 1 neutral, 2 positive; every class present).

        Raises
        ------
        InputError
            When lengths differ, a label is outside 0..2, or a class has no example.
        """
        y = np.asarray(y, dtype=np.int64)
        if len(texts) != len(y):
            raise InputError(f"ngram head: {len(texts)} texts but {len(y)} labels")
        bad = np.flatnonzero((y < 0) | (y > 2))
        if len(bad):
            raise InputError(f"ngram head: label of record {int(bad[0])} is {int(y[bad[0]])}, expected 0, 1 or 2")
        class_counts = np.bincount(y, minlength=3)
        if (class_counts == 0).any():
            raise InputError(f"ngram head: every polarity class needs a training review, got counts {class_counts.tolist()}")
        cfg = self.config
        counts = hashed_counts(texts, cfg.ngram_max, cfg.n_buckets)
        df = np.bincount(counts.indices, minlength=cfg.n_buckets)
        self.buckets_ = np.flatnonzero(df >= cfg.min_df).astype(np.int64)
        n = len(texts)
        self.idf_ = (np.log((1.0 + n) / (1.0 + df[self.buckets_])) + 1.0).astype(np.float64)
        x = self._features(counts)
        weight = (n / (3.0 * class_counts))[y]
        onehot = np.eye(3)[y]
        d = x.shape[1]

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = theta[:3 * d].reshape(d, 3), theta[3 * d:]
            z = x @ w + b
            z -= z.max(1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(1, keepdims=True))
            value = cfg.c * float(-(weight * (onehot * logp).sum(1)).sum()) + 0.5 * float((w * w).sum())
            g = cfg.c * weight[:, None] * (np.exp(logp) - onehot)
            grad_w = x.T @ g + w
            return value, np.concatenate([np.asarray(grad_w).ravel(), g.sum(0)])

        res = scipy.optimize.minimize(loss, np.zeros(3 * d + 3), jac=True, method="L-BFGS-B", options={"maxiter": cfg.max_iter})
        if not res.success:
            log.warning("ngram head: L-BFGS stopped before convergence (%s)", res.message)
        self.coef_ = res.x[:3 * d].reshape(d, 3).astype(np.float32)
        self.intercept_ = res.x[3 * d:].astype(np.float32)
        log.info("ngram head: %d buckets kept of %d, fitted on %d reviews", d, cfg.n_buckets, n)
        return self

    # --- inference ---------------------------------------------------------------------
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, ``(len(texts), 3)`` float32 (negative, neutral, positive)."""
        if not hasattr(self, "coef_"):
            raise ConfigError("ngram head is not fitted: call fit() or load it with from_pretrained()")
        if not len(texts):
            return np.zeros((0, 3), np.float32)
        x = self._features(hashed_counts(texts, self.config.ngram_max, self.config.n_buckets))
        z = np.asarray(x @ self.coef_.astype(np.float64)) + self.intercept_
        z -= z.max(1, keepdims=True)
        p = np.exp(z)
        return (p / p.sum(1, keepdims=True)).astype(np.float32)

    def blend_proba(self, texts: Sequence[str], transformer_proba: np.ndarray) -> np.ndarray:
        """``blend * transformer_proba + (1 - blend) * predict_proba(texts)`` (float32)."""
        w = self.config.blend
        p = np.asarray(transformer_proba, np.float32)
        if w >= 1.0:
            return p
        return (w * p + (1.0 - w) * self.predict_proba(texts)).astype(np.float32)

    # --- persistence -------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``ngram_head.json`` (config) and ``ngram_head.safetensors`` (weights) into ``path``."""
        from safetensors.numpy import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file({"buckets": self.buckets_, "idf": self.idf_.astype(np.float32), "coef": self.coef_, "intercept": self.intercept_},
                  str(path / HEAD_WEIGHTS_FILE))
        (path / HEAD_CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2, sort_keys=True))
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path) -> NgramHead | None:
        """The head saved in ``path``, or None when the folder has none (the shipped model).

        Raises :class:`~emorec.common.errors.ArtifactError` naming the file when it is corrupt
        or its arrays do not fit together.
        """
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        path = Path(path)
        if not (path / HEAD_CONFIG_FILE).exists():
            return None
        try:
            head = cls(dataclass_from_dict(NgramHeadConfig, json.loads((path / HEAD_CONFIG_FILE).read_text()), "ngram head config"))
            arrays = load_file(str(path / HEAD_WEIGHTS_FILE))
            head.buckets_ = arrays["buckets"].astype(np.int64)
            head.idf_ = arrays["idf"].astype(np.float64)
            head.coef_, head.intercept_ = arrays["coef"], arrays["intercept"]
        except FileNotFoundError:
            raise ArtifactError(f"ngram head at {path} is incomplete: {HEAD_WEIGHTS_FILE} is missing") from None
        except (ConfigError, KeyError, OSError, ValueError, TypeError, SafetensorError) as exc:
            raise ArtifactError(f"ngram head at {path} is corrupt: {exc}") from exc
        d = len(head.buckets_)
        if head.idf_.shape != (d,) or head.coef_.shape != (d, 3) or head.intercept_.shape != (3,) or \
                (d and (head.buckets_.min() < 0 or head.buckets_.max() >= head.config.n_buckets)):
            raise ArtifactError(f"ngram head at {path} is corrupt: {HEAD_WEIGHTS_FILE} arrays do not fit its config")
        return head
