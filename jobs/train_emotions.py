"""Train the emotion model shipped with emorec on GoEmotions (Demszky et al., ACL 2020).

The model is :class:`sentiment.encoder.EmotionEncoder`: frozen all-MiniLM-L6-v2, LoRA adapters,
a 28-label emotion head (27 emotions + neutral, multi-label) and a 3-class polarity head. The
polarity head learns from a label derived from each comment's emotions (GoEmotions' own
sentiment grouping, see :func:`derive_polarity`).

Per-label decision thresholds are tuned on the dev split (they matter a lot for macro-F1 on
rare labels) and stored in the model's config; so are the thresholds of the Ekman and
sentiment groupings. The test split is only read for the final report, ``eval.json``.

Deterministic: the same data, seed and thread count give a bit-identical ``adapter.safetensors``.

    python -m emorec.jobs.train_emotions --data ../shared/data/goemotions --out sentiment/models/default
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import platform
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from emorec.sentiment.encoder import EmotionEncoder, EncoderConfig, load_base, tokenize
from emorec.sentiment.labels import GOEMOTIONS_LABELS, POLARITY_LABELS
from emorec.sentiment.metrics import classification_report, group_labels, multilabel_f1, tune_thresholds
from emorec.sentiment.training import Examples, TrainingConfig, fit, predict, seed_everything

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
EVAL_FILE = "eval.json"
#: Settings of the shipped model (chosen by the subset experiments recorded in MODEL_CARD.md).
DEFAULT_TRAINING = TrainingConfig(
    epochs=2, lr=2e-3, weight_decay=0.01, warmup_ratio=0.06, max_length=64, max_tokens=2048, max_batch=32,
    eval_every=400, patience=3, polarity_weight=1.0, emotion_weight=5.0, seed=13, threads=2, device="cpu",
)
DEFAULT_ENCODER = EncoderConfig(lora_r=8, lora_alpha=16.0, lora_dropout=0.1)


# --- data -------------------------------------------------------------------------------
def read_groups(folder: str | Path) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Ekman and sentiment groupings from ``ekman_mapping.json`` / ``sentiment_dict.json``, each plus ``neutral``."""
    folder = Path(folder)
    out = []
    for name in ("ekman_mapping.json", "sentiment_dict.json"):
        groups = {k: tuple(v) for k, v in json.loads((folder / name).read_text()).items()}
        unknown = {m for members in groups.values() for m in members} - set(GOEMOTIONS_LABELS)
        if unknown:
            raise ValueError(f"{folder / name}: unknown labels {sorted(unknown)}")
        out.append({**groups, "neutral": ("neutral",)})
    return out[0], out[1]


def derive_polarity(label_ids: list[list[int]], sentiment_groups: dict[str, tuple[str, ...]]) -> np.ndarray:
    """Polarity class per text from its emotion labels (``POLARITY_LABELS`` order).

    Positive (2) when a label is in the positive group and none in the negative one, negative
    (0) for the reverse, neutral (1) when only neutral / ambiguous labels are present, and -1
    (ignored by the loss and the report) when positive and negative labels are mixed.
    """
    pos = {GOEMOTIONS_LABELS.index(m) for m in sentiment_groups["positive"]}
    neg = {GOEMOTIONS_LABELS.index(m) for m in sentiment_groups["negative"]}
    out = np.empty(len(label_ids), np.int64)
    for i, ids in enumerate(label_ids):
        p, n = bool(pos.intersection(ids)), bool(neg.intersection(ids))
        out[i] = -1 if (p and n) else 2 if p else 0 if n else 1
    return out


