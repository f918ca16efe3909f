"""Where the Amazon polarity gap is, read on users that are never the test users.

Two diagnostics behind issue 15's Amazon figures (``benchmarks/sentiment_amazon.py`` has the
figures themselves), both on the same user split (``sentiment.finetune.split_by_user``, seed 13):

- ``by_stars``: the shipped model's valence (10th, 50th, 90th percentile) and ``polarity_label``
  shares on 150 reviews per star rating of train and dev users.
- ``truncation``: macro-F1 of ``polarity_label`` when long reviews keep their first ``h`` and
  last ``t`` tokens (head + tail) instead of the first 254 (the scorer's cut), for the shipped
  model on 3,000 reviews of train and dev users, and with ``--finetuned DIR`` (a folder written
  by ``sentiment_amazon.py``) for that model on the dev users.

    python benchmarks/sentiment_amazon_diagnostics.py [--threads 2] [--finetuned benchmarks/results/sentiment_amazon_model]

Prints the tables and writes ``benchmarks/results/sentiment_amazon_diagnostics.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

from emorec import sentiment  # noqa: E402
from emorec.jobs.loaders import load_reviews  # noqa: E402
from emorec.jobs.pipeline import clean_reviews  # noqa: E402
from emorec.sentiment.calibration import polarity_decision  # noqa: E402
from emorec.sentiment.encoder import EmotionEncoder  # noqa: E402
from emorec.sentiment.finetune import polarity_labels, split_by_user  # noqa: E402
from emorec.sentiment.labels import POLARITY_LABELS  # noqa: E402
from emorec.sentiment.metrics import classification_report  # noqa: E402
from emorec.sentiment.training import predict  # noqa: E402
from emorec.sentiment.transformer import SHIPPED_MODEL, TransformerScorer  # noqa: E402

AMAZON = ROOT.parent / "shared/data/amazon-musical-instruments-2014/reviews_Musical_Instruments_5.json.gz"
OUT = ROOT / "benchmarks/results/sentiment_amazon_diagnostics.json"
#: (head, tail) token budgets; ``(254, 0)`` is the scorer's own cut.
SHIPPED_CUTS = {"head254": (254, 0), "head158": (158, 0), "h64t190": (64, 190), "h30t64": (30, 64), "tail254": (0, 254),
                "head510": (510, 0)}
#: The fine-tuned model trains on the first 158 tokens (``SHOP_TRAINING.max_length`` 160).
FINETUNED_CUTS = {"head158": (158, 0), "h32t126": (32, 126), "h64t190": (64, 190)}


def head_tail_ids(tokenizer, texts: list[str], head: int, tail: int) -> list[list[int]]:
    """Token ids with [CLS]/[SEP]; a text longer than ``head + tail`` keeps its first ``head``
    and last ``tail`` tokens."""
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    raw = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    return [[cls, *(r[:head] + r[len(r) - tail:] if len(r) > head + tail else r), sep] for r in raw]


def cut_scores(model_path: Path, texts: list[str], y: np.ndarray, cuts: dict) -> dict:
    """Macro-F1 and per-class F1 of ``polarity_label`` (the model's stored band) per cut."""
    model, tokenizer = EmotionEncoder.from_pretrained(model_path)
    band = model.config.polarity_thresholds
    out = {}
    for name, (head, tail) in cuts.items():
        p = predict(model, head_tail_ids(tokenizer, texts, head, tail))["polarity"]
        r = classification_report(y, polarity_decision(p[:, 2] - p[:, 0], band), POLARITY_LABELS)
        out[name] = {"macro_f1": round(r["macro_f1"], 4), "per_class_f1": {k: round(v["f1"], 3) for k, v in r["per_class"].items()}}
        print(f"  {name:<8} macro-F1 {r['macro_f1']:.4f}  per class {out[name]['per_class_f1']}", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--finetuned", type=Path, help="a fine-tuned model folder (sentiment_amazon.py writes one)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not AMAZON.exists():
        print(f"SKIP: {AMAZON} not found (../shared/data is absent)")
        return 0
    torch.set_num_threads(args.threads)
    reviews = clean_reviews(load_reviews(AMAZON)).reviews
    texts = np.asarray(sentiment.review_text(reviews["title"], reviews["text"]).tolist(), dtype=object)
    stars = reviews["rating"].to_numpy(dtype=np.float64)
    y = polarity_labels(stars)
    role = split_by_user(reviews["user_id"].to_numpy(dtype=object), seed=13)
    not_test = np.flatnonzero(role != "test")
    result: dict = {"data": AMAZON.name, "model": str(SHIPPED_MODEL), "threads": args.threads, "by_stars": {}}

    print("shipped model, 150 reviews per star rating of train and dev users:")
    scorer = TransformerScorer(SHIPPED_MODEL, threads=args.threads)
    rng = np.random.default_rng(1)
    for s in (1, 2, 3, 4, 5):
        rows = rng.choice(not_test[stars[not_test] == s], 150, replace=False)
        scored = scorer.score(list(texts[rows]))
        pct = np.percentile(scored["valence"].to_numpy(), [10, 50, 90]).round(2).tolist()
        shares = scored["polarity_label"].value_counts(normalize=True).reindex(POLARITY_LABELS, fill_value=0).round(2).to_dict()
        result["by_stars"][s] = {"valence_p10_p50_p90": pct, "polarity_label_shares": shares}
        print(f"  {s} stars: valence p10/p50/p90 {pct}, polarity_label {shares}", flush=True)

    rows = np.sort(np.random.default_rng(0).choice(not_test, 3000, replace=False))
    print("shipped model, 3,000 reviews of train and dev users, by truncation:")
    result["truncation_shipped"] = cut_scores(SHIPPED_MODEL, list(texts[rows]), y[rows], SHIPPED_CUTS)
    if args.finetuned:
        dev = np.flatnonzero(role == "dev")
        print(f"{args.finetuned}, dev users ({len(dev)} reviews), by truncation:")
        result["truncation_finetuned_dev"] = cut_scores(args.finetuned, list(texts[dev]), y[dev], FINETUNED_CUTS)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
