"""What the encoder's features carry about a review's stars: linear probes on the Amazon file.

The zero-shot target (macro-F1 0.60 on held-out users, issue 15) asks the shipped model, trained
off the shop, to read 3-star reviews as neutral. This benchmark measures how much of that any
linear read-out of the encoder's features could get, by fitting a probe on the shop's own stars:

- ``base``: all-MiniLM-L6-v2 as the package ships it (mean-pooled, no adapter), the sentence
  embedding a frozen-feature approach would use;
- ``shipped``: the shipped emotion model's pooled features (MiniLM with its LoRA adapters), the
  features its polarity head reads.

For each, a multinomial logistic regression with balanced class weights
(``sentiment_amazon.logistic_regression``) is fitted (a) on the stars of the *training users* of
the user split and (b) on emorec's own synthetic examples only (``sentiment.augment``: phrases,
short and long reviews, facts; no shop data: a zero-shot probe). Every probe, and the shipped
polarity head, is scored on the *dev users*: the argmax, and the best valence band chosen on
those dev users themselves (an upper bound on what a band could do). The test users of
``sentiment_amazon.py`` are never read.

    python benchmarks/sentiment_probe.py [--seed 13] [--threads 2] [--synthetic 6000]

About 10 minutes on 2 threads. Prints the table and writes
``benchmarks/results/sentiment_probe[_seed<N>].json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sentiment_amazon import AMAZON, OUT, frozen_embeddings, logistic_regression

from emorec import sentiment
from emorec.jobs.loaders import load_reviews
from emorec.jobs.pipeline import clean_reviews
from emorec.sentiment.augment import AugmentConfig, generate
from emorec.sentiment.calibration import choose_polarity_band, polarity_decision
from emorec.sentiment.encoder import EmotionEncoder, encode_batches, tokenize
from emorec.sentiment.finetune import SHOP_TRAINING, polarity_labels, split_by_user
from emorec.sentiment.labels import POLARITY_LABELS
from emorec.sentiment.metrics import classification_report
from emorec.sentiment.transformer import SHIPPED_MODEL, TransformerScorer

log = logging.getLogger("sentiment_probe")


def shipped_features(texts: list[str], max_length: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The shipped model's pooled features and its polarity head's probabilities."""
    model, tokenizer = EmotionEncoder.from_pretrained(SHIPPED_MODEL)
    ids = tokenize(tokenizer, texts, max_length)
    pooled = np.zeros((len(texts), model.bert.config.hidden_size), np.float32)
    probs = np.zeros((len(texts), len(POLARITY_LABELS)), np.float32)
    for idx, out, _ in encode_batches(model, ids):
        pooled[idx] = out["pooled"].numpy()
        probs[idx] = torch.softmax(out["polarity"], -1).numpy()
    return pooled, probs


def scores(y: np.ndarray, probs: np.ndarray, band: dict | None = None) -> dict:
    """Macro-F1 of the argmax, of ``band`` (when given) and of the best band on these rows."""
    valence = probs[:, 2] - probs[:, 0]
    best, _ = choose_polarity_band({"rows": (valence, y)})

    def f1(pred: np.ndarray) -> float:
        return round(classification_report(y, pred, POLARITY_LABELS)["macro_f1"], 4)

    out = {"argmax": f1(probs.argmax(1)), "best_band": f1(polarity_decision(valence, best)), "best_band_thresholds": best}
    if band is not None:
        out["band"] = f1(polarity_decision(valence, band))
        out["band_thresholds"] = band
    return out


def probe(x_fit: np.ndarray, y_fit: np.ndarray, x_eval: np.ndarray) -> np.ndarray:
    """Probabilities of a logistic regression fitted on standardised features."""
    mean, sd = x_fit.mean(0), x_fit.std(0) + 1e-6
    lin = logistic_regression((x_fit - mean) / sd, y_fit)
    with torch.no_grad():
        return torch.softmax(lin(torch.from_numpy(((x_eval - mean) / sd).astype(np.float32))), -1).numpy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=SHOP_TRAINING.seed, help="the user split of sentiment_amazon.py --seed")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--synthetic", type=int, default=6000, help="synthetic examples of each kind for the zero-shot probe (about)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not AMAZON.exists():
        print(f"SKIP: {AMAZON} not found (../shared/data is absent)")
        return 0
    torch.set_num_threads(args.threads)
    reviews = clean_reviews(load_reviews(AMAZON)).reviews
    role = split_by_user(reviews["user_id"].to_numpy(dtype=object), seed=args.seed)
    rows = np.flatnonzero(role != "test")  # the test users are never read
    texts = sentiment.review_text(reviews["title"], reviews["text"]).to_numpy(dtype=object)[rows].tolist()
    y = polarity_labels(reviews["rating"].to_numpy(dtype=np.float64))[rows]
    train, dev = role[rows] == "train", role[rows] == "dev"
    n = args.synthetic
    synthetic = generate(AugmentConfig(phrases=n // 3, reviews=n // 3, feelings=0, facts=n // 12, long_reviews=n // 2, seed=99))
    y_syn = np.asarray(synthetic.polarity)
    results: dict = {"data": AMAZON.name, "split_seed": args.seed, "n_train_reviews": int(train.sum()), "n_dev_reviews": int(dev.sum()),
                     "n_synthetic": len(y_syn), "synthetic_class_counts": np.bincount(y_syn, minlength=3).tolist()}

    t = time.perf_counter()
    features = {"base": (frozen_embeddings(texts), frozen_embeddings(list(synthetic.texts)))}
    log.info("base features in %.0fs", time.perf_counter() - t)
    t = time.perf_counter()
    shop, head = shipped_features(texts)
    features["shipped"] = (shop, shipped_features(list(synthetic.texts))[0])
    log.info("shipped features in %.0fs", time.perf_counter() - t)

    shipped_band = TransformerScorer(SHIPPED_MODEL).thresholds["polarity"]
    results["shipped_head_zero_shot"] = scores(y[dev], head[dev], shipped_band)
    for name, (x_shop, x_syn) in features.items():
        results[f"{name}_probe_shop_stars"] = scores(y[dev], probe(x_shop[train], y[train], x_shop[dev]))
        results[f"{name}_probe_synthetic"] = scores(y[dev], probe(x_syn, y_syn, x_shop[dev]))

    print(f"dev users of split {args.seed}: {int(dev.sum())} reviews (macro-F1: argmax / best band on these reviews)")
    for key, value in results.items():
        if isinstance(value, dict):
            extra = f" / shipped band {value['band']:.4f}" if "band" in value else ""
            print(f"  {key:<32} {value['argmax']:.4f} / {value['best_band']:.4f}{extra}")
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / ("sentiment_probe.json" if args.seed == SHOP_TRAINING.seed else f"sentiment_probe_seed{args.seed}.json")
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
