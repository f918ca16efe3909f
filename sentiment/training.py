"""Training the adapter and heads of :class:`~sentiment.encoder.EmotionEncoder`.

One loop serves both jobs: the emotion model shipped with emorec (GoEmotions, multi-label
emotions plus a polarity head) and a shop's own fine-tuning on its star ratings (polarity, with
the shipped emotion head kept by distillation so one forward pass still gives every feature).

Deterministic: the same seed, data and thread count give bit-identical weights.
"""

from __future__ import annotations

import logging
import math
import numbers
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from emorec.common.config import dataclass_from_dict
from emorec.common.errors import ConfigError
from emorec.common.progress import Progress
from emorec.common.seeds import check_seed, is_whole_number

from .encoder import (
    EmotionEncoder,
    autocast_context,
    autocast_dtype,
    collate,
    encode_batches,
    length_batches,
    resolve_device,
    tokenize,
)

log = logging.getLogger(__name__)

#: Precisions a training run's forward passes can use.
TRAINING_PRECISIONS = ("fp32", "bf16")
#: Tokens per text while training: at least the two special tokens and one word, at most the
#: 512 positions of a BERT-style base such as MiniLM.
MIN_TRAINING_TOKENS, MAX_TRAINING_TOKENS = 3, 512


@dataclass
class TrainingConfig:
    """Optimisation settings (saved in the model's config and report)."""

    epochs: int = 3
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_length: int = 128
    max_tokens: int = 4096
    max_batch: int = 32
    eval_every: int = 0
    patience: int = 2
    polarity_weight: float = 1.0
    emotion_weight: float = 1.0
    balance_classes: bool = True
    seed: int = 13
    threads: int | None = None
    max_steps: int | None = None
    #: ``"auto"``: a CUDA GPU when torch sees one, else the CPU (``"cpu"``, ``"cuda:1"``, ...).
    device: str = "auto"
    #: ``"fp32"``, or ``"bf16"``: forward passes under bfloat16 autocast (weights, gradients and
    #: optimizer state stay fp32); faster on CPUs with AMX and on GPUs.
    precision: str = "fp32"

    def __post_init__(self) -> None:
        """Refuse settings no training can run with, naming the field (:class:`ConfigError`)."""
        def need(ok: bool, name: str, rule: str) -> None:
            if not ok:
                raise ConfigError(f"training config: {name} must be {rule}, got {getattr(self, name)!r}")

        def whole(name: str, least: int, most: int | None = None, optional: bool = False) -> None:
            value = getattr(self, name)
            if optional and value is None:
                return
            rule = f"a whole number from {least} to {most}" if most is not None else f"a whole number of at least {least}"
            need(is_whole_number(value, least, most), name, rule + (" (or None)" if optional else ""))

        def number(name: str, ok, rule: str) -> None:
            value = getattr(self, name)
            need(isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and ok(value), name, rule)

        whole("epochs", 1)
        number("lr", lambda v: v > 0, "a number above 0")
        number("weight_decay", lambda v: v >= 0, "a number of at least 0")
        number("warmup_ratio", lambda v: 0 <= v < 1, "a number from 0 up to (not including) 1")
        whole("max_length", MIN_TRAINING_TOKENS, MAX_TRAINING_TOKENS)
        whole("max_tokens", 1)
        whole("max_batch", 1)
        whole("eval_every", 0)
        whole("patience", 1)
        number("polarity_weight", lambda v: v >= 0, "a number of at least 0")
        number("emotion_weight", lambda v: v >= 0, "a number of at least 0")
        check_seed(self.seed, "training config: seed")
        whole("threads", 1, optional=True)
        whole("max_steps", 1, optional=True)
        need(self.precision in TRAINING_PRECISIONS, "precision", f"one of {', '.join(TRAINING_PRECISIONS)}")

    @classmethod
    def from_dict(cls, d: dict) -> TrainingConfig:
        """A config from a mapping (e.g. the ``training`` of a saved report); an unknown key
        raises ``ConfigError`` naming it."""
        return dataclass_from_dict(cls, d, "training config")


@dataclass
class Examples:
    """Texts with optional targets.

    ``polarity``: int class per text, -1 where unlabelled. ``emotions``: float targets in [0, 1]
    of shape ``(n, n_labels)`` (multi-hot labels or a teacher's probabilities), NaN rows where
    unlabelled.
    """

    texts: list[str]
    polarity: np.ndarray | None = None
    emotions: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class FitResult:
    best_score: float
    best_step: int
    steps: int
    history: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)


def seed_everything(seed: int, threads: int | None = None) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)



def _autocast_dtype(precision: str) -> torch.dtype | None:
    """:func:`autocast_dtype` of a training precision; :class:`ConfigError` for one training cannot use."""
    if precision not in TRAINING_PRECISIONS:
        raise ConfigError(f"training precision must be one of {', '.join(TRAINING_PRECISIONS)}, got {precision!r}")
    return autocast_dtype(precision)


