"""Transformer scorer: every feature from one forward pass of MiniLM + adapter.

The polarity and emotion heads read the mean-pooled token states of the review; each clause
that mentions an aspect is scored by the same polarity head on the mean of *its* token states,
so "great sound but the cable broke" gets a positive and a negative clause from one pass.

Speed: reviews are sorted into length buckets (little padding), run under
``torch.inference_mode`` with the LoRA adapters folded into the base weights, optionally with
int8 dynamic quantization of the linear layers (``precision="int8"``, or ``quantize=True``) or
bfloat16 autocast (``precision="bf16"``). Torch uses :func:`emorec.common.cpus.available_cpus`
threads unless told otherwise, and only while it scores.

Decisions (``polarity_label``, ``ekman_label``) use the thresholds stored in the model's
``config.json`` (:attr:`TransformerScorer.thresholds`).

A shop's fine-tuned model may carry an n-gram head (:mod:`sentiment.ngram_head`): its review
probabilities are then the stored blend of the polarity head's and the n-gram head's, so
``p_*``, ``valence`` and ``polarity_label`` are the blend's. Emotions and the valence of aspect
clauses stay the transformer's (a clause past the length cut gets the review's blended valence).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from emorec.common.cpus import available_cpus
from emorec.common.errors import ArtifactError, ConfigError

from .base import Scorer
from .labels import EKMAN_GROUPS
from .metrics import group_labels
from .ngram_head import HEAD_CONFIG_FILE, HEAD_WEIGHTS_FILE

log = logging.getLogger(__name__)

#: The emotion model shipped inside the package (adapter + heads, trained on GoEmotions).
SHIPPED_MODEL = Path(__file__).resolve().parent / "models" / "default"


class TransformerScorer(Scorer):
    """MiniLM-based scorer (polarity, 28 emotions, Ekman groups, aspect sentiment).

    Parameters
    ----------
    model_path
        Folder of a trained adapter (``save_pretrained`` output): a shop's fine-tuned model
        from ``emorec train-sentiment``, or the shipped default when omitted.
    aspects
        Aspect set (default e-commerce aspects when omitted).
    max_length
        Tokens per review; longer reviews are truncated (clauses past the cut get the
        review's valence).
    quantize
        Shorthand for ``precision="int8"``.
    precision
        ``"fp32"`` (default), ``"int8"`` (dynamic quantization of the linear layers: faster on
        CPUs, tiny quality cost, measured by ``benchmarks/sentiment_amazon.py``) or ``"bf16"``
        (bfloat16 autocast; fast on CPUs with AVX-512 BF16 or AMX, and on GPUs).
    threads
        Torch intra-op threads while scoring (default: the cores this process may use,
        :func:`emorec.common.cpus.available_cpus`; torch's own default ignores CPU quotas).
    max_tokens
        Padded tokens per batch.
    streams
        Batches scored at once on the CPU, each in its own thread with ``threads // streams``
        torch threads (see :func:`emorec.sentiment.encoder.encode_batches`). Default: 2 when
        there are at least 2 threads (on 2 cores, +5% fp32 and +13% int8 over one stream; README),
        else 1; bf16 runs its autocast in each stream's thread. Scores do not depend on it beyond
        float rounding.
    device
        ``"auto"`` (default): a CUDA GPU when torch sees one, else the CPU. int8 models always
        run on the CPU (dynamic int8 is a CPU kernel).
    """

    name = "transformer"
    PRECISIONS = ("fp32", "bf16", "int8")

    def __init__(self, model_path: str | Path | None = None, aspects=None, max_length: int = 256,
                 quantize: bool = False, threads: int | None = None, max_tokens: int = 8192,
                 device: str = "auto", precision: str | None = None, streams: int | None = None) -> None:
        super().__init__(aspects)
        self.model_path = Path(model_path) if model_path else SHIPPED_MODEL
        self.max_length = max_length
        precision = precision or ("int8" if quantize else "fp32")
        if precision not in self.PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(self.PRECISIONS)}, got {precision!r}")
        if quantize and precision != "int8":
            raise ConfigError(f"quantize=True means precision='int8', not {precision!r}")
        if threads is not None and int(threads) < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        if streams is not None and int(streams) < 1:
            raise ConfigError(f"streams must be at least 1, got {streams}")
        self.precision = precision
        self.quantize = precision == "int8"
        self.threads = threads
        self.max_tokens = max_tokens
        self.streams = streams
        self.device = device
        self._model = None
        self._tokenizer = None
        self._config = None
        self._ngram_head = None
        self._stored_config: dict | None = None

    def _model_config(self) -> dict:
        """The model folder's ``config.json`` (read once; :class:`ArtifactError` naming the file)."""
        if self._stored_config is None:
            path = self.model_path / "config.json"
            try:
                self._stored_config = json.loads(path.read_text())
            except FileNotFoundError:
                raise ArtifactError(f"no sentiment model at {self.model_path}: config.json is missing") from None
            except (OSError, ValueError) as exc:
                raise ArtifactError(f"sentiment model at {self.model_path} is corrupt: {path.name}: {exc}") from exc
        return self._stored_config

    @property
    def version(self) -> str:  # type: ignore[override]
        """Model version, a digest of its files (a fine-tuned model or new thresholds never
        reuse cached scores), the max length and the precision."""
        digest = hashlib.blake2b(digest_size=4)
        try:
            v = self._model_config().get("version", "unknown")
            for name in ("config.json", "adapter.safetensors"):
                digest.update((self.model_path / name).read_bytes())
            for name in (HEAD_CONFIG_FILE, HEAD_WEIGHTS_FILE):  # a shop's n-gram head, when it has one
                if (self.model_path / name).exists():
                    digest.update((self.model_path / name).read_bytes())
        except (ArtifactError, OSError):
            v = "unreadable"
        suffix = "" if self.precision == "fp32" else f"-{self.precision}"
        return f"{v}-{digest.hexdigest()}-len{self.max_length}{suffix}"

    @property
    def thresholds(self) -> dict:
        """The model's decision thresholds (read from its ``config.json``).

        ``polarity``: valence band of ``polarity_label`` (None for a model saved without one:
        the argmax of the polarity head decides); ``emotions``: per GoEmotions label;
        ``ekman`` and ``sentiment``: per group.
        """
        from .calibration import check_polarity_thresholds

        cfg = self._model_config()
        groups = cfg.get("extra", {}).get("group_thresholds", {})
        labels, values = cfg.get("emotion_labels", []), cfg.get("emotion_thresholds", [])
        where = f"{self.model_path / 'config.json'}: polarity_thresholds"
        return {"polarity": check_polarity_thresholds(cfg.get("polarity_thresholds"), where),
                "emotions": dict(zip(labels, values)) if len(values) == len(labels) else {},
                "ekman": dict(groups.get("ekman", {})), "sentiment": dict(groups.get("sentiment", {}))}

    def load(self) -> TransformerScorer:
        """Load (once) the base model, the adapter and heads; merge; quantize if asked."""
        if self._model is not None:
            return self
        from .encoder import EmotionEncoder

        with self._threads():
            model, tokenizer = EmotionEncoder.from_pretrained(self.model_path)
            self._ngram_head = model.ngram_head
            model.merge_adapters().eval()
            if self.precision == "int8":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            else:
                from .encoder import resolve_device

                model.to(resolve_device(self.device))
        self._model, self._tokenizer, self._config = model, tokenizer, model.config
        return self

    @contextlib.contextmanager
    def _threads(self):
        """Torch intra-op threads set to :attr:`threads` (default: the usable cores) for the block."""
        before = torch.get_num_threads()
        wanted = self._thread_count()
        if wanted != before:
            torch.set_num_threads(wanted)
        try:
            yield
        finally:
            if wanted != before:
                torch.set_num_threads(before)

    def _thread_count(self) -> int:
        return int(self.threads) if self.threads else available_cpus()

    def resolved_streams(self) -> int:
        """Batches :meth:`score` runs at once: :attr:`streams`, else 2 on 2 or more threads, else 1."""
        if self.streams is not None:
            return int(self.streams)
        return 2 if self._thread_count() >= 2 else 1

    def _score_nonempty(self, texts: list[str], progress=None) -> dict[str, np.ndarray]:
        with self._threads():
            self.load()
            return self._score_loaded(texts, progress)

    def _score_loaded(self, texts: list[str], progress=None) -> dict[str, np.ndarray]:
        from .aspects import aspect_features
        from .encoder import autocast_dtype, encode_batches

        model, cfg = self._model, self._config
        enc = self._tokenizer(texts, truncation=True, max_length=self.max_length, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        n = len(texts)
        pol = np.zeros((n, 3), np.float32)
        emo = np.zeros((n, len(cfg.emotion_labels)), np.float32)
        aspect_parts = []
        for idx, out, _ in encode_batches(model, ids, max_tokens=self.max_tokens, streams=self.resolved_streams(),
                                             autocast=autocast_dtype(self.precision)):
            out = {k: v.float() for k, v in out.items()}
            p = torch.softmax(out["polarity"], -1).numpy()
            if self._ngram_head is not None:  # a fine-tuned shop model: blend in its n-gram head
                p = self._ngram_head.blend_proba([texts[i] for i in idx], p)
            pol[idx] = p
            emo[idx] = torch.sigmoid(out["emotions"]).numpy()
            review_valence = p[:, 2] - p[:, 0]
            hidden = out["hidden"]

            def clause_valence(batch_texts, spans, idx=idx, hidden=hidden, review_valence=review_valence):
                return self._span_valence(model, hidden, [offsets[i] for i in idx], spans, review_valence)

            part = aspect_features([texts[i] for i in idx], self.aspects, clause_valence, review_valence=review_valence)
            part.index = idx
            aspect_parts.append(part)
            if progress is not None:
                progress(len(idx))
        feats = {"p_negative": pol[:, 0], "p_neutral": pol[:, 1], "p_positive": pol[:, 2], "valence": pol[:, 2] - pol[:, 0]}
        for j, label in enumerate(cfg.emotion_labels):
            feats[f"emo_{label}"] = emo[:, j]
        ekman = group_labels(emo, tuple(cfg.emotion_labels), EKMAN_GROUPS)
        for j, group in enumerate(EKMAN_GROUPS):
            feats[f"ekman_{group}"] = ekman[:, j]
        if aspect_parts:
            import pandas as pd

            aspects = pd.concat(aspect_parts).sort_index()
            feats.update({c: aspects[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in aspects.columns})
        return feats

    @staticmethod
    def _span_valence(model, hidden: torch.Tensor, offsets: list, spans: list, review_valence: np.ndarray) -> list[np.ndarray]:
        """Valence of each character span from the mean of its tokens' states."""
        pooled, where = [], []
        result = [np.full(len(s), review_valence[b], dtype=np.float32) for b, s in enumerate(spans)]
        for b, text_spans in enumerate(spans):
            if not len(text_spans):
                continue
            off = np.asarray(offsets[b], dtype=np.int64).reshape(-1, 2)
            real = off[:, 1] > off[:, 0]
            for k, (start, end) in enumerate(text_spans):
                tok = real & (off[:, 0] >= start) & (off[:, 1] <= end)
                if tok.any():
                    pooled.append(hidden[b, torch.from_numpy(np.flatnonzero(tok))].mean(0))
                    where.append((b, k))
        if pooled:
            from .encoder import model_device

            with torch.inference_mode():
                logits = model.polarity_head(torch.stack(pooled).to(model_device(model)))
                p = torch.softmax(logits.float().cpu(), -1).numpy()
            for (b, k), v in zip(where, p[:, 2] - p[:, 0]):
                result[b][k] = v
        return result
