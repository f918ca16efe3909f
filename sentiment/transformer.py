"""Transformer scorer: every feature from one forward pass of MiniLM + adapter.

The polarity and emotion heads read the mean-pooled token states of the review; each clause
that mentions an aspect is scored by the same polarity head on the mean of *its* token states,
so "great sound but the cable broke" gets a positive and a negative clause from one pass.

Speed: reviews are sorted into length buckets (little padding), run under
``torch.inference_mode`` with the LoRA adapters folded into the base weights, optionally with
int8 dynamic quantization of the linear layers (``quantize=True``).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from .base import Scorer
from .labels import EKMAN_GROUPS
from .metrics import group_labels

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
        Run the linear layers in int8 (dynamic quantization): faster on CPUs, tiny quality
        cost (measured by ``benchmarks/sentiment_amazon.py``).
    threads
        Torch intra-op threads (default: torch's choice, all cores).
    max_tokens
        Padded tokens per batch.
    device
        ``"auto"`` (default): a CUDA GPU when torch sees one, else the CPU. Quantized models
        always run on the CPU (dynamic int8 is a CPU kernel).
    """

    name = "transformer"

    def __init__(self, model_path: str | Path | None = None, aspects=None, max_length: int = 256,
                 quantize: bool = False, threads: int | None = None, max_tokens: int = 8192,
                 device: str = "auto") -> None:
        super().__init__(aspects)
        self.model_path = Path(model_path) if model_path else SHIPPED_MODEL
        self.max_length = max_length
        self.quantize = quantize
        self.threads = threads
        self.max_tokens = max_tokens
        self.device = device
        self._model = None
        self._tokenizer = None
        self._config = None

    @property
    def version(self) -> str:  # type: ignore[override]
        import json

        try:
            v = json.loads((self.model_path / "config.json").read_text()).get("version", "unknown")
        except (OSError, ValueError):
            v = "unreadable"
        return f"{v}-len{self.max_length}" + ("-int8" if self.quantize else "")

    def load(self) -> TransformerScorer:
        """Load (once) the base model, the adapter and heads; merge; quantize if asked."""
        if self._model is not None:
            return self
        from .encoder import EmotionEncoder

        if self.threads:
            torch.set_num_threads(self.threads)
        model, tokenizer = EmotionEncoder.from_pretrained(self.model_path)
        model.merge_adapters().eval()
        if self.quantize:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        else:
            from .encoder import resolve_device

            model.to(resolve_device(self.device))
        self._model, self._tokenizer, self._config = model, tokenizer, model.config
        return self

    def _score_nonempty(self, texts: list[str]) -> dict[str, np.ndarray]:
        from .aspects import aspect_features
        from .encoder import encode_batches

        self.load()
        model, cfg = self._model, self._config
        enc = self._tokenizer(texts, truncation=True, max_length=self.max_length, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        n = len(texts)
        pol = np.zeros((n, 3), np.float32)
        emo = np.zeros((n, len(cfg.emotion_labels)), np.float32)
        aspect_parts = []
        for idx, out, _ in encode_batches(model, ids, max_tokens=self.max_tokens):
            p = torch.softmax(out["polarity"], -1).numpy()
            pol[idx] = p
            emo[idx] = torch.sigmoid(out["emotions"]).numpy()
            review_valence = p[:, 2] - p[:, 0]
            hidden = out["hidden"]

            def clause_valence(batch_texts, spans, idx=idx, hidden=hidden, review_valence=review_valence):
                return self._span_valence(model, hidden, [offsets[i] for i in idx], spans, review_valence)

            part = aspect_features([texts[i] for i in idx], self.aspects, clause_valence, review_valence=review_valence)
            part.index = idx
            aspect_parts.append(part)
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
