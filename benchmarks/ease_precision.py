"""EASE's float32 Cholesky solve against the float64 ``inv`` it replaced, on the Amazon reviews.

For each ``l2`` the script fits EASE both ways on the leave-last-out training part (binary
interactions, as the reference protocol), reports the relative error of ``B`` (max and
Frobenius, relative to the float64 matrix) and how many of the test users' top-10 positions
differ, and the fit time of each. ``--memory-items N`` also measures the peak memory numpy
allocates during both fits on a random N-item catalog (``tracemalloc``), against
:func:`recommender.ease.ease_memory_gb`. Prints a table and writes
``benchmarks/results/ease_precision.json``.

    python benchmarks/ease_precision.py [--reviews FILE] [--l2 5 100 3200] [--memory-items 5000]
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from emorec.jobs.loaders import load_reviews
from emorec.jobs.pipeline import clean_reviews
from emorec.recommender import EASE, TrainingData
from emorec.recommender.base import top_n
from emorec.recommender.ease import ease_memory_gb
from emorec.recommender.splits import leave_last_out

ROOT = Path(__file__).resolve().parents[1]
AMAZON = ROOT.parent / "shared/data/amazon-musical-instruments-2014/reviews_Musical_Instruments_5.json.gz"
OUT = ROOT / "benchmarks/results/ease_precision.json"


def float64_inverse(X, l2: float) -> np.ndarray:
    """The previous implementation: ``P = inv(X^T X + l2 I)`` in float64, ``B = -P / diag(P)``."""
    G = (X.T @ X).toarray().astype(np.float64)
    G[np.diag_indices(len(G))] += l2
    P = np.linalg.inv(G)
    B = P / (-np.diag(P))[None, :]
    B[np.diag_indices(len(G))] = 0.0
    return B.astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reviews", type=Path, default=AMAZON)
    ap.add_argument("--l2", type=float, nargs="+", default=[5.0, 100.0, 3200.0])
    ap.add_argument("--memory-items", type=int, default=0, help="also measure peak fit memory on this many items")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if not args.reviews.exists():
        print(f"SKIP: {args.reviews} not found (../shared/data is absent)")
        return 0
    reviews = clean_reviews(load_reviews(args.reviews)).reviews
    split = leave_last_out(reviews)
    data = TrainingData.from_reviews(split.train)
    users = data.users.index(sorted(split.test["user_id"].unique()))
    rows, seen = data.user_items[users], data.seen[users].toarray() > 0
    out = {}
    for l2 in args.l2:
        t = time.perf_counter()
        B32 = EASE(l2=l2).fit(data).B_
        t32 = time.perf_counter() - t
        t = time.perf_counter()
        B64 = float64_inverse(data.user_items, l2)
        t64 = time.perf_counter() - t
        diff = B32.astype(np.float64) - B64
        lists = []
        for B in (B32, B64):
            s = np.asarray(rows @ B)
            s[seen] = -np.inf
            lists.append(top_n(s, 10)[0])
        moved = int((lists[0] != lists[1]).sum())
        out[l2] = {"items": int(B32.shape[0]), "max_rel_error": float(np.abs(diff).max() / np.abs(B64).max()),
                   "frobenius_rel_error": float(np.linalg.norm(diff) / np.linalg.norm(B64)),
                   "top10_positions_moved": moved, "top10_positions": int(lists[0].size),
                   "fit_float32_cholesky_s": round(t32, 3), "fit_float64_inv_s": round(t64, 3)}
        r = out[l2]
        print(f"l2={l2:g}: {r['items']} items, max rel error {r['max_rel_error']:.2e}, Frobenius {r['frobenius_rel_error']:.2e}, "
              f"top-10 positions moved {moved}/{r['top10_positions']}, fit {t32:.2f}s (float32 Cholesky) vs {t64:.2f}s (float64 inv)")
    if args.memory_items:
        out["memory"] = peak_memory(args.memory_items)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")
    return 0


def peak_memory(n: int) -> dict:
    """Peak numpy memory of both fits on a random binary 20,000 x ``n`` matrix."""
    X = sp.random(20000, n, density=0.002, random_state=0, format="csr", dtype=np.float32)
    X.data[:] = 1.0
    out = {"items": n, "estimate_gb": round(ease_memory_gb(n), 3)}
    for label, fit in (("float32_cholesky", lambda: EASE(l2=100.0, max_memory_gb=1e3).fit(X).B_),
                       ("float64_inv", lambda: float64_inverse(X, 100.0))):
        tracemalloc.start()
        fit()
        out[f"{label}_peak_gb"] = round(tracemalloc.get_traced_memory()[1] / 1e9, 3)
        tracemalloc.stop()
    print(f"memory at {n:,} items: float32 Cholesky {out['float32_cholesky_peak_gb']} GB (estimate {out['estimate_gb']} GB), "
          f"float64 inv {out['float64_inv_peak_gb']} GB")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
