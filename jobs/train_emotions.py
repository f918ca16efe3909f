"""Train the emotion model shipped with emorec on GoEmotions (Demszky et al., ACL 2020) and
emorec's own e-commerce phrases.

The model is :class:`sentiment.encoder.EmotionEncoder`: frozen all-MiniLM-L6-v2, LoRA adapters,
a 28-label emotion head (27 emotions + neutral, multi-label) and a 3-class polarity head. The
polarity head learns from a label derived from each comment's emotions (GoEmotions' own
sentiment grouping, see :func:`derive_polarity`) and from synthetic shop language
(:mod:`sentiment.augment`: idioms, negation, sarcasm, whole reviews, feeling statements) plus the
``train`` part of the phrase suite (``tests/data/idiom_suite.csv``). Only openly licensed data
and text written for emorec is trained on.

Decision thresholds are chosen after training on dev data of several domains
(:mod:`sentiment.calibration`): the 28 labels and the sentiment groups on GoEmotions dev; the
Ekman groups on GoEmotions dev and a calibration half of CARER (tweets, research licence: used
to calibrate and evaluate, never trained on); the polarity band on GoEmotions dev, the CARER
calibration half and the phrase suite's ``dev`` part. The GoEmotions test split, the CARER
evaluation half and the suite's ``heldout`` part are only read for the final report,
``eval.json``.

Deterministic: the same data, seed and thread count give a bit-identical ``adapter.safetensors``.

    python -m emorec.jobs.train_emotions --data ../shared/data/goemotions \
        --phrases tests/data/idiom_suite.csv --carer ../shared/data/carer-val --out sentiment/models/default
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from emorec.common.errors import EmorecError, InputError
from emorec.sentiment import calibration
from emorec.sentiment.augment import AugmentConfig, generate, normalize
from emorec.sentiment.encoder import EmotionEncoder, EncoderConfig, load_base, tokenize
from emorec.sentiment.labels import EKMAN_GROUPS, GOEMOTIONS_LABELS, POLARITY_LABELS
from emorec.sentiment.metrics import classification_report, group_labels, multilabel_f1, tune_thresholds
from emorec.sentiment.training import Examples, TrainingConfig, fit, predict, seed_everything

from .arguments import non_negative_int, positive_int, random_seed

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
EVAL_FILE = "eval.json"
#: Settings of the shipped model (chosen by the subset experiments recorded in MODEL_CARD.md).
#: One torch thread: on a shared machine two threads that wait for each other cost up to 10x the
#: CPU time per step (measured while other jobs ran), and the thread count is part of what makes
#: the weights bit-identical.
DEFAULT_TRAINING = TrainingConfig(
    epochs=3, lr=2e-3, weight_decay=0.01, warmup_ratio=0.06, max_length=96, max_tokens=2048, max_batch=32,
    eval_every=800, patience=3, polarity_weight=1.0, emotion_weight=5.0, seed=13, threads=1, device="cpu",
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


PHRASE_SPLITS = ("train", "dev", "heldout")
PHRASE_COLUMNS = ("text", "label", "category", "split")


@dataclass
class PhraseSuite:
    """emorec's own labelled e-commerce phrases (``tests/data/idiom_suite.csv``).

    ``labels`` are class indices (``POLARITY_LABELS`` order); ``split`` says what a phrase may be
    used for: ``train`` (mixed into training), ``dev`` (checkpoint and threshold choice) or
    ``heldout`` (only read for the report).
    """

    texts: list[str]
    labels: np.ndarray
    categories: np.ndarray
    split: np.ndarray
    path: Path

    def part(self, split: str) -> Examples:
        keep = np.flatnonzero(self.split == split)
        return Examples([self.texts[i] for i in keep], self.labels[keep], None)


def read_phrase_suite(path: str | Path) -> PhraseSuite:
    """Read the phrase suite CSV (columns ``text,label,category,split``).

    Raises
    ------
    InputError
        When the file is missing, a column is missing, or a row has an empty text, an unknown
        label or split, or repeats a text (the message names the file and the line).
    """
    import csv

    path = Path(path)
    if not path.is_file():
        raise InputError(f"phrase suite not found: {path}")
    texts, labels, categories, split, seen = [], [], [], [], {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = set(PHRASE_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"{path}: missing column(s) {sorted(missing)} (expected {', '.join(PHRASE_COLUMNS)})")
        for lineno, row in enumerate(reader, 2):
            text = (row["text"] or "").strip()
            if not text:
                raise InputError(f"{path}, line {lineno}: empty text")
            if row["label"] not in POLARITY_LABELS:
                raise InputError(f"{path}, line {lineno}: label {row['label']!r} is not one of {', '.join(POLARITY_LABELS)}")
            if row["split"] not in PHRASE_SPLITS:
                raise InputError(f"{path}, line {lineno}: split {row['split']!r} is not one of {', '.join(PHRASE_SPLITS)}")
            if text in seen:
                raise InputError(f"{path}, line {lineno}: text {text!r} repeats line {seen[text]}")
            seen[text] = lineno
            texts.append(text)
            labels.append(POLARITY_LABELS.index(row["label"]))
            categories.append(row["category"])
            split.append(row["split"])
    return PhraseSuite(texts, np.asarray(labels, np.int64), np.asarray(categories, dtype=object), np.asarray(split, dtype=object), path)


#: CARER's six labels in the Ekman grouping (``love`` counts as joy, the usual mapping) and
#: their polarity (``surprise`` has none).
CARER_EKMAN = {"anger": "anger", "fear": "fear", "joy": "joy", "love": "joy", "sadness": "sadness", "surprise": "surprise"}
CARER_POLARITY = {"anger": 0, "fear": 0, "sadness": 0, "joy": 2, "love": 2, "surprise": -1}
CARER_FILE = "val.txt"


@dataclass
class Carer:
    """CARER sentences (Saravia et al., EMNLP 2018) with their Ekman targets and polarity."""

    texts: list[str]
    labels: np.ndarray
    path: Path

    def ekman_targets(self) -> tuple[np.ndarray, np.ndarray]:
        """Indicator matrix ``(n, 7)`` in ``EKMAN_GROUPS`` order, and which groups CARER annotates."""
        groups = list(EKMAN_GROUPS)
        y = np.zeros((len(self.texts), len(groups)), np.float32)
        for i, label in enumerate(self.labels):
            y[i, groups.index(CARER_EKMAN[label])] = 1.0
        labelled = np.isin(groups, sorted(set(CARER_EKMAN.values())))
        return y, labelled

    def polarity(self) -> np.ndarray:
        return np.array([CARER_POLARITY[label] for label in self.labels], np.int64)

    def subset(self, idx: np.ndarray) -> Carer:
        return Carer([self.texts[i] for i in idx], self.labels[idx], self.path)


def read_carer(folder: str | Path) -> Carer:
    """Read CARER's ``val.txt`` (``text;label`` per line) from ``folder`` (or the file itself).

    Raises :class:`InputError` naming the file and line of a malformed row or unknown label.
    """
    path = Path(folder)
    path = path / CARER_FILE if path.is_dir() else path
    if not path.is_file():
        raise InputError(f"CARER file not found: {path}")
    texts, labels = [], []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        text, sep, label = line.rpartition(";")
        if not sep or not text.strip():
            raise InputError(f"{path}, line {lineno}: expected 'text;label'")
        if label not in CARER_EKMAN:
            raise InputError(f"{path}, line {lineno}: unknown label {label!r} (valid: {', '.join(CARER_EKMAN)})")
        texts.append(text)
        labels.append(label)
    return Carer(texts, np.asarray(labels, dtype=object), path)


def carer_halves(n: int, seed: int = 13) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of CARER's rows: ``(calibration, evaluation)`` halves, sorted indices.

    Thresholds are chosen on the first half only; figures are reported on the second.
    """
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2:])


