"""Do long synthetic reviews help the shipped model read real reviews? A cheap proxy for a retrain.

Retraining the shipped emotion model takes about an hour on 2 cores. This benchmark answers the
question behind a retrain first, in about 16 minutes: it continues training the shipped model for
one epoch on a small mix (8,000 GoEmotions train comments and 3,311 distinct synthetic idioms,
reviews, feelings and facts, :mod:`sentiment.augment`) plus ``--n-reviews`` synthetic reviews of
one kind (duplicates dropped), and compares the arms:

- ``shipped``: the shipped model, not trained further;
- ``short_reviews``: plus the shipped kind of synthetic review (2-5 aspect sentences);
- ``long_reviews``: plus long reviews diluted by story and fact (``AugmentConfig.long_reviews``).

Both training arms see about the same number of examples, so the difference is the kind of review.
Each arm is read on 3,000 reviews of the Amazon file's *train and dev users* (the users of the
user split that are never test users; seed 13 as in ``sentiment_amazon.py``) and on 1,000
GoEmotions dev comments (to see that the Reddit polarity does not suffer):

- ``polarity_label`` macro-F1 with the shipped model's band, with the best band on these
  reviews (``oracle``: how far the probabilities can be cut, not a zero-shot figure), and of the
  argmax; the log-loss of the polarity probabilities;
- GoEmotions dev polarity macro-F1 (argmax, and with the shipped band).

    python benchmarks/long_review_proxy.py [--threads 1] [--n-reviews 3000] [--max-length 96]

Prints a table and writes ``benchmarks/results/long_review_proxy.json``. Nothing is trained on the
Amazon reviews; their labels only score the arms.
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

ROOT = Path(__file__).resolve().parents[1]

from emorec import sentiment  # noqa: E402
from emorec.jobs.loaders import load_reviews  # noqa: E402
from emorec.jobs.pipeline import clean_reviews  # noqa: E402
from emorec.jobs.train_emotions import concat_examples, read_goemotions  # noqa: E402
from emorec.sentiment.augment import AugmentConfig, generate  # noqa: E402
from emorec.sentiment.calibration import choose_polarity_band, polarity_decision  # noqa: E402
from emorec.sentiment.encoder import EmotionEncoder, tokenize  # noqa: E402
from emorec.sentiment.finetune import polarity_labels, split_by_user  # noqa: E402
from emorec.sentiment.labels import POLARITY_LABELS  # noqa: E402
from emorec.sentiment.metrics import classification_report, multiclass_log_loss  # noqa: E402
from emorec.sentiment.training import Examples, TrainingConfig, fit, predict  # noqa: E402
from emorec.sentiment.transformer import SHIPPED_MODEL  # noqa: E402

DATA = ROOT.parent / "shared/data"
AMAZON = DATA / "amazon-musical-instruments-2014/reviews_Musical_Instruments_5.json.gz"
GOEMOTIONS = DATA / "goemotions"
OUT = ROOT / "benchmarks/results/long_review_proxy.json"
ARMS = ("shipped", "short_reviews", "long_reviews")


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    return round(classification_report(y, pred, POLARITY_LABELS)["macro_f1"], 4)


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return round(multiclass_log_loss(y, p, eps=1e-12), 4)


def arm_reviews(arm: str, n: int) -> Examples | None:
    if arm == "short_reviews":
        return generate(AugmentConfig(phrases=0, reviews=n, feelings=0, facts=0, seed=7))
    if arm == "long_reviews":
        return generate(AugmentConfig(phrases=0, reviews=0, feelings=0, facts=0, long_reviews=n, seed=7))
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-reviews", type=int, default=3000)
    ap.add_argument("--max-length", type=int, default=96, help="training length in tokens (the shipped model's: 96)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not (AMAZON.exists() and (GOEMOTIONS / "train.tsv").exists()):
        print(f"SKIP: {AMAZON} or {GOEMOTIONS} not found (../shared/data is absent)")
        return 0
    torch.set_num_threads(args.threads)

    reviews = clean_reviews(load_reviews(AMAZON)).reviews
    texts = sentiment.review_text(reviews["title"], reviews["text"]).to_numpy(dtype=object)
    y_all = polarity_labels(reviews["rating"].to_numpy(dtype=np.float64))
    role = split_by_user(reviews["user_id"].to_numpy(dtype=object), seed=13)
    rows = np.flatnonzero((role != "test") & (y_all >= 0))
    rows = np.sort(np.random.default_rng(3).choice(rows, min(3000, len(rows)), replace=False))
    shop_texts, shop_y = [str(t) for t in texts[rows]], y_all[rows]

    go = read_goemotions(GOEMOTIONS, splits=("train", "dev"))
    rng = np.random.default_rng(5)
    pick = rng.choice(len(go["train"]), 8000, replace=False)
    dev_pick = rng.choice(len(go["dev"]), 1000, replace=False)

    def subset(ex: Examples, idx: np.ndarray) -> Examples:
        return Examples([ex.texts[i] for i in idx], ex.polarity[idx], ex.emotions[idx])

    go_train, go_dev = subset(go["train"], pick), subset(go["dev"], dev_pick)
    mix = generate(AugmentConfig(phrases=1500, reviews=1000, feelings=1000, facts=300, seed=21))
    dev_y = go_dev.polarity
    rated = dev_y >= 0

    def dev_score(pred: dict) -> float:
        return macro_f1(dev_y[rated], pred["polarity"][rated].argmax(1))

    config = TrainingConfig(epochs=1, lr=5e-4, max_length=args.max_length, max_tokens=2048, max_batch=32, eval_every=10**9,
                            patience=3, polarity_weight=1.0, emotion_weight=5.0, seed=13, threads=args.threads, device="cpu")
    results: dict = {"data": [AMAZON.name, "goemotions dev"], "n_shop_reviews": len(rows), "shop_users": "train and dev users (seed 13)",
                     "n_goemotions_dev": int(rated.sum()), "training": {"goemotions": len(go_train), "synthetic_mix": len(mix),
                                                                        "epochs": 1, "lr": 5e-4, "max_length": args.max_length},
                     "arms": {}}
    for arm in ARMS:
        model, tokenizer = EmotionEncoder.from_pretrained(SHIPPED_MODEL)
        band = model.config.polarity_thresholds
        extra = arm_reviews(arm, args.n_reviews)
        seconds = 0.0
        if extra is not None:
            train = concat_examples([go_train, mix, Examples(extra.texts, extra.polarity, None)])
            t = time.perf_counter()
            fit(model, tokenizer, train, go_dev, config, dev_score, progress=False)
            seconds = time.perf_counter() - t
        p = predict(model, tokenize(tokenizer, shop_texts, 256))["polarity"]
        g = predict(model, tokenize(tokenizer, go_dev.texts, 96))["polarity"]
        v, gv = p[:, 2] - p[:, 0], g[:, 2] - g[:, 0]
        oracle_band, oracle = choose_polarity_band({"shop": (v, shop_y)})
        results["arms"][arm] = {
            "extra_reviews": 0 if extra is None else len(extra), "train_seconds": round(seconds, 1),
            "shop_macro_f1_shipped_band": macro_f1(shop_y, polarity_decision(v, band)),
            "shop_macro_f1_oracle_band": round(oracle["shop"], 4), "shop_oracle_band": oracle_band,
            "shop_macro_f1_argmax": macro_f1(shop_y, p.argmax(1)), "shop_log_loss": log_loss(shop_y, p),
            "goemotions_dev_polarity_macro_f1_argmax": macro_f1(dev_y[rated], g[rated].argmax(1)),
            "goemotions_dev_polarity_macro_f1_shipped_band": macro_f1(dev_y[rated], polarity_decision(gv[rated], band)),
        }
        r = results["arms"][arm]
        print(f"{arm:<14} shop: shipped band {r['shop_macro_f1_shipped_band']:.3f}  oracle band {r['shop_macro_f1_oracle_band']:.3f}  "
              f"argmax {r['shop_macro_f1_argmax']:.3f}  log-loss {r['shop_log_loss']:.3f} | GoEmotions dev polarity "
              f"argmax {r['goemotions_dev_polarity_macro_f1_argmax']:.3f}  band {r['goemotions_dev_polarity_macro_f1_shipped_band']:.3f}",
              flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
