"""Is the shop n-gram head's gain real? A paired bootstrap over the Amazon test users.

``benchmarks/sentiment_amazon.py`` saves the fine-tuned model with its n-gram head
(``sentiment_amazon_model/``) and the same transformer without it, with the band chosen for it
alone on the dev users (``sentiment_amazon_model_transformer_only/``). This script scores the
held-out test users with both (``polarity_label``, fp32), and resamples the *users* (all of a
user's reviews together) 2,000 times: the macro-F1 difference, its 95% interval and the share of
resamples where the head does not help.

The test figure also depends on the band chosen on about 1,000 dev reviews, so the script reports,
per model, figures that do not: the test log-loss, the argmax macro-F1 and the best band's
macro-F1 on the test users (an oracle no shipped rule can use), and the test macro-F1 with the
band re-chosen on the dev users as the scorer reads them (256 tokens; ``train-sentiment``
chooses it on the dev predictions at its training length, 160).

    python benchmarks/sentiment_amazon.py --skip-frozen [--seed 13]     # first (about 25 min)
    python benchmarks/sentiment_amazon_blend.py [--seed 13] [--threads 2] [--n-boot 2000]

Prints the figures and writes ``benchmarks/results/sentiment_amazon_blend.json`` (with
``--seed N`` other than 13: ``sentiment_amazon_blend_seed<N>.json``, from that split's models).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from emorec import sentiment  # noqa: E402
from emorec.jobs.loaders import load_reviews  # noqa: E402
from emorec.jobs.pipeline import clean_reviews  # noqa: E402
from emorec.sentiment.calibration import choose_polarity_band, polarity_decision  # noqa: E402
from emorec.sentiment.finetune import SHOP_TRAINING, polarity_labels, split_by_user  # noqa: E402
from emorec.sentiment.labels import POLARITY_LABELS  # noqa: E402
from emorec.sentiment.metrics import classification_report, multiclass_log_loss  # noqa: E402
from emorec.sentiment.transformer import TransformerScorer  # noqa: E402

AMAZON = ROOT.parent / "shared/data/amazon-musical-instruments-2014/reviews_Musical_Instruments_5.json.gz"
OUT = ROOT / "benchmarks/results"


def macro_f1(y: np.ndarray, pred: np.ndarray) -> float:
    return classification_report(y, pred, POLARITY_LABELS)["macro_f1"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=SHOP_TRAINING.seed, help="the user split (and models) of sentiment_amazon.py --seed")
    args = ap.parse_args()
    suffix = "" if args.seed == SHOP_TRAINING.seed else f"_seed{args.seed}"
    models = {"with_ngram_head": OUT / f"sentiment_amazon_model{suffix}",
              "transformer_only": OUT / f"sentiment_amazon_model{suffix}_transformer_only"}
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not AMAZON.exists():
        print(f"SKIP: {AMAZON} not found (../shared/data is absent)")
        return 0
    missing = [str(p) for p in models.values() if not (p / "config.json").exists()]
    if missing:
        print(f"SKIP: run benchmarks/sentiment_amazon.py first (missing {', '.join(missing)})")
        return 0
    reviews = clean_reviews(load_reviews(AMAZON)).reviews
    texts = sentiment.review_text(reviews["title"], reviews["text"]).to_numpy(dtype=object)
    users = reviews["user_id"].to_numpy(dtype=str)
    y = polarity_labels(reviews["rating"].to_numpy(dtype=np.float64))
    role = split_by_user(users, seed=args.seed)
    test, dev = np.flatnonzero(role == "test"), np.flatnonzero(role == "dev")
    index = {k: i for i, k in enumerate(POLARITY_LABELS)}
    probs, pred, quality = {}, {}, {}
    for name, path in models.items():
        scorer = TransformerScorer(path, threads=args.threads)
        scored = scorer.score(list(texts[np.concatenate([test, dev])]))
        p = scored[["p_negative", "p_neutral", "p_positive"]].to_numpy(dtype=np.float64)
        probs[name], pred[name] = p[:len(test)], scored["polarity_label"].map(index).to_numpy()[:len(test)]
        valence, y_test = p[:, 2] - p[:, 0], y[test]
        dev_band, _ = choose_polarity_band({"dev": (valence[len(test):], y[dev])})
        _, oracle = choose_polarity_band({"test": (valence[:len(test)], y_test)})
        quality[name] = {  # figures that do not depend on the band train-sentiment chose
            "test_log_loss": round(multiclass_log_loss(y_test, p[:len(test)]), 4),
            "test_argmax_macro_f1": round(macro_f1(y_test, p[:len(test)].argmax(1)), 4),
            "test_best_band_macro_f1": round(oracle["test"], 4),
            "band_from_dev_read_at_scorer_length": dev_band,
            "test_macro_f1_with_that_band": round(macro_f1(y_test, polarity_decision(valence[:len(test)], dev_band)), 4)}
        print(f"{name}: {quality[name]}", flush=True)
    y, users = y[test], users[test]
    observed = {name: macro_f1(y, p) for name, p in pred.items()}
    unique, inverse = np.unique(users, return_inverse=True)
    rows_of = [np.flatnonzero(inverse == u) for u in range(len(unique))]
    rng = np.random.default_rng(0)
    diffs = np.empty(args.n_boot)
    for b in range(args.n_boot):
        rows = np.concatenate([rows_of[u] for u in rng.integers(0, len(unique), len(unique))])
        diffs[b] = macro_f1(y[rows], pred["with_ngram_head"][rows]) - macro_f1(y[rows], pred["transformer_only"][rows])
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    result = {"n_test_reviews": len(test), "n_test_users": len(unique), "macro_f1": {k: round(v, 4) for k, v in observed.items()},
              "difference": round(observed["with_ngram_head"] - observed["transformer_only"], 4),
              "bootstrap": {"n_boot": args.n_boot, "resampled": "users", "ci95": [round(lo, 4), round(hi, 4)],
                            "share_not_better": round(float((diffs <= 0).mean()), 4)},
              "band_free": quality}
    print(f"macro-F1 with the n-gram head {observed['with_ngram_head']:.4f}, transformer only {observed['transformer_only']:.4f}; "
          f"difference {result['difference']:+.4f}, 95% interval over users [{lo:+.4f}, {hi:+.4f}], "
          f"not better in {result['bootstrap']['share_not_better']:.1%} of {args.n_boot} resamples")
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"sentiment_amazon_blend{suffix}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