def concat_examples(parts: list[Examples]) -> Examples:
    """One :class:`Examples` from several (missing targets become -1 / NaN rows)."""
    texts = [t for p in parts for t in p.texts]
    polarity = np.concatenate([p.polarity if p.polarity is not None else np.full(len(p), -1) for p in parts]).astype(np.int64)
    emotions = np.concatenate([p.emotions if p.emotions is not None else np.full((len(p), len(GOEMOTIONS_LABELS)), np.nan, np.float32)
                               for p in parts]).astype(np.float32)
    return Examples(texts, polarity, emotions)


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


def evaluate(pred: dict[str, np.ndarray], data: Examples, thresholds: dict, groupings: dict[str, dict],
             polarity_thresholds: dict | None = None) -> dict:
    """Macro-F1 on the 28 labels and on each grouping, per-label F1, and the polarity reports.

    ``thresholds`` maps ``"emotions"`` and each grouping name to its per-label thresholds
    (sequences, or ``{label: threshold}`` dicts for the groupings). ``polarity`` reports the
    argmax of the polarity head, ``polarity_label`` the decision with the valence band
    ``polarity_thresholds`` (the argmax again when None).
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
    valence = pred["polarity"][has, 2] - pred["polarity"][has, 0]
    decided = calibration.polarity_decision(valence, polarity_thresholds, pred["polarity"][has])
    report["polarity_label"] = classification_report(data.polarity[has], decided, POLARITY_LABELS)
    return report


def stored_thresholds(config: EncoderConfig) -> dict:
    """Thresholds saved by :func:`train_emotion_model` in a model's config."""
    return {"emotions": np.asarray(config.emotion_thresholds), **config.extra.get("group_thresholds", {})}


