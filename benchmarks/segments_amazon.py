"""Segments, clusters, monitor, care queue and report on the Amazon Musical Instruments file.

Loads the reviews (``jobs.loaders.load_reviews``, cleaned as the pipeline does), scores them
with the lexicon scorer, builds user profiles (``profiles.build_user_profiles``), assigns the
default rule-based segments, clusters users (k by silhouette), runs the complaint monitor and
the care queue, writes the HTML report, and prints segment sizes (checking every user is in
exactly one segment), the chosen k and its silhouette, and the timings. The figures go to
``benchmarks/results/segments_amazon.json``, the report next to it.

    python benchmarks/segments_amazon.py
    python benchmarks/segments_amazon.py --demo-users 5000    # the generated demo shop instead
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from pathlib import Path

import pandas as pd

from emorec import profiles, sentiment
from emorec.jobs.loaders import load_reviews
from emorec.jobs.pipeline import clean_reviews
from emorec.profiles.care import care_queue
from emorec.profiles.clusters import cluster_users
from emorec.profiles.monitor import monitor
from emorec.profiles.report import write_report
from emorec.profiles.segments import SegmentConfig, assign_segments, segment_summary

ROOT = Path(__file__).resolve().parents[1]

AMAZON = ROOT.parent / "shared/data/amazon-musical-instruments-2014/reviews_Musical_Instruments_5.json.gz"
RESULTS = ROOT / "benchmarks/results"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reviews", type=Path, default=AMAZON)
    ap.add_argument("--demo-users", type=int, help="use the generated demo shop of this many users instead")
    ap.add_argument("--out", type=Path, default=RESULTS / "segments_amazon.json")
    ap.add_argument("--report", type=Path, default=RESULTS / "segments_amazon.html")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    timings: dict[str, float] = {}

    def timed(name, fn, *a, **kw):
        t = time.perf_counter()
        out = fn(*a, **kw)
        timings[name] = round(time.perf_counter() - t, 3)
        return out

    items = None
    if args.demo_users:
        from emorec.jobs.demo_shop import generate_demo_shop

        shop = timed("load", generate_demo_shop, n_users=args.demo_users)
        reviews, items, label = shop.reviews, shop.items, f"demo shop, {args.demo_users} users"
    else:
        if not args.reviews.exists():
            print(f"SKIP: {args.reviews} not found (../shared/data is absent)")
            return 0
        loaded = timed("load", lambda: clean_reviews(load_reviews(args.reviews)))
        reviews, label = loaded.reviews, args.reviews.name

    scorer = sentiment.LexiconScorer()
    scores = timed("score", scorer.score, sentiment.review_text(reviews["title"], reviews["text"]))
    scores.insert(0, "review_id", reviews["review_id"].to_numpy())
    scored = reviews.merge(scores, on="review_id", how="inner", validate="one_to_one")
    users = timed("profile", profiles.build_user_profiles, scored, None, items)

    config = SegmentConfig.default()
    seg = timed("segment", assign_segments, users, config)
    summary = segment_summary(users, seg, config)
    once = bool(len(seg) == len(users) == seg["user_id"].nunique() and int(summary["users"].sum()) == len(users))
    clusters = timed("cluster", cluster_users, users, seed=args.seed)
    table = seg.merge(clusters.assignments[["user_id", "cluster"]], on="user_id")
    mon = timed("monitor", monitor, reviews, scores, items)
    monthly = monitor(reviews, scores, items, freq="M")
    care = timed("care", care_queue, reviews, scores, users, top=50)
    report = timed("report", write_report, args.report, users, table, config, reviews, scores, clusters, mon, care)

    result = {
        "data": label,
        "reviews": len(reviews),
        "users": len(users),
        "profile_version": profiles.USER_PROFILE_VERSION,
        "every_user_exactly_once": once,
        "segments": {r["segment"]: {"users": int(r["users"]), "share": round(float(r["share"]), 4)} for _, r in summary.iterrows()},
        "clusters": {
            "k": clusters.k,
            "silhouette": round(clusters.score, 4),
            "silhouette_by_k": {str(k): round(v, 4) for k, v in clusters.silhouette.items()},
            "sample_size": clusters.sample_size,
            "labels": {int(r["cluster"]): {"label": str(r["label"]), "users": int(r["users"])} for _, r in clusters.descriptions.iterrows()},
        },
        "alerts": {"weekly": len(mon.alerts), "monthly": len(monthly.alerts),
                   "top_monthly": monthly.alerts.head(3)[["level", "key", "period", "n_reviews", "share_negative", "z", "aspect"]]
                   .astype({"period": str}).to_dict(orient="records"),
                   "top": mon.alerts.head(3)[["level", "key", "period", "n_reviews", "share_negative", "z", "aspect"]]
                   .astype({"period": str}).to_dict(orient="records")},
        "care_queue_rows": len(care),
        "report": str(report),
        "report_bytes": report.stat().st_size,
        "timings_s": timings,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(f"segments on {label}: {len(reviews):,} reviews, {len(users):,} users")
    for name, s in result["segments"].items():
        print(f"  {name:<22} {s['users']:>7,}  {s['share']:6.1%}")
    print(f"  every user exactly once: {once}")
    print(f"clusters: k={clusters.k}, silhouette {clusters.score:.3f} (by k: "
          + ", ".join(f"{k}: {v:.3f}" for k, v in clusters.silhouette.items()) + ")")
    for c, d in result["clusters"]["labels"].items():
        print(f"  {c}: {d['label']} ({d['users']:,})")
    print(f"monitor: {len(mon.alerts)} weekly, {len(monthly.alerts)} monthly alerts; care queue: {len(care)} rows")
    print("timings (s): " + ", ".join(f"{k} {v}" for k, v in timings.items()))
    print(f"report: {report} ({result['report_bytes']:,} bytes)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {args.out}")
    return 0 if once else 1


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    sys.exit(main())
