"""Profile-stage timing on the Amazon Musical Instruments reviews (lexicon scorer).

Loads the file with :func:`jobs.loaders.load_reviews`, cleans it as ``emorec ingest`` does,
scores it with :class:`sentiment.LexiconScorer`, then times (best of ``--repeat``):

* the full user-profile build (all users) and item-profile build;
* the incremental update of 1 % of the users after "a day of new reviews": the previous
  table is built without those users' latest review, then :func:`profiles.update_user_profiles`
  recomputes them from the full table; the result is checked to equal a full rebuild exactly.

    python benchmarks/profiles_amazon.py [--reviews FILE] [--repeat 5]

Prints the figures and writes ``benchmarks/results/profiles_amazon.json``. Skips with a
message when the data file is absent.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from emorec import profiles, sentiment
from emorec.jobs.loaders import load_reviews
from emorec.jobs.pipeline import clean_reviews

ROOT = Path(__file__).resolve().parents[1]

AMAZON = ROOT.parent / "shared/data/amazon-musical-instruments-2014/reviews_Musical_Instruments_5.json.gz"
OUT = ROOT / "benchmarks/results/profiles_amazon.json"


def best_of(repeat: int, fn):
    """(best seconds, last result) of ``repeat`` calls."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reviews", type=Path, default=AMAZON)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--share", type=float, default=0.01, help="share of users updated incrementally (default 1%%)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if not args.reviews.exists():
        print(f"SKIP: {args.reviews} not found (../shared/data is absent)")
        return 0

    t0 = time.perf_counter()
    reviews = clean_reviews(load_reviews(args.reviews)).reviews
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = sentiment.LexiconScorer().score(sentiment.review_text(reviews["title"], reviews["text"]).tolist())
    score_s = time.perf_counter() - t0
    scored = pd.concat([reviews[["review_id", "user_id", "item_id", "rating", "timestamp"]].reset_index(drop=True), scores], axis=1)
    config = profiles.ProfileConfig()

    user_s, users = best_of(args.repeat, lambda: profiles.build_user_profiles(scored, config))
    item_s, items = best_of(args.repeat, lambda: profiles.build_item_profiles(scored, config))

    # a day of new reviews for 1% of the users: their latest review is "new"
    rng = np.random.default_rng(0)
    all_users = users["user_id"].to_numpy()
    changed = rng.choice(all_users, max(1, round(args.share * len(all_users))), replace=False)
    latest = (scored.loc[scored["user_id"].isin(changed)].sort_values(["timestamp", "review_id"])
              .groupby("user_id").tail(1)["review_id"])
    yesterday = scored.loc[~scored["review_id"].isin(latest)]
    previous = profiles.build_user_profiles(yesterday, config)
    update_s, updated = best_of(args.repeat, lambda: profiles.update_user_profiles(previous, scored, changed, config))
    pd.testing.assert_frame_equal(updated, users, check_exact=True)

    result = {
        "data": args.reviews.name,
        "reviews": len(scored),
        "users": len(users),
        "items": len(items),
        "aspects": len(profiles.aggregate.discover_aspects(scored.columns)),
        "load_clean_seconds": round(load_s, 3),
        "lexicon_score_seconds": round(score_s, 3),
        "user_profiles_seconds": round(user_s, 4),
        "item_profiles_seconds": round(item_s, 4),
        "incremental_users": len(changed),
        "incremental_new_reviews": len(latest),
        "incremental_update_seconds": round(update_s, 4),
        "incremental_equals_rebuild": True,
        "repeat": args.repeat,
        "user_profile_version": profiles.USER_PROFILE_VERSION,
        "item_profile_version": profiles.ITEM_PROFILE_VERSION,
        "top_aspect_counts": users["top_aspect"].value_counts(dropna=False).rename(lambda k: str(k)).astype(int).to_dict(),
    }
    for k, v in result.items():
        print(f"{k:28s} {v}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
