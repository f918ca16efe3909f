"""Cost of rescoring after new reviews arrive: the score cache keyed by text hash and model version.

Ingests the Amazon Musical Instruments file without a seeded 1% of its reviews, scores it with
the default scorer (the transformer with the shipped model), then ingests the full file and
scores again: only the new 1% should be scored, so the second run should cost about 1% of the
first (plus the fixed cost of loading the model and reading/writing the tables).

    python benchmarks/rescore_amazon.py [--share 0.01] [--scorer transformer|lexicon] [--quantize]

Prints the figures and writes ``benchmarks/results/rescore_amazon.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from emorec.jobs import pipeline  # noqa: E402
from emorec.jobs.loaders import load_reviews  # noqa: E402
from emorec.jobs.store import Workspace  # noqa: E402

AMAZON = ROOT.parent / "shared/data/amazon-musical-instruments-2014/reviews_Musical_Instruments_5.json.gz"
OUT = ROOT / "benchmarks/results/rescore_amazon.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--share", type=float, default=0.01, help="share of reviews that arrive later (default 1%%)")
    ap.add_argument("--scorer", default="transformer", choices=["transformer", "lexicon"])
    ap.add_argument("--quantize", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not AMAZON.exists():
        print(f"SKIP: {AMAZON} not found (../shared/data is absent)")
        return 0
    reviews = load_reviews(AMAZON).reviews
    rng = np.random.default_rng(args.seed)
    late = rng.random(len(reviews)) < args.share
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before.parquet"
        full = Path(tmp) / "full.parquet"
        reviews.loc[~late].to_parquet(before, index=False)
        reviews.to_parquet(full, index=False)
        ws = Workspace(Path(tmp) / "ws")
        scorer = pipeline.resolve_scorer(ws, args.scorer, quantize=args.quantize)

        pipeline.ingest(ws, [before])
        t = time.perf_counter()
        first = pipeline.score(ws, scorer)
        first_s = time.perf_counter() - t

        pipeline.ingest(ws, [full])
        t = time.perf_counter()
        second = pipeline.score(ws, scorer)
        second_s = time.perf_counter() - t
    result = {
        "data": AMAZON.name, "scorer": scorer.model_version, "reviews": len(reviews), "new_reviews": int(late.sum()),
        "first_run": {"seconds": round(first_s, 2), **first.counts},
        "rescore_after_new": {"seconds": round(second_s, 2), **second.counts},
        "cost_ratio": round(second_s / first_s, 4),
        "new_share": round(float(late.mean()), 4),
    }
    print(f"{result['scorer']}: first run {first_s:.1f}s ({first.counts['scored']} scored); after "
          f"{result['new_reviews']} new reviews ({result['new_share']:.1%}): {second_s:.2f}s "
          f"({second.counts['scored']} scored, {second.counts['reused']} reused) = {result['cost_ratio']:.1%} of the first run")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