def predict(model: EmotionEncoder, ids: list[list[int]], max_tokens: int = 8192, precision: str = "fp32") -> dict[str, np.ndarray]:
    """Polarity probabilities and emotion probabilities, in input order (``precision``: ``"fp32"``
    or ``"bf16"`` autocast)."""
    model.eval()
    n = len(ids)
    pol = np.zeros((n, len(model.config.polarity_labels)), np.float32)
    emo = np.zeros((n, len(model.config.emotion_labels)), np.float32)
    for idx, out, _ in encode_batches(model, ids, max_tokens=max_tokens, autocast=_autocast_dtype(precision)):
        pol[idx] = torch.softmax(out["polarity"].float(), -1).numpy()
        emo[idx] = torch.sigmoid(out["emotions"].float()).numpy()
    return {"polarity": pol, "emotions": emo}


def _training_batches(lengths: np.ndarray, rng: np.random.Generator, max_tokens: int, max_batch: int) -> list[np.ndarray]:
    """Shuffled batches of similar length: shuffle, sort within windows of ~50 batches, cut, shuffle."""
    order = rng.permutation(len(lengths))
    window = max_batch * 50
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        batches += [chunk[idx] for idx in length_batches(lengths[chunk], max_tokens=max_tokens, max_batch=max_batch)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    counts = np.bincount(labels[labels >= 0], minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)


def fit(
    model: EmotionEncoder,
    tokenizer,
    train: Examples,
    dev: Examples,
    config: TrainingConfig,
    score: Callable[[dict[str, np.ndarray]], float],
    progress: bool = True,
) -> FitResult:
    """Train the adapters and heads; keep the state with the best ``score`` on ``dev``.

    Parameters
    ----------
    model, tokenizer
        The encoder to train (only LoRA matrices and heads have gradients).
    train, dev
        Examples; ``dev`` is scored with ``score(predict(...))`` every ``eval_every`` steps
        (each epoch when 0). Training stops early after ``patience`` evaluations without
        improvement, and the best adapter state is restored at the end.
    """
    autocast = _autocast_dtype(config.precision)
    seed_everything(config.seed, config.threads)
    rng = np.random.default_rng(config.seed)
    train_ids = tokenize(tokenizer, train.texts, config.max_length)
    dev_ids = tokenize(tokenizer, dev.texts, config.max_length)
    lengths = np.array([len(x) for x in train_ids])
    n_classes = len(model.config.polarity_labels)
    polarity = train.polarity if train.polarity is not None else np.full(len(train), -1)
    emotions = train.emotions
    class_w = _class_weights(polarity, n_classes) if config.balance_classes else torch.ones(n_classes)
    if config.balance_classes and (polarity >= 0).any():
        log.info("polarity class weights %s", np.round(class_w.numpy(), 3).tolist())

    device = resolve_device(config.device)
    if device.type != "cpu":
        log.info("training on %s", device)
    model.to(device)
    class_w = class_w.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = len(_training_batches(lengths, np.random.default_rng(0), config.max_tokens, config.max_batch))
    total = steps_per_epoch * config.epochs if config.max_steps is None else min(config.max_steps, steps_per_epoch * config.epochs)
    warmup = max(1, int(config.warmup_ratio * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(total, 1)))))
    )
    eval_every = config.eval_every or steps_per_epoch
    result = FitResult(best_score=-math.inf, best_step=0, steps=0, config=asdict(config))
    best_state = _cpu_copy(model.adapter_state())
    bad_evals = 0
    bar = Progress(total, "train", unit="step", logger=log, every=60.0, disable=None if progress else True)
    step = 0
    stop = False
    for epoch in range(config.epochs):
        model.train()
        for batch in _training_batches(lengths, rng, config.max_tokens, config.max_batch):
            input_ids, mask = collate([train_ids[i] for i in batch])
            with autocast_context(device, autocast):
                out = model(input_ids.to(device), mask.to(device))
            out = {k: out[k].float() for k in ("polarity", "emotions")}  # the losses in fp32 (bf16 under autocast)
            loss = torch.zeros((), device=device)
            y = torch.as_tensor(polarity[batch], dtype=torch.long, device=device)
            if (y >= 0).any():
                loss = loss + config.polarity_weight * F.cross_entropy(out["polarity"], y, weight=class_w, ignore_index=-1)
            if emotions is not None:
                t = torch.as_tensor(emotions[batch], dtype=torch.float32, device=device)
                has = ~torch.isnan(t[:, 0])
                if has.any():
                    loss = loss + config.emotion_weight * F.binary_cross_entropy_with_logits(out["emotions"][has], t[has])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            step += 1
            bar.bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
            bar.update(1)
            if step % eval_every == 0 or step == total:
                s = score(predict(model, dev_ids, precision=config.precision))
                model.train()
                result.history.append({"step": step, "epoch": epoch, "loss": float(loss.item()), "dev_score": s})
                log.info("step %d epoch %d: dev score %.4f", step, epoch, s)
                if s > result.best_score:
                    result.best_score, result.best_step, bad_evals = s, step, 0
                    best_state = _cpu_copy(model.adapter_state())
                else:
                    bad_evals += 1
                    if bad_evals >= config.patience:
                        log.info("early stop at step %d (best %.4f at step %d)", step, result.best_score, result.best_step)
                        stop = True
            if stop or step >= total:
                stop = True
                break
        if stop:
            break
    bar.close()
    result.steps = step
    model.to("cpu")
    model.load_adapter_state(best_state)
    model.eval()
    return result


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}
