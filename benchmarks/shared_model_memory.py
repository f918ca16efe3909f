"""Memory of several processes serving one saved model: arrays copied vs memory-mapped.

Spark's Python workers and serving processes on one machine each load the same saved model.
``common/tensors.load_tensors`` maps its arrays (copy-on-write) so that the page cache holds one
copy for all of them; ``safetensors.numpy.load_file`` (what emorec used before) copies them into
each process. This script saves an EASE model fitted on a random shop (its dense items x items
matrix is the largest array any emorec model holds), then for each way of loading starts
``--processes`` processes that load it and compute top-10 for every user (every page of the
matrix is touched), and, while all of them hold the model, reads from /proc:

* ``pss``: the proportional set size summed over the processes (a page shared by k processes
  counts 1/k in each): the memory they use together;
* ``rss``: the resident sets summed (shared pages counted in every process: what a per-process
  monitor or a Spark executor's memory accounting sees).

``baseline`` is the same processes without a model (Python, numpy, emorec imported); ``model`` is
the total less the baseline. Prints a table and writes ``benchmarks/results/shared_model_memory.json``.

    python benchmarks/shared_model_memory.py [--items 10000] [--users 20000] [--processes 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import _tree  # the process-memory reader of every benchmark here

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks/results/shared_model_memory.json"
MODES = ("baseline", "copy", "map")


def shop(users: int, items: int, per_user: int, seed: int) -> sp.csr_matrix:
    """A random binary users x items matrix with popularity skew (the same for every process)."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, items + 1) ** 0.8
    cols = rng.choice(items, size=(users, per_user), p=p / p.sum())
    X = sp.csr_matrix((np.ones(cols.size, np.float32), (np.repeat(np.arange(users), per_user), cols.ravel())),
                      shape=(users, items))
    X.data[:] = 1.0
    return X


def child(mode: str, path: str, users: int, items: int, per_user: int, seed: int) -> int:
    """One serving process: load the model (``mode``), top-10 for every user, then wait for stdin to close."""
    from safetensors.numpy import load_file

    from emorec.recommender import Recommender
    from emorec.recommender import base as model_base

    t0 = time.perf_counter()
    if mode != "baseline":
        if mode == "copy":  # what emorec did before common/tensors: every array copied into this process
            model_base.load_tensors = lambda p: load_file(str(p))  # type: ignore[assignment]
        model = Recommender.from_pretrained(path)
        X = shop(users, items, per_user, seed)
        for lo in range(0, users, 2000):
            model.recommend(np.arange(lo, min(lo + 2000, users)), X[lo:lo + 2000], N=10)
    print(json.dumps({"seconds": round(time.perf_counter() - t0, 2)}), flush=True)
    sys.stdin.read()  # hold the model until the parent has measured
    return 0


def measure(mode: str, path: Path, args) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--_child", mode, "--_path", str(path), "--users", str(args.users),
           "--items", str(args.items), "--per-user", str(args.per_user), "--seed", str(args.seed)]
    procs = [subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(args.processes)]
    try:
        seconds = [json.loads(p.stdout.readline())["seconds"] for p in procs]  # all hold the model now
        rss, pss = (sum(v) for v in zip(*(_tree(p.pid)[:2] for p in procs)))  # each process alone: no children
    finally:
        for p in procs:
            p.stdin.close()
            p.wait()
    return {"pss_gib": round(pss / 1024**2, 3), "rss_gib": round(rss / 1024**2, 3), "load_and_serve_seconds": seconds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--per-user", type=int, default=10)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--_child", choices=MODES, help=argparse.SUPPRESS)
    ap.add_argument("--_path", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        return child(args._child, args._path, args.users, args.items, args.per_user, args.seed)

    from threadpoolctl import threadpool_limits

    from emorec.recommender import EASE, TrainingData

    result: dict = {"items": args.items, "users": args.users, "processes": args.processes,
                    "load_start": os.getloadavg()[0], "modes": {}}
    with tempfile.TemporaryDirectory(prefix="emorec-shared-model-") as tmp:
        t0 = time.perf_counter()
        with threadpool_limits(1):
            model = EASE(max_memory_gb=64).fit(TrainingData.from_matrix(shop(args.users, args.items, args.per_user, args.seed)))
        path = model.save_pretrained(Path(tmp) / "ease")
        result["fit_seconds"] = round(time.perf_counter() - t0, 1)
        result["model_file_gib"] = round(sum(f.stat().st_size for f in path.iterdir()) / 1024**3, 3)
        del model
        for mode in MODES:
            result["modes"][mode] = measure(mode, path, args)
    base = result["modes"]["baseline"]
    for mode in ("copy", "map"):
        m = result["modes"][mode]
        m["model_pss_gib"] = round(m["pss_gib"] - base["pss_gib"], 3)
        m["model_rss_gib"] = round(m["rss_gib"] - base["rss_gib"], 3)
    print(f"EASE on {args.items:,} items (model file {result['model_file_gib']:.2f} GiB), {args.processes} processes "
          f"each serving top-10 to {args.users:,} users:")
    print(f"  {'loading':<10} {'PSS sum':>9} {'RSS sum':>9} {'model PSS':>10} {'model RSS':>10}")
    for mode in MODES:
        m = result["modes"][mode]
        print(f"  {mode:<10} {m['pss_gib']:8.2f}G {m['rss_gib']:8.2f}G {m.get('model_pss_gib', 0):9.2f}G "
              f"{m.get('model_rss_gib', 0):9.2f}G")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