def stored_polarity_thresholds(config: EncoderConfig) -> dict | None:
    """The model's valence band, or None (argmax) for a model saved without one."""
    return calibration.check_polarity_thresholds(config.polarity_thresholds, "config.json polarity_thresholds")


def evaluate_carer(pred: dict[str, np.ndarray], carer: Carer, ekman_thresholds: dict, polarity_thresholds: dict | None) -> dict:
    """Ekman and polarity figures on CARER sentences with a model's thresholds.

    ``ekman_macro_f1``: multi-label decisions (a group is on when its probability reaches its
    threshold), macro-F1 over the five groups CARER annotates (anger, fear, joy with love,
    sadness, surprise; disgust and neutral are not in its label set). ``ekman_label_macro_f1``:
    the single ``ekman_label`` decision (which agrees with the ``polarity_label``, as the
    scorer's does) against CARER's one label, same five groups.
    ``polarity_macro_f1``: ``polarity_label`` against joy/love = positive and anger/fear/sadness =
    negative (surprise left out), over those two classes (a neutral decision is a miss).
    """
    groups = list(EKMAN_GROUPS)
    y, labelled = carer.ekman_targets()
    probs = group_labels(pred["emotions"], GOEMOTIONS_LABELS, EKMAN_GROUPS)
    t = np.array([ekman_thresholds[g] for g in groups])
    on = probs >= t[None, :]
    f1 = multilabel_f1(y[:, labelled] > 0.5, on[:, labelled])
    valence = pred["polarity"][:, 2] - pred["polarity"][:, 0]
    decided = calibration.polarity_decision(valence, polarity_thresholds, pred["polarity"])
    single = np.eye(len(groups), dtype=bool)[calibration.ekman_decision(probs, t, decided, groups)]
    f1_single = multilabel_f1(y[:, labelled] > 0.5, single[:, labelled])
    pol = carer.polarity()
    has = pol >= 0
    pol_f1 = multilabel_f1(np.eye(3, dtype=bool)[pol[has]][:, [0, 2]], np.eye(3, dtype=bool)[decided[has]][:, [0, 2]])
    scored = [g for g, keep in zip(groups, labelled) if keep]
    return {
        "n": len(carer.texts),
        "ekman_macro_f1": float(f1.mean()), "ekman_per_group_f1": dict(zip(scored, f1.round(4).tolist())),
        "ekman_label_macro_f1": float(f1_single.mean()), "ekman_label_per_group_f1": dict(zip(scored, f1_single.round(4).tolist())),
        "no_emotion_share": float((~on).all(1).mean()),
        "every_label_macro_f1": float(multilabel_f1(y[:, labelled] > 0.5, np.ones_like(on[:, labelled])).mean()),
        "polarity_macro_f1": float(pol_f1.mean()), "polarity_n": int(has.sum()),
        "polarity_neutral_share": float((decided[has] == 1).mean()),
    }


