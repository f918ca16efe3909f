"""End-to-end pipeline timing on the Amazon Musical Instruments file (or the demo shop).

Runs ``emorec run`` stage by stage in a fresh workspace and prints, per stage, the wall time,
and at the end the total, the peak resident memory and serving latencies; writes the same
figures as JSON.

    python benchmarks/pipeline_amazon.py                      # ../shared/data Amazon file
    python benchmarks/pipeline_amazon.py --demo-users 5000    # the generated demo shop
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from emorec.jobs import pipeline  # noqa: E402
from emorec.jobs.store import Workspace  # noqa: E402

AMAZON = ROOT.parent / "shared/data/amazon-musical-instruments-2014/reviews_Musical_Instruments_5.json.gz"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reviews", type=Path, default=AMAZON)
    ap.add_argument("--demo-users", type=int, help="benchmark the demo shop of this many users instead")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/pipeline_amazon.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        t0 = time.perf_counter()
        items = None
        if args.demo_users:
            from emorec.jobs.demo_shop import generate_demo_shop

            paths = generate_demo_shop(n_users=args.demo_users).write(Path(tmp) / "demo")
            sources, items, label = [Path(paths["reviews"])], Path(paths["items"]), f"demo shop, {args.demo_users} users"
        else:
            if not args.reviews.exists():
                print(f"SKIP: {args.reviews} not found (../shared/data is absent)")
                return 0
            sources, label = [args.reviews], args.reviews.name
        stages = [
            pipeline.ingest(ws, sources, None, items),
            pipeline.score(ws),
            pipeline.profile(ws),
            pipeline.train(ws),
        ]
        service = pipeline.load_service(ws)
        stages.append(pipeline.recommend(ws, 10, service))
        total = time.perf_counter() - t0
        users = service.users_.ids.tolist()
        t = time.perf_counter()
        service.recommend(users, n=10)
        all_users_s = time.perf_counter() - t
        lat = []
        for u in users[:200]:
            t = time.perf_counter()
            service.recommend([u], n=10)
            lat.append(time.perf_counter() - t)
        lat.sort()

    result = {
        "data": label,
        "stages": {s.stage: {"seconds": round(s.seconds, 3), **s.counts} for s in stages},
        "total_seconds": round(total, 2),
        "reviews_per_second": round(stages[0].counts["reviews"] / total, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "recommend_all_users_seconds": round(all_users_s, 4),
        "recommend_one_user_ms_p50": round(1000 * lat[len(lat) // 2], 2),
        "recommend_one_user_ms_p99": round(1000 * lat[int(len(lat) * 0.99) - 1], 2),
    }
    print(f"pipeline on {label}")
    for name, s in result["stages"].items():
        print(f"  {name:<10} {s['seconds']:8.2f} s")
    for k in ("total_seconds", "reviews_per_second", "peak_rss_mib", "recommend_all_users_seconds",
              "recommend_one_user_ms_p50", "recommend_one_user_ms_p99"):
        print(f"  {k:<28} {result[k]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
