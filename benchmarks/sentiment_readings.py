"""Two other ways to read a review's polarity, each chosen the way the shipped decisions are:
clause by clause instead of whole, and blended with the VADER lexicon.

- ``review``: the polarity head on the mean of all token states (what the scorer ships);
- ``clauses``: the mean valence of the review's clauses (``sentiment.aspects.split_clauses``),
  each read by the same polarity head on the mean of *its* token states from the same forward
  pass (the scorer's aspect-clause reading, ``TransformerScorer._span_valence``), so it costs
  no second pass;
- either of them blended with VADER's compound score: ``(1 - w) * valence + w * vader`` for
  ``w`` in 0, 0.1, 0.2, 0.3.

For the shipped model (``--choose-on offshop``, the default) every reading gets its own
``polarity_label`` band, chosen like the shipped one: the mean macro-F1 over GoEmotions dev, the
CARER calibration half and the phrase suite's ``dev`` part (``jobs.train_emotions.calibrate``).
The reading with the best off-shop score is the one the protocol would ship. For a shop's
fine-tuned model (``--model benchmarks/results/sentiment_amazon_model --choose-on dev-users``)
reading and band are chosen on the Amazon file's dev users, as ``train-sentiment`` does. A model
with a shop n-gram head reads the whole review with the head blended in (as the scorer does);
its clause reading is the transformer's alone.

The Amazon figures are macro-F1 on the 3 star classes, on a seeded sample of the train and dev
users (``--n``, never the test users; with its best band too, which no protocol could choose) and
on the held-out test users (``sentiment.finetune.split_by_user``, seed 13, as in
``sentiment_amazon.py``). A fine-tuned model was trained on the train users, so for it the
sample's figures say little; its test users' figures are the ones to read::

    python benchmarks/sentiment_readings.py [--model DIR] [--choose-on offshop|dev-users] [--n 3000] [--threads 2]

About 6 minutes on 2 cores for the shipped model. Prints the table and writes
``benchmarks/results/sentiment_readings[_<model folder>].json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from emorec import sentiment  # noqa: E402
from emorec.sentiment.aspects import split_clauses  # noqa: E402
from emorec.sentiment.calibration import choose_polarity_band, polarity_decision  # noqa: E402
from emorec.sentiment.encoder import encode_batches  # noqa: E402
from emorec.sentiment.finetune import polarity_labels, split_by_user  # noqa: E402
from emorec.sentiment.labels import POLARITY_LABELS  # noqa: E402
from emorec.sentiment.lexicon import vader_compound  # noqa: E402
from emorec.sentiment.metrics import classification_report  # noqa: E402
from emorec.sentiment.transformer import SHIPPED_MODEL, TransformerScorer  # noqa: E402

DATA = ROOT.parent / "shared/data"
AMAZON = DATA / "amazon-musical-instruments-2014/reviews_Musical_Instruments_5.json.gz"
SUITE = ROOT / "tests/data/idiom_suite.csv"
OUT = ROOT / "benchmarks/results"
LEXICON_WEIGHTS = (0.0, 0.1, 0.2, 0.3)
POOLINGS = ("review", "clauses")

log = logging.getLogger("sentiment_readings")


def read(scorer: TransformerScorer, texts: list[str]) -> dict[str, np.ndarray]:
    """``review``, ``clauses`` and ``vader`` valence of each text (one forward pass per text)."""
    scorer.load()
    model, tokenizer, head = scorer._model, scorer._tokenizer, scorer._ngram_head
    enc = tokenizer(texts, truncation=True, max_length=scorer.max_length, return_offsets_mapping=True)
    review, clauses = np.zeros(len(texts)), np.zeros(len(texts))
    started = time.perf_counter()
    with scorer._threads():
        for idx, out, _ in encode_batches(model, enc["input_ids"], max_tokens=scorer.max_tokens):
            p = out["polarity"].float().softmax(-1).numpy()
            if head is not None:
                p = head.blend_proba([texts[i] for i in idx], p)
            review[idx] = p[:, 2] - p[:, 0]
            spans = [split_clauses(texts[i]) for i in idx]
            own = TransformerScorer._span_valence(model, out["hidden"].float(), [enc["offset_mapping"][i] for i in idx], spans,
                                                  review[idx])
            clauses[idx] = [float(np.mean(v)) if len(v) else review[i] for v, i in zip(own, idx)]
    log.info("read %d texts in %.0f s", len(texts), time.perf_counter() - started)
    return {"review": review, "clauses": clauses, "vader": np.asarray(vader_compound(texts), np.float64)}


def valence(r: dict[str, np.ndarray], pooling: str, w: float) -> np.ndarray:
    return (1 - w) * r[pooling] + w * r["vader"]


def macro_f1(y: np.ndarray, v: np.ndarray, band: dict) -> float:
    return float(classification_report(y, polarity_decision(v, band), POLARITY_LABELS)["macro_f1"])


def offshop_domains() -> dict[str, tuple[list[str], np.ndarray]]:
    """The shipped band's calibration data: GoEmotions dev, CARER's calibration half, the suite's dev part."""
    from emorec.jobs.train_emotions import carer_halves, read_carer, read_goemotions, read_phrase_suite

    missing = [p for p in (DATA / "goemotions", DATA / "carer-val") if not p.exists()]
    if missing:
        raise FileNotFoundError(", ".join(map(str, missing)))
    go = read_goemotions(DATA / "goemotions", ("dev",))["dev"]
    carer = read_carer(DATA / "carer-val")
    calibration_half, _ = carer_halves(len(carer.texts), 13)
    carer = carer.subset(calibration_half)
    suite = read_phrase_suite(SUITE).part("dev")
    return {"goemotions_dev": (list(go.texts), np.asarray(go.polarity)),
            "carer_calibration": (carer.texts, carer.polarity()),
            "phrase_dev": (list(suite.texts), np.asarray(suite.polarity))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    ap.add_argument("--choose-on", choices=("offshop", "dev-users"), default="offshop")
    ap.add_argument("--n", type=int, default=3000, help="train and dev users' reviews read (seeded sample)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not AMAZON.exists():
        print(f"SKIP: {AMAZON} not found (../shared/data is absent)")
        return 0
    scorer = TransformerScorer(args.model, threads=args.threads)
    from emorec.jobs.loaders import load_reviews
    from emorec.jobs.pipeline import clean_reviews

    r = clean_reviews(load_reviews(AMAZON)).reviews
    texts = np.asarray(sentiment.review_text(r["title"], r["text"]).tolist(), dtype=object)
    y = polarity_labels(r["rating"].to_numpy(dtype=np.float64))
    role = split_by_user(r["user_id"].to_numpy(dtype=object), seed=13)
    fit_rows = np.flatnonzero((role != "test") & (y >= 0))
    sample = np.sort(np.random.default_rng(0).choice(fit_rows, min(args.n, len(fit_rows)), replace=False))
    parts = {"amazon_train_dev_sample": sample, "amazon_test_users": np.flatnonzero((role == "test") & (y >= 0))}
    if args.choose_on == "dev-users":
        parts["amazon_dev_users"] = np.flatnonzero((role == "dev") & (y >= 0))
    if args.choose_on == "offshop":  # checked before any review is read
        try:
            domains = offshop_domains()
        except FileNotFoundError as exc:
            print(f"SKIP: off-shop calibration data not found: {exc}")
            return 0
    read_parts = {name: (read(scorer, list(texts[rows])), y[rows]) for name, rows in parts.items()}
    if args.choose_on == "offshop":
        choose = {name: (read(scorer, t), yy) for name, (t, yy) in domains.items()}
    else:
        choose = {"amazon_dev_users": read_parts["amazon_dev_users"]}

    rows: list[dict] = []
    best, best_score = None, -1.0
    for pooling in POOLINGS:
        for w in LEXICON_WEIGHTS:
            band, scores = choose_polarity_band({k: (valence(rd, pooling, w), yy) for k, (rd, yy) in choose.items()})
            score = float(np.mean(list(scores.values())))
            row = {"reading": pooling, "vader_weight": w, "band": band,
                   "choice_score": round(score, 4),
                   "choice_scores": {k: round(v, 4) for k, v in scores.items()}}
            sample_read, sy = read_parts["amazon_train_dev_sample"]
            sv = valence(sample_read, pooling, w)
            row["amazon_train_dev_sample"] = round(macro_f1(sy, sv, band), 4)
            row["amazon_train_dev_sample_best_band"] = round(choose_polarity_band({"x": (sv, sy)})[1]["x"], 4)
            tv, ty = valence(read_parts["amazon_test_users"][0], pooling, w), read_parts["amazon_test_users"][1]
            row["amazon_test_users"] = round(macro_f1(ty, tv, band), 4)
            rows.append(row)
            if score > best_score:  # ties keep the earlier (simpler) reading
                best, best_score = row, score
    print(f"{'reading':<8} {'vader w':>7} {'band':>13} {'choice':>7} {'amazon train+dev':>16} {'(best band)':>11} {'amazon test':>11}")
    for row in rows:
        band = f"{row['band']['negative']:+.2f}/{row['band']['positive']:+.2f}"
        mark = "  <- chosen" if row is best else ""
        print(f"{row['reading']:<8} {row['vader_weight']:>7.1f} {band:>13} {row['choice_score']:>7.4f} "
              f"{row['amazon_train_dev_sample']:>16.4f} {row['amazon_train_dev_sample_best_band']:>11.4f} {row['amazon_test_users']:>11.4f}{mark}")
    result = {"model": str(args.model), "choose_on": args.choose_on, "choice_domains": sorted(choose),
              "n": {k: len(v) for k, v in parts.items()}, "rows": rows, "chosen": best}
    OUT.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.model.resolve() == SHIPPED_MODEL.resolve() else f"_{args.model.name}"
    out = OUT / f"sentiment_readings{suffix}.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