def read_goemotions(folder: str | Path, splits: tuple[str, ...] = SPLITS) -> dict[str, Examples]:
    """Read the GoEmotions TSV splits.

    Parameters
    ----------
    folder
        Folder with ``labels.txt``, ``sentiment_dict.json`` and ``{split}.tsv`` (tab-separated,
        no header: text, comma-separated label ids, comment id).
    splits
        Which splits to read.

    Returns
    -------
    dict
        ``{split: Examples}`` with multi-hot ``emotions`` (float32, ``n x 28``, columns in
        ``GOEMOTIONS_LABELS`` order) and the derived ``polarity`` (see :func:`derive_polarity`).

    Raises
    ------
    ValueError
        When ``labels.txt`` differs from ``GOEMOTIONS_LABELS``, or a row is malformed or has an
        unknown label id (the message names the file and the line).
    """
    folder = Path(folder)
    labels = tuple((folder / "labels.txt").read_text(encoding="utf-8").split())
    if labels != GOEMOTIONS_LABELS:
        raise ValueError(f"{folder / 'labels.txt'} does not list the 28 GoEmotions labels in the expected order: {labels}")
    _, sentiment_groups = read_groups(folder)
    data = {}
    for split in splits:
        path = folder / f"{split}.tsv"
        texts, label_ids = [], []
        with path.open(encoding="utf-8", newline="") as fh:
            for lineno, line in enumerate(fh, 1):
                fields = line.rstrip("\r\n").split("\t")
                if len(fields) != 3 or not fields[0].strip():
                    raise ValueError(f"{path}, line {lineno}: expected 3 tab-separated fields (text, label ids, id), got {len(fields)}")
                try:
                    ids = sorted({int(x) for x in fields[1].split(",")})
                except ValueError:
                    raise ValueError(f"{path}, line {lineno}: label ids must be comma-separated integers, got {fields[1]!r}") from None
                if not ids or ids[0] < 0 or ids[-1] >= len(labels):
                    raise ValueError(f"{path}, line {lineno}: unknown label id in {fields[1]!r} (valid: 0..{len(labels) - 1})")
                texts.append(fields[0])
                label_ids.append(ids)
        emotions = np.zeros((len(texts), len(labels)), np.float32)
        for i, ids in enumerate(label_ids):
            emotions[i, ids] = 1.0
        data[split] = Examples(texts, derive_polarity(label_ids, sentiment_groups), emotions)
        log.info("%s: %d texts", path, len(texts))
    return data


# --- metrics ----------------------------------------------------------------------------
def macro_f1(y_true: np.ndarray, probs: np.ndarray, thresholds: np.ndarray) -> tuple[float, np.ndarray]:
    """Macro-F1 and per-label F1 of ``probs >= thresholds`` against multi-hot ``y_true``."""
    f1 = multilabel_f1(y_true > 0.5, probs >= np.asarray(thresholds)[None, :])
    return float(f1.mean()), f1


def tune_all(y_true: np.ndarray, probs: np.ndarray, groupings: dict[str, dict]) -> dict[str, np.ndarray]:
    """Per-label thresholds for the 28 labels and for each grouping (group prob = max of members)."""
    out = {"emotions": tune_thresholds(y_true > 0.5, probs)}
    for name, groups in groupings.items():
        out[name] = tune_thresholds(group_labels(y_true, GOEMOTIONS_LABELS, groups) > 0.5, group_labels(probs, GOEMOTIONS_LABELS, groups))
    return out


def evaluate(pred: dict[str, np.ndarray], data: Examples, thresholds: dict, groupings: dict[str, dict]) -> dict:
    """Macro-F1 on the 28 labels and on each grouping, per-label F1, and the polarity report.

    ``thresholds`` maps ``"emotions"`` and each grouping name to its per-label thresholds
    (sequences, or ``{label: threshold}`` dicts for the groupings).
    """
    probs, y = pred["emotions"], data.emotions
    m, f1 = macro_f1(y, probs, thresholds["emotions"])
    report = {"n": len(data), "emotions_macro_f1": m, "per_label_f1": dict(zip(GOEMOTIONS_LABELS, f1.round(4).tolist()))}
    for name, groups in groupings.items():
        t = thresholds[name]
        t = [t[g] for g in groups] if isinstance(t, dict) else t
        gm, gf1 = macro_f1(group_labels(y, GOEMOTIONS_LABELS, groups), group_labels(probs, GOEMOTIONS_LABELS, groups), t)
        report[f"{name}_macro_f1"] = gm
        report[f"{name}_per_group_f1"] = dict(zip(groups, gf1.round(4).tolist()))
    has = data.polarity >= 0
    pol = classification_report(data.polarity[has], pred["polarity"][has].argmax(1), POLARITY_LABELS)
    report["polarity"] = {**pol, "texts_without_derivable_label": int((~has).sum())}
    return report