def sign_correct(valence: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(signed, ok)`` per phrase: ``signed`` where the label is negative or positive, ``ok``
    where the valence has the label's sign (a valence of exactly 0 is wrong; ``ok`` is
    meaningless where not ``signed``)."""
    labels = np.asarray(labels)
    neutral = POLARITY_LABELS.index("neutral")
    return labels != neutral, np.sign(valence) == np.where(labels == POLARITY_LABELS.index("positive"), 1, -1)


def evaluate_suite(pred: dict[str, np.ndarray], suite: PhraseSuite, polarity_thresholds: dict | None,
                   generated: set[str] | None = None) -> dict:
    """Accuracy on the phrase suite, per split.

    ``sign_accuracy``: the sign of the valence matches the label, over the positive and negative
    phrases (a valence of exactly 0 is wrong). ``label_accuracy``: ``polarity_label`` equals the
    label, over all phrases. With ``generated`` (normalised texts of the augmentation), also the
    sign accuracy of the held-out phrases that the generator never writes verbatim.
    """
    valence = pred["polarity"][:, 2] - pred["polarity"][:, 0]
    decided = calibration.polarity_decision(valence, polarity_thresholds, pred["polarity"])
    signed, sign_ok = sign_correct(valence, suite.labels)
    out = {}
    for split in PHRASE_SPLITS:
        m = suite.split == split
        out[split] = {"n": int(m.sum()), "n_signed": int((m & signed).sum()),
                      "sign_accuracy": float(sign_ok[m & signed].mean()) if (m & signed).any() else None,
                      "label_accuracy": float((decided[m] == suite.labels[m]).mean()) if m.any() else None}
    signed_all = signed & (suite.split != "train")
    out["dev_and_heldout_sign_accuracy"] = float(sign_ok[signed_all].mean()) if signed_all.any() else None
    if generated is not None:
        fresh = (suite.split == "heldout") & signed & ~np.isin([normalize(t) for t in suite.texts], list(generated))
        out["heldout_not_generated"] = {"n": int(fresh.sum()), "sign_accuracy": float(sign_ok[fresh].mean()) if fresh.any() else None}
    out["errors_heldout"] = [{"text": suite.texts[i], "label": POLARITY_LABELS[suite.labels[i]], "valence": round(float(valence[i]), 3)}
                             for i in np.flatnonzero((suite.split == "heldout") & signed & ~sign_ok)]
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _versions() -> dict:
    import torch
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "numpy": np.__version__}


# --- training ---------------------------------------------------------------------------
def init_emotion_bias(model: EmotionEncoder, targets: np.ndarray) -> None:
    """Start each emotion logit at its training prior, ``log(p / (1 - p))`` (NaN rows, texts
    without emotion targets, are left out).

    With zero biases the first ~1,000 steps only push 28 biases towards rare-label priors
    (about -4 for ``grief``); starting there lets the adapters learn from step one.
    """
    targets = np.asarray(targets, np.float64)
    targets = targets[~np.isnan(targets[:, 0])]
    prior = np.clip(targets.mean(0), 1e-4, 1 - 1e-4)
    with torch.no_grad():
        model.emotion_head.bias.copy_(torch.from_numpy(np.log(prior / (1 - prior))).float())


def calibrate(dev_pred: dict, dev: Examples, groupings: dict[str, dict], carer_pred: dict | None = None,
              carer: Carer | None = None, phrase_pred: dict | None = None, phrases: Examples | None = None) -> dict:
    """Every decision threshold of the model, from dev data of each domain given.

    Returns ``{"emotions": (28,), "ekman": {group: t}, "sentiment": {group: t}, "polarity":
    {"negative": t, "positive": t}, "polarity_dev_scores": {domain: macro-F1}, "domains": [...]}``.
    """
    tuned = tune_all(dev.emotions, dev_pred["emotions"], groupings)
    ekman_domains = {"goemotions_dev": (group_labels(dev_pred["emotions"], GOEMOTIONS_LABELS, EKMAN_GROUPS),
                                        group_labels(dev.emotions, GOEMOTIONS_LABELS, EKMAN_GROUPS), np.ones(len(EKMAN_GROUPS), bool))}
    valence = lambda pred: pred["polarity"][:, 2] - pred["polarity"][:, 0]  # noqa: E731
    polarity_domains = {"goemotions_dev": (valence(dev_pred), dev.polarity)}
    if carer is not None:
        y, labelled = carer.ekman_targets()
        ekman_domains["carer_calibration"] = (group_labels(carer_pred["emotions"], GOEMOTIONS_LABELS, EKMAN_GROUPS), y, labelled)
        polarity_domains["carer_calibration"] = (valence(carer_pred), carer.polarity())
    if phrases is not None:
        polarity_domains["phrase_dev"] = (valence(phrase_pred), phrases.polarity)
    ekman = calibration.choose_label_thresholds(ekman_domains)
    band, scores = calibration.choose_polarity_band(polarity_domains)
    return {
        "emotions": tuned["emotions"],
        "ekman": dict(zip(EKMAN_GROUPS, ekman.round(4).tolist())),
        "sentiment": dict(zip(groupings["sentiment"], tuned["sentiment"].round(4).tolist())),
        "polarity": band, "polarity_dev_scores": {k: round(v, 4) for k, v in scores.items()},
        "domains": {"ekman": sorted(ekman_domains), "polarity": sorted(polarity_domains),
                    "emotions": ["goemotions_dev"], "sentiment": ["goemotions_dev"]},
    }


def assemble_training(goemotions: Examples, suite: PhraseSuite | None, augment: AugmentConfig | None) -> tuple[Examples, dict, set | None]:
    """The training set: GoEmotions, the synthetic examples and the suite's ``train`` phrases.

    Synthetic texts equal (after :func:`sentiment.augment.normalize`) to a ``dev`` or
    ``heldout`` phrase of the suite are dropped, so those parts stay unseen. Returns the
    examples, their composition (counts per source) and the normalised synthetic texts (for
    the report's "held-out phrases the generator never writes" figure).
    """
    parts, composition, generated = [goemotions], {"goemotions": len(goemotions)}, None
    if augment is not None:
        synthetic = generate(augment)
        generated = {normalize(t) for t in synthetic.texts}
        if suite is not None:
            reserved = {normalize(t) for t, sp in zip(suite.texts, suite.split) if sp != "train"}
            keep = np.flatnonzero([normalize(t) not in reserved for t in synthetic.texts])
            composition["synthetic_dropped_as_reserved_phrases"] = len(synthetic) - len(keep)
            synthetic = Examples([synthetic.texts[i] for i in keep], synthetic.polarity[keep], synthetic.emotions[keep])
        parts.append(synthetic)
        composition["synthetic"] = len(synthetic)
    if suite is not None:
        parts.append(suite.part("train"))
        composition["phrase_suite_train"] = len(parts[-1])
    return (concat_examples(parts) if len(parts) > 1 else goemotions), composition, generated


def train_emotion_model(
    data_dir: str | Path,
    out_dir: str | Path,
    training: TrainingConfig | None = None,
    encoder: EncoderConfig | None = None,
    progress: bool = True,
    max_train: int | None = None,
    phrases: str | Path | None = None,
    carer: str | Path | None = None,
    augment: AugmentConfig | None = None,
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
        Train on a seeded sample of this many GoEmotions training texts (quick experiments).
    phrases
        The phrase suite CSV (:func:`read_phrase_suite`): its ``train`` part is trained on, its
        ``dev`` part scores checkpoints and calibrates the polarity band, its ``heldout`` part is
        only reported. Synthetic texts equal (after :func:`sentiment.augment.normalize`) to a
        ``dev`` or ``heldout`` phrase are dropped from training.
    carer
        CARER folder (:func:`read_carer`): a seeded half calibrates the Ekman thresholds and the
        polarity band, the other half is only reported. Never trained on.
    augment
        Synthetic e-commerce examples (:mod:`sentiment.augment`) mixed into training; None for
        GoEmotions alone.

    Returns
    -------
    dict
        The report written to ``eval.json``: test macro-F1 on the 28 labels, on the Ekman
        grouping (+neutral) and on the sentiment grouping (+neutral), per-label F1, the
        polarity head's 3-class report and ``polarity_label``'s, the same figures on dev, the
        thresholds and the domains they were chosen on, CARER evaluation-half and phrase-suite
        figures, the training history, seconds, seed, threads, data checksums and library
        versions.

    Notes
    -----
    Early stopping scores dev by macro-F1 on the 28 labels with thresholds tuned on dev
    itself (an optimistic but monotone proxy of the final figure; thresholds are cheap),
    averaged with the sign accuracy on the phrase suite's ``dev`` part when it is given.
    """
    started = time.perf_counter()
    training = training or DEFAULT_TRAINING
    encoder = encoder or DEFAULT_ENCODER
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    seed_everything(training.seed, training.threads)
    data = read_goemotions(data_dir)
    ekman, sentiment_groups = read_groups(data_dir)
    groupings = {"ekman": ekman, "sentiment": sentiment_groups}
    suite = read_phrase_suite(phrases) if phrases else None
    carer_all = read_carer(carer) if carer else None
    train = data["train"]
    if max_train and len(train) > max_train:
        keep = np.sort(np.random.default_rng(training.seed).choice(len(train), max_train, replace=False))
        train = Examples([train.texts[i] for i in keep], train.polarity[keep], train.emotions[keep])
    dev, test = data["dev"], data["test"]
    train, composition, generated = assemble_training(train, suite, augment)
    phrase_dev = suite.part("dev") if suite is not None else None

    tokenizer, bert = load_base()
    name = "goemotions-phrases" if (suite is not None or augment is not None) else "goemotions"
    version = f"{name}-minilm-lora-v3-seed{training.seed}"
    config = replace(encoder, max_length=training.max_length, version=version,
                     emotion_labels=GOEMOTIONS_LABELS, polarity_labels=POLARITY_LABELS)
    model = EmotionEncoder(bert, config, seed=training.seed)
    init_emotion_bias(model, train.emotions)

    n_dev = len(dev)
    dev_all = concat_examples([dev, phrase_dev]) if phrase_dev is not None else dev

    def dev_score(pred: dict) -> float:
        emo = pred["emotions"][:n_dev]
        score = macro_f1(dev.emotions, emo, tune_thresholds(dev.emotions > 0.5, emo))[0]
        if phrase_dev is not None:
            v = pred["polarity"][n_dev:, 2] - pred["polarity"][n_dev:, 0]
            signed, ok = sign_correct(v, phrase_dev.polarity)
            score = 0.5 * score + 0.5 * float(ok[signed].mean())
        return score

    log.info("training on %d texts (%s; dev %d), %s", len(train), composition, len(dev_all), training)
    result = fit(model, tokenizer, train, dev_all, training, dev_score, progress=progress)
    train_seconds = time.perf_counter() - started

    def run(texts: list[str]) -> dict:
        return predict(model, tokenize(tokenizer, texts, training.max_length))

    dev_pred = run(dev.texts)
    carer_cal = carer_eval = None
    if carer_all is not None:
        cal_idx, eval_idx = carer_halves(len(carer_all.texts), training.seed)
        carer_cal, carer_eval = carer_all.subset(cal_idx), carer_all.subset(eval_idx)
    thresholds = calibrate(dev_pred, dev, groupings, run(carer_cal.texts) if carer_cal else None, carer_cal,
                           run(phrase_dev.texts) if phrase_dev is not None else None, phrase_dev)
    model.config = replace(
        config, emotion_thresholds=tuple(thresholds["emotions"].round(4).tolist()), polarity_thresholds=thresholds["polarity"],
        extra={**config.extra, "group_thresholds": {"ekman": thresholds["ekman"], "sentiment": thresholds["sentiment"]},
               "threshold_domains": thresholds["domains"],
               "groupings": {k: {g: list(m) for g, m in v.items()} for k, v in groupings.items()},
               "training": asdict(training), "train_texts": len(train), "train_composition": composition,
               "data": "GoEmotions (Demszky et al., 2020), CC BY 4.0" + ("; emorec synthetic and suite phrases (Apache-2.0)" if len(composition) > 1 else "")},
    )
    model.save_pretrained(out_dir)
    stored = stored_thresholds(model.config)
    band = stored_polarity_thresholds(model.config)
    test_pred = run(test.texts)
    report = {
        "model": version,
        "test": evaluate(test_pred, test, stored, groupings, band),
        "dev": {k: v for k, v in evaluate(dev_pred, dev, stored, groupings, band).items() if k.endswith("macro_f1") or k == "n"},
        "thresholds": {"polarity": band, "ekman": thresholds["ekman"], "domains": thresholds["domains"],
                       "polarity_dev_scores": thresholds["polarity_dev_scores"]},
        "best_dev_score": result.best_score, "best_step": result.best_step, "steps": result.steps,
        "history": result.history,
        "train_seconds": round(train_seconds, 1),
        "seed": training.seed,
        "threads": training.threads,
        "training": asdict(training),
        "encoder": {k: v for k, v in asdict(encoder).items() if k.startswith("lora_")},
        "augment": augment.model_dump() if augment is not None else None,
        "train_texts": len(train), "train_composition": composition,
        "data": {"folder": data_dir.name, **{f"{s}.tsv": {"rows": len(data[s]), "sha256": _sha256(data_dir / f"{s}.tsv")} for s in SPLITS}},
    }
    if carer_eval is not None:
        report["carer_evaluation_half"] = evaluate_carer(run(carer_eval.texts), carer_eval, thresholds["ekman"], band)
        report["data"]["carer"] = {"file": carer_all.path.name, "rows": len(carer_all.texts), "sha256": _sha256(carer_all.path),
                                   "calibration_rows": len(carer_cal.texts), "evaluation_rows": len(carer_eval.texts), "split_seed": training.seed}
    if suite is not None:
        report["phrase_suite"] = evaluate_suite(run(suite.texts), suite, band, generated)
        report["data"]["phrase_suite"] = {"file": suite.path.name, "rows": len(suite.texts), "sha256": _sha256(suite.path)}
    report.update({"adapter_sha256": _sha256(out_dir / "adapter.safetensors"), "versions": _versions(),
                   "platform": {"machine": platform.machine(), "system": platform.system()},
                   "seconds": round(time.perf_counter() - started, 1)})
    (out_dir / EVAL_FILE).write_text(json.dumps(report, indent=2) + "\n")
    t = report["test"]
    log.info("test macro-F1: 28 labels %.4f, Ekman %.4f, sentiment %.4f, polarity %.4f (label %.4f) (%.0fs)",
             t["emotions_macro_f1"], t["ekman_macro_f1"], t["sentiment_macro_f1"], t["polarity"]["macro_f1"],
             t["polarity_label"]["macro_f1"], report["seconds"])
    if carer_eval is not None:
        log.info("CARER evaluation half: Ekman macro-F1 %.4f", report["carer_evaluation_half"]["ekman_macro_f1"])
    if suite is not None:
        log.info("phrase suite sign accuracy: %s", {k: v["sign_accuracy"] for k, v in report["phrase_suite"].items() if k in PHRASE_SPLITS})
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m emorec.jobs.train_emotions --data DIR --out DIR [--phrases CSV] [--carer DIR] ...``."""
    d = DEFAULT_TRAINING
    a = AugmentConfig()
    p = argparse.ArgumentParser(prog="train-emotions", description="Train the emotion model (adapter + heads) on GoEmotions and emorec's phrases.")
    p.add_argument("--data", type=Path, required=True, help="GoEmotions folder (train/dev/test.tsv, labels.txt, ...)")
    p.add_argument("--out", type=Path, required=True, help="output model folder")
    p.add_argument("--phrases", type=Path, help="phrase suite CSV (tests/data/idiom_suite.csv): train part trained on, dev part "
                   "calibrates, heldout part only reported")
    p.add_argument("--carer", type=Path, help="CARER folder (../shared/data/carer-val): a seeded half calibrates thresholds, "
                   "the other half is reported; never trained on")
    p.add_argument("--no-augment", action="store_true", help="train without the synthetic e-commerce examples")
    p.add_argument("--augment-phrases", type=non_negative_int, default=a.phrases, help="synthetic one-line idioms (default: %(default)s)")
    p.add_argument("--augment-reviews", type=non_negative_int, default=a.reviews, help="synthetic whole reviews (default: %(default)s)")
    p.add_argument("--augment-feelings", type=non_negative_int, default=a.feelings, help="synthetic feeling statements (default: %(default)s)")
    p.add_argument("--augment-facts", type=non_negative_int, default=a.facts, help="synthetic factual lines (default: %(default)s)")
    p.add_argument("--augment-long-reviews", type=non_negative_int, default=a.long_reviews,
                   help="synthetic long reviews diluted by story and fact (default: %(default)s)")
    p.add_argument("--seed", type=random_seed, default=d.seed)
    p.add_argument("--epochs", type=positive_int, default=d.epochs)
    p.add_argument("--max-train", type=positive_int, default=None, help="train on a seeded sample of N texts")
    p.add_argument("--threads", type=positive_int, default=d.threads, help="torch threads (fixed for reproducible weights)")
    p.add_argument("--device", default="cpu", help="cpu (default: the shipped model's bits are CPU bits), cuda, auto")
    p.add_argument("--precision", choices=["fp32", "bf16"], default=d.precision,
                   help="forward passes in fp32 or under bfloat16 autocast (faster on CPUs with AMX and on GPUs; the weights "
                        "stay fp32; the shipped model's bits need fp32; default: %(default)s)")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--max-length", type=positive_int, default=d.max_length)
    p.add_argument("--eval-every", type=non_negative_int, default=d.eval_every, help="steps between dev evaluations (0: each epoch)")
    p.add_argument("--emotion-weight", type=float, default=d.emotion_weight)
    p.add_argument("--max-steps", type=positive_int, default=None)
    p.add_argument("--lora-r", type=positive_int, default=DEFAULT_ENCODER.lora_r)
    p.add_argument("--lora-targets", default=",".join(DEFAULT_ENCODER.lora_targets), help="comma-separated module name suffixes")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not (args.data / "train.tsv").exists():
        log.error("no GoEmotions data at %s", args.data)
        return 2
    try:
        training = replace(d, seed=args.seed, epochs=args.epochs, threads=args.threads, device=args.device, lr=args.lr,
                           max_length=args.max_length, eval_every=args.eval_every, emotion_weight=args.emotion_weight,
                           max_steps=args.max_steps, precision=args.precision)
        encoder = replace(DEFAULT_ENCODER, lora_r=args.lora_r, lora_alpha=2.0 * args.lora_r, lora_targets=tuple(args.lora_targets.split(",")))
        augment = None if args.no_augment else AugmentConfig(phrases=args.augment_phrases, reviews=args.augment_reviews,
                                                             feelings=args.augment_feelings, facts=args.augment_facts,
                                                             long_reviews=args.augment_long_reviews, seed=args.seed)
        train_emotion_model(args.data, args.out, training, encoder, progress=not args.no_progress, max_train=args.max_train,
                            phrases=args.phrases, carer=args.carer, augment=augment)
    except EmorecError as exc:
        log.error("%s", exc)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