def stored_thresholds(config: EncoderConfig) -> dict:
    """Thresholds saved by :func:`train_emotion_model` in a model's config."""
    return {"emotions": np.asarray(config.emotion_thresholds), **config.extra.get("group_thresholds", {})}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _versions() -> dict:
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "numpy": np.__version__}


# --- training ---------------------------------------------------------------------------
def init_emotion_bias(model: EmotionEncoder, targets: np.ndarray) -> None:
    """Start each emotion logit at its training prior, ``log(p / (1 - p))``.

    With zero biases the first ~1,000 steps only push 28 biases towards rare-label priors
    (about -4 for ``grief``); starting there lets the adapters learn from step one.
    """
    prior = np.clip(np.asarray(targets, np.float64).mean(0), 1e-4, 1 - 1e-4)
    with torch.no_grad():
        model.emotion_head.bias.copy_(torch.from_numpy(np.log(prior / (1 - prior))).float())


def train_emotion_model(
    data_dir: str | Path,
    out_dir: str | Path,
    training: TrainingConfig | None = None,
    encoder: EncoderConfig | None = None,
    progress: bool = True,
    max_train: int | None = None,
) -> dict:
    """Train the emotion model, save it to ``out_dir`` and write ``out_dir/eval.json``.

    Parameters
    ----------
    data_dir
        GoEmotions folder (see :func:`read_goemotions`).
    out_dir
        Where ``config.json``, ``adapter.safetensors`` and ``eval.json`` are written.
    training, encoder
        Optimisation and adapter settings (defaults :data:`DEFAULT_TRAINING`,
        :data:`DEFAULT_ENCODER`). ``training.seed`` also seeds the adapter initialisation;
        set ``training.threads`` for reproducible weights.
    progress
        Show a progress bar.
    max_train
        Train on a seeded sample of this many training texts (quick experiments).

    Returns
    -------
    dict
        The report written to ``eval.json``: test macro-F1 on the 28 labels, on the Ekman
        grouping (+neutral) and on the sentiment grouping (+neutral), per-label F1, the
        polarity head's 3-class report, the same figures on dev, the training history, seconds,
        seed, threads and library versions.

    Notes
    -----
    Early stopping scores dev by macro-F1 on the 28 labels with thresholds tuned on dev
    itself (an optimistic but monotone proxy of the final figure; thresholds are cheap).
    """
    started = time.perf_counter()
    training = training or DEFAULT_TRAINING
    encoder = encoder or DEFAULT_ENCODER
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    seed_everything(training.seed, training.threads)
    data = read_goemotions(data_dir)
    ekman, sentiment_groups = read_groups(data_dir)
    groupings = {"ekman": ekman, "sentiment": sentiment_groups}
    train = data["train"]
    if max_train and len(train) > max_train:
        keep = np.sort(np.random.default_rng(training.seed).choice(len(train), max_train, replace=False))
        train = Examples([train.texts[i] for i in keep], train.polarity[keep], train.emotions[keep])
    dev, test = data["dev"], data["test"]

    tokenizer, bert = load_base()
    version = f"goemotions-minilm-lora-v1-seed{training.seed}"
    config = replace(encoder, max_length=training.max_length, version=version,
                     emotion_labels=GOEMOTIONS_LABELS, polarity_labels=POLARITY_LABELS)
    model = EmotionEncoder(bert, config, seed=training.seed)
    init_emotion_bias(model, train.emotions)

    def dev_score(pred: dict) -> float:
        return macro_f1(dev.emotions, pred["emotions"], tune_thresholds(dev.emotions > 0.5, pred["emotions"]))[0]

    log.info("training on %d texts (dev %d), %s", len(train), len(dev), training)
    result = fit(model, tokenizer, train, dev, training, dev_score, progress=progress)
    train_seconds = time.perf_counter() - started

    dev_pred = predict(model, tokenize(tokenizer, dev.texts, training.max_length))
    tuned = tune_all(dev.emotions, dev_pred["emotions"], groupings)
    group_t = {name: dict(zip(groups, tuned[name].round(4).tolist())) for name, groups in groupings.items()}
    model.config = replace(
        config, emotion_thresholds=tuple(tuned["emotions"].round(4).tolist()),
        extra={**config.extra, "group_thresholds": group_t, "groupings": {k: {g: list(m) for g, m in v.items()} for k, v in groupings.items()},
               "training": asdict(training), "train_texts": len(train), "data": "GoEmotions (Demszky et al., 2020), CC BY 4.0"},
    )
    model.save_pretrained(out_dir)
    thresholds = stored_thresholds(model.config)
    test_pred = predict(model, tokenize(tokenizer, test.texts, training.max_length))
    report = {
        "model": version,
        "test": evaluate(test_pred, test, thresholds, groupings),
        "dev": {k: v for k, v in evaluate(dev_pred, dev, thresholds, groupings).items() if k.endswith("macro_f1") or k == "n"},
        "best_dev_score": result.best_score, "best_step": result.best_step, "steps": result.steps,
        "history": result.history,
        "train_seconds": round(train_seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "seed": training.seed,
        "threads": training.threads,
        "training": asdict(training),
        "encoder": {k: v for k, v in asdict(encoder).items() if k.startswith("lora_")},
        "train_texts": len(train),
        "data": {"folder": data_dir.name, **{f"{s}.tsv": {"rows": len(data[s]), "sha256": _sha256(data_dir / f"{s}.tsv")} for s in SPLITS}},
        "adapter_sha256": _sha256(out_dir / "adapter.safetensors"),
        "versions": _versions(),
        "platform": {"machine": platform.machine(), "system": platform.system()},
    }
    (out_dir / EVAL_FILE).write_text(json.dumps(report, indent=2) + "\n")
    t = report["test"]
    log.info("test macro-F1: 28 labels %.4f, Ekman %.4f, sentiment %.4f, polarity %.4f (%.0fs)",
             t["emotions_macro_f1"], t["ekman_macro_f1"], t["sentiment_macro_f1"], t["polarity"]["macro_f1"], report["seconds"])
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m emorec.jobs.train_emotions --data DIR --out DIR [--seed N] [--epochs N] [--max-train N]``."""
    d = DEFAULT_TRAINING
    p = argparse.ArgumentParser(prog="train-emotions", description="Train the GoEmotions emotion model (adapter + heads).")
    p.add_argument("--data", type=Path, required=True, help="GoEmotions folder (train/dev/test.tsv, labels.txt, ...)")
    p.add_argument("--out", type=Path, required=True, help="output model folder")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--max-train", type=int, default=None, help="train on a seeded sample of N texts")
    p.add_argument("--threads", type=int, default=d.threads, help="torch threads (fixed for reproducible weights)")
    p.add_argument("--device", default="cpu", help="cpu (default: the shipped model's bits are CPU bits), cuda, auto")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--max-length", type=int, default=d.max_length)
    p.add_argument("--eval-every", type=int, default=d.eval_every, help="steps between dev evaluations (0: each epoch)")
    p.add_argument("--emotion-weight", type=float, default=d.emotion_weight)
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--lora-r", type=int, default=DEFAULT_ENCODER.lora_r)
    p.add_argument("--lora-targets", default=",".join(DEFAULT_ENCODER.lora_targets), help="comma-separated module name suffixes")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not (args.data / "train.tsv").exists():
        log.error("no GoEmotions data at %s", args.data)
        return 2
    training = replace(d, seed=args.seed, epochs=args.epochs, threads=args.threads, device=args.device, lr=args.lr, max_length=args.max_length,
                       eval_every=args.eval_every, emotion_weight=args.emotion_weight, max_steps=args.max_steps)
    encoder = replace(DEFAULT_ENCODER, lora_r=args.lora_r, lora_alpha=2.0 * args.lora_r, lora_targets=tuple(args.lora_targets.split(",")))
    train_emotion_model(args.data, args.out, training, encoder, progress=not args.no_progress, max_train=args.max_train)
    return 0


if __name__ == "__main__":
    sys.exit(main())
