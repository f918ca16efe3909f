"""The hybrid at real catalog sizes: cost and quality on the same synthetic shop (issue 16).

Embedded (default): the demo shop at scale (:meth:`jobs.demo_shop.DemoConfig.at_scale`: long-tail
popularity, planted aspect preferences and planted "next item" sequences), 50,000 items, 200,000
users, 2,000,000 reviews, scored with the lexicon scorer (each distinct text once, one worker
process per core). Each user's chronologically last review is the test item
(``leave_last_out``); everything is measured in a fresh child process whose peak resident memory
(the whole process tree) is sampled every 0.1 s:

* ``train``: ``RecommendationService(hybrid).fit`` on the training part, saved (wall time,
  peak memory; targets < 20 min, < 8 GiB);
* ``recommend_all``: the saved model loaded, top-10 for every user (target < 10 min);
* ``one_user``: the saved model loaded, one user at a time, median over 200 users (< 20 ms);
* ``growth``: the same training on a shop with a tenth of the users and reviews on the same
  catalog (200,000 reviews); the exponent ``log(t2 / t1) / log(n2 / n1)`` of the train times
  (target <= 1.2);
* ``quality``: HR@10 / NDCG@10 of the hybrid and of every baseline that fits the memory budget
  (EASE needs a dense items x items matrix: over ``max_memory_gb`` it is reported as not
  fitting), on a seeded sample of the test users (``--eval-users``, the same users for every
  model). Each baseline's settings are chosen on a validation split carved from the training
  part (each user's last training review), never on the test items; the hybrid uses its
  defaults with the chosen ItemKNN and ALS settings for its generators. Paired tests over the
  users (Wilcoxon signed-rank, paired t) against the best baseline; target NDCG@10 >= 1.10x it
  with p < 0.05.

``--engine spark`` runs the pipeline stages (ingest, score, profile, train with
``--model hybrid``, recommend) on Spark ``local[2]`` through ``benchmarks/scale.py``'s stage
runner, on the shop at ``--items 100000 --users 1000000``, with wall time and peak memory per
stage in the JSON (the process tree's summed resident sets, and its summed proportional sets:
pages the processes share counted once). ``--workdir DIR`` keeps the shards and the workspace
in ``DIR``; run again with the same shop, it resumes after the last stage that completed.

    python benchmarks/scale_hybrid.py                                   # the full embedded run
    python benchmarks/scale_hybrid.py --users 20000 --items 5000 --reviews-per-user 10 --growth-share 0.25
    python benchmarks/scale_hybrid.py --engine spark --users 1000000 --items 100000 --reviews-per-user 4

Data and scores are cached under ``benchmarks/results/cache/scale_hybrid/``; results go to
``benchmarks/results/scale_hybrid[_spark].json``. Wall-clock figures depend on the machine's
load: the load average and the busiest other processes are recorded with every step.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import _other_load, _tree

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks/results/cache/scale_hybrid"
K = 10
TARGETS = {"train_minutes": 20, "train_peak_gib": 8.0, "recommend_all_minutes": 10, "one_user_ms": 20.0,
           "growth_exponent": 1.2, "lift": 1.10, "p": 0.05}
#: Settings tried for each baseline on the validation split (the same number for every model).
GRIDS = {
    "popular": [{}, {"half_life_days": 90.0}, {"half_life_days": 365.0}],
    "itemknn": [{"k": 50, "shrink": 10.0}, {"k": 100, "shrink": 10.0}, {"k": 200, "shrink": 50.0}],
    "als": [{"factors": 32, "iterations": 15, "num_threads": 1}, {"factors": 64, "iterations": 15, "num_threads": 1},
            {"factors": 32, "iterations": 15, "alpha": 10.0, "regularization": 0.01, "num_threads": 1}],
    "bpr": [{"factors": 64, "iterations": 100, "num_threads": 1}, {"factors": 64, "iterations": 200, "learning_rate": 0.05,
                                                                   "num_threads": 1},
            {"factors": 32, "iterations": 100, "learning_rate": 0.05, "num_threads": 1}],
    "ease": [{"l2": 200.0}, {"l2": 1000.0}, {"l2": 3000.0}],
}
log = logging.getLogger("scale_hybrid")


# --- data ---------------------------------------------------------------------------------
def data_dir(users: int, items: int, per_user: float, seed: int) -> Path:
    return CACHE / f"u{users}_i{items}_r{per_user:g}_s{seed}"


def make_data(users: int, items: int, per_user: float, seed: int, workers: int) -> dict:
    """The scaled demo shop, its lexicon scores (each distinct text once) and its split, cached."""
    import pandas as pd

    from emorec import sentiment
    from emorec.jobs.demo_shop import DemoConfig, generate_demo_shop
    from emorec.recommender.splits import leave_last_out
    from emorec.sentiment.parallel import score_chunks

    folder = data_dir(users, items, per_user, seed)
    info_path = folder / "info.json"
    if info_path.exists():
        return json.loads(info_path.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    shop = generate_demo_shop(DemoConfig.at_scale(users, items, per_user, seed=seed))
    gen_s = time.perf_counter() - t
    reviews = shop.reviews[["review_id", "user_id", "item_id", "rating", "timestamp", "title", "text"]]
    t = time.perf_counter()
    texts = sentiment.review_text(reviews["title"], reviews["text"])
    codes, uniq = pd.factorize(texts)
    scorer = sentiment.LexiconScorer()
    step = 5000
    chunks = [uniq[i:i + step].tolist() for i in range(0, len(uniq), step)]
    parts = list(score_chunks(scorer, iter(chunks), workers))
    distinct = pd.concat(parts, ignore_index=True)
    scores = distinct.iloc[codes].reset_index(drop=True)
    scores.insert(0, "review_id", reviews["review_id"].to_numpy())
    score_s = time.perf_counter() - t
    split = leave_last_out(reviews.drop(columns=["title", "text"]))
    split.train.to_parquet(folder / "train.parquet", index=False)
    split.test.to_parquet(folder / "test.parquet", index=False)
    scores.to_parquet(folder / "scores.parquet", index=False)
    shop.items.to_parquet(folder / "items.parquet", index=False)
    info = {"reviews": len(reviews), "users": int(reviews["user_id"].nunique()), "items": len(shop.items),
            "reviewed_items": int(reviews["item_id"].nunique()), "distinct_texts": len(uniq),
            "test_users": len(split.test), "generate_seconds": round(gen_s, 1), "score_seconds": round(score_s, 1),
            "next_item_share": round(float(shop.review_truth["next_item"].mean()), 4)}
    info_path.write_text(json.dumps(info, indent=2))
    return info


def _inputs(folder: Path):
    import pandas as pd

    return (pd.read_parquet(folder / "train.parquet"), pd.read_parquet(folder / "scores.parquet"),
            pd.read_parquet(folder / "items.parquet"))


# --- steps (each in a child process) ----------------------------------------------------------
def step_train(args) -> dict:
    from emorec.recommender import RecommendationService, ServiceConfig

    folder = Path(args.data)
    train, scores, items = _inputs(folder)
    params = json.loads(args.params or "{}")
    t = time.perf_counter()
    service = RecommendationService(ServiceConfig(model="hybrid", params=params)).fit(train, scores=scores, items=items)
    seconds = time.perf_counter() - t
    service.save_pretrained(args.model)
    m = service.model_
    return {"seconds": seconds, "training": m.training_, "generators": m.generators_.names,
            "dropped": m.dropped_, "features": len(m.feature_names_)}


def step_recommend_all(args) -> dict:
    from emorec.recommender import RecommendationService

    service = RecommendationService.from_pretrained(args.model)
    users = service.users_.ids.tolist()
    t = time.perf_counter()
    recs = service.recommend(users, n=K)
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "users": len(users), "rows": len(recs),
            "from_model": float((recs["source"] == service.model_.name).mean())}


def step_one_user(args) -> dict:
    from emorec.recommender import RecommendationService

    service = RecommendationService.from_pretrained(args.model)
    rng = np.random.default_rng(0)
    users = rng.choice(service.users_.ids, 220, replace=False).tolist()
    times = []
    for u in users:
        t = time.perf_counter()
        service.recommend([u], n=K)
        times.append(time.perf_counter() - t)
    ms = np.array(times[20:]) * 1000  # the first calls warm caches
    return {"seconds": float(sum(times)), "median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95))}


def _evaluate(service, users, test) -> object:
    from emorec.recommender.metrics import evaluate_lists

    test = test[test["user_id"].isin(set(users))]
    return evaluate_lists(service.recommend(users, n=K), test, ks=[K]).reindex(users)


def step_quality(args) -> dict:
    """Baselines tuned on validation, the saved hybrid, paired tests; per-user NDCG in the output."""
    import pandas as pd
    from scipy import stats

    from emorec.common.errors import ConfigError
    from emorec.recommender import RecommendationService, ServiceConfig
    from emorec.recommender.ease import EASEConfig, ease_memory_gb
    from emorec.recommender.splits import validation_split

    t_start = time.perf_counter()
    folder = Path(args.data)
    train, _scores, _items = _inputs(folder)
    test = pd.read_parquet(folder / "test.parquet")
    rng = np.random.default_rng(args.seed)
    users = np.sort(rng.choice(test["user_id"].unique(), min(args.eval_users, test["user_id"].nunique()), replace=False))
    users = users.tolist()
    val = validation_split(train)
    val_users = np.sort(rng.choice(val.test["user_id"].unique(), min(args.eval_users, val.test["user_id"].nunique()),
                                   replace=False)).tolist()
    out: dict = {"eval_users": len(users), "models": {}, "not_fitting": {}}
    per_user = {}
    n_items = int(train["item_id"].nunique())
    budget = EASEConfig().max_memory_gb
    for model, grid in GRIDS.items():
        if model == "ease" and ease_memory_gb(n_items) > budget:
            out["not_fitting"][model] = (f"needs about {ease_memory_gb(n_items):.1f} GB on {n_items:,} items, over the "
                                         f"{budget:g} GB budget (max_memory_gb)")
            continue
        best, best_val = None, -1.0
        trials = []
        for params in grid:
            t = time.perf_counter()
            try:
                svc = RecommendationService(ServiceConfig(model=model, params=params)).fit(val.train)
            except ConfigError as exc:
                trials.append({"params": params, "error": str(exc)})
                continue
            v = float(_evaluate(svc, val_users, val.test)[f"ndcg@{K}"].mean())
            trials.append({"params": params, "validation_ndcg@10": round(v, 5), "seconds": round(time.perf_counter() - t, 1)})
            if v > best_val:
                best, best_val = params, v
        t = time.perf_counter()
        svc = RecommendationService(ServiceConfig(model=model, params=best)).fit(train)
        m = _evaluate(svc, users, test)
        per_user[model] = m[f"ndcg@{K}"].to_numpy()
        out["models"][model] = {"params": best, "validation_ndcg@10": round(best_val, 5), "trials": trials,
                                "hr@10": float(m[f"hr@{K}"].mean()), "ndcg@10": float(m[f"ndcg@{K}"].mean()),
                                "seconds": round(time.perf_counter() - t, 1)}
        print(f"  {model:<8} {best} validation NDCG@10 {best_val:.4f} -> test NDCG@10 {m[f'ndcg@{K}'].mean():.4f}",
              file=sys.stderr, flush=True)
    hybrid = RecommendationService.from_pretrained(args.model)
    m = _evaluate(hybrid, users, test)
    per_user["hybrid"] = m[f"ndcg@{K}"].to_numpy()
    out["models"]["hybrid"] = {"params": json.loads(args.params or "{}"), "hr@10": float(m[f"hr@{K}"].mean()),
                               "ndcg@10": float(m[f"ndcg@{K}"].mean())}
    best_base = max((k for k in out["models"] if k != "hybrid"), key=lambda k: out["models"][k]["ndcg@10"])
    a, b = per_user["hybrid"], per_user[best_base]
    w = stats.wilcoxon(a, b) if np.any(a != b) else None
    out["best_baseline"] = best_base
    out["paired"] = {"lift": float(a.mean() / b.mean() - 1) if b.mean() else None, "mean_diff": float((a - b).mean()),
                     "wilcoxon_p": None if w is None else float(w.pvalue), "ttest_p": float(stats.ttest_rel(a, b).pvalue),
                     "wins": int((a > b).sum()), "losses": int((a < b).sum())}
    out["seconds"] = time.perf_counter() - t_start
    return out


def step_ease_ablation(args) -> dict:
    """On a catalog where EASE fits: the hybrid with and without its EASE generators (``ease``,
    ``ease_recent``, ``ease_emotion``: what it loses when a catalog is over their memory
    budget), trained on the validation split's training part and measured on its held-out items."""

    from emorec.recommender import RecommendationService, ServiceConfig
    from emorec.recommender.hybrid import HybridConfig
    from emorec.recommender.splits import validation_split

    folder = Path(args.data)
    train, scores, items = _inputs(folder)
    val = validation_split(train)
    rng = np.random.default_rng(args.seed)
    users = np.sort(rng.choice(val.test["user_id"].unique(), min(args.eval_users, val.test["user_id"].nunique()),
                               replace=False)).tolist()
    full = HybridConfig().generators
    variants = {"with_ease": full, "without_ease": {k: v for k, v in full.items() if not k.startswith("ease")}}
    out: dict = {"validation_users": len(users)}
    per_user = {}
    for name, gens in variants.items():
        t = time.perf_counter()
        svc = RecommendationService(ServiceConfig(model="hybrid", params={"generators": gens})).fit(
            val.train, scores=scores, items=items)
        seconds = time.perf_counter() - t
        m = _evaluate(svc, users, val.test)
        per_user[name] = m[f"ndcg@{K}"].to_numpy()
        out[name] = {"generators": list(gens), "train_seconds": round(seconds, 1), "hr@10": float(m[f"hr@{K}"].mean()),
                     "ndcg@10": float(m[f"ndcg@{K}"].mean())}
        out["seconds"] = out.get("seconds", 0.0) + seconds
        print(f"  {name:<13} validation NDCG@10 {out[name]['ndcg@10']:.4f}  ({seconds:.0f} s)", file=sys.stderr, flush=True)
    from scipy import stats

    a, b = per_user["with_ease"], per_user["without_ease"]
    out["with_vs_without"] = {"relative": float(a.mean() / b.mean() - 1) if b.mean() else None,
                              "wilcoxon_p": float(stats.wilcoxon(a, b).pvalue) if np.any(a != b) else None}
    return out


STEPS = {"train": step_train, "recommend_all": step_recommend_all, "one_user": step_one_user, "quality": step_quality,
         "ease_ablation": step_ease_ablation}


def run_step(step: str, data: Path, model: Path, params: str, extra: list[str] | None = None) -> dict:
    """Run one step in a fresh process; its figures plus wall time, peak tree memory, load."""
    cmd = [sys.executable, __file__, "--_step", step, "--data", str(data), "--model", str(model), "--params", params,
           *(extra or [])]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = [0, 0]

    def sample():
        while proc.poll() is None:
            rss, pss, _ = _tree(proc.pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    err_lines: list[str] = []

    def drain():
        for line in proc.stderr:
            err_lines.append(line)
            if line.startswith("  "):
                print(line, end="", flush=True)

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    out = proc.stdout.read()
    proc.wait()
    sampler.join()
    drainer.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"step {step} failed ({proc.returncode}):\n{''.join(err_lines)[-4000:]}")
    figures = json.loads(out.strip().splitlines()[-1])
    figures.update(process_seconds=round(wall, 1), peak_tree_gib=round(peak[0] / 1024 ** 2, 2),
                   peak_tree_pss_gib=round(peak[1] / 1024 ** 2, 2), load_before=round(load, 2),
                   load_after=round(os.getloadavg()[0], 2), other_load=_other_load())
    return figures


def _step_main(args) -> int:
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TQDM_DISABLE", "1")
    print(json.dumps(STEPS[args._step](args), default=float))
    return 0


# --- embedded run ---------------------------------------------------------------------------
def run_ease_ablation(args) -> dict:
    info = make_data(args.users, args.items, args.reviews_per_user, args.seed, args.workers)
    data = data_dir(args.users, args.items, args.reviews_per_user, args.seed)
    fig = run_step("ease_ablation", data, data / "unused", "{}", ["--eval-users", str(args.eval_users), "--seed", str(args.seed)])
    print(f"  EASE generators add {fig['with_vs_without']['relative']:+.1%} validation NDCG@10 "
          f"(Wilcoxon p = {fig['with_vs_without']['wilcoxon_p']})", flush=True)
    return {"engine": "embedded", "data": info, "ease_ablation": fig, "machine": {"load_start": os.getloadavg()}}


def run_embedded(args) -> dict:
    params = json.dumps(json.loads(args.params or "{}"))
    result: dict = {"engine": "embedded", "machine": {"cpus": os.cpu_count(), "load_start": os.getloadavg()},
                    "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "targets": TARGETS}
    info = make_data(args.users, args.items, args.reviews_per_user, args.seed, args.workers)
    result["data"] = info
    print(f"shop: {info['reviews']:,} reviews, {info['users']:,} users, {info['items']:,} items "
          f"({info['reviewed_items']:,} reviewed); next-item share {info['next_item_share']:.1%}", flush=True)
    data = data_dir(args.users, args.items, args.reviews_per_user, args.seed)
    with tempfile.TemporaryDirectory(prefix="emorec-scale-hybrid-") as tmp:
        model = Path(tmp) / "model"
        steps = ["train", "recommend_all", "one_user"] + (["quality"] if args.quality else [])
        for step in steps:
            extra = ["--eval-users", str(args.eval_users), "--seed", str(args.seed)] if step == "quality" else []
            fig = run_step(step, data, model, params, extra)
            result[step] = fig
            _write(args, result)
            print(f"  {step:<14} {fig['seconds']:9.1f} s  peak {fig['peak_tree_gib']:5.2f} GiB  (load {fig['load_before']:.1f}"
                  f" -> {fig['load_after']:.1f})", flush=True)
            _write(args, result)
        if args.growth_share:
            gu = max(100, int(round(args.users * args.growth_share)))
            ginfo = make_data(gu, args.items, args.reviews_per_user, args.seed, args.workers)
            gfig = run_step("train", data_dir(gu, args.items, args.reviews_per_user, args.seed), Path(tmp) / "small", params)
            n1, n2 = ginfo["reviews"], info["reviews"]
            t1, t2 = gfig["seconds"], result["train"]["seconds"]
            result["growth"] = {"small": {"data": ginfo, "train": gfig}, "exponent": math.log(t2 / t1) / math.log(n2 / n1)}
            print(f"  growth: {n1:,} reviews {t1:.1f} s -> {n2:,} reviews {t2:.1f} s: exponent "
                  f"{result['growth']['exponent']:.2f}", flush=True)
    result["checks"] = checks(result)
    return result


def checks(r: dict) -> dict:
    out = {}
    if "train" in r:
        out[f"train < {TARGETS['train_minutes']} min"] = r["train"]["seconds"] < TARGETS["train_minutes"] * 60
        out[f"train peak < {TARGETS['train_peak_gib']} GiB"] = r["train"]["peak_tree_gib"] < TARGETS["train_peak_gib"]
    if "recommend_all" in r:
        out[f"top-10 for every user < {TARGETS['recommend_all_minutes']} min"] = \
            r["recommend_all"]["seconds"] < TARGETS["recommend_all_minutes"] * 60
    if "one_user" in r:
        out[f"one user median < {TARGETS['one_user_ms']} ms"] = r["one_user"]["median_ms"] < TARGETS["one_user_ms"]
    if "growth" in r:
        out[f"train growth exponent <= {TARGETS['growth_exponent']}"] = r["growth"]["exponent"] <= TARGETS["growth_exponent"]
    if "quality" in r:
        q = r["quality"]
        h, b = q["models"]["hybrid"]["ndcg@10"], q["models"][q["best_baseline"]]["ndcg@10"]
        out[f"hybrid NDCG@10 >= {TARGETS['lift']}x {q['best_baseline']}"] = h >= TARGETS["lift"] * b
        p = q["paired"]["wilcoxon_p"]  # 0.0 is a p-value (below float precision), not a missing one
        out[f"paired Wilcoxon p < {TARGETS['p']}"] = p is not None and p < TARGETS["p"]
    return out


def _out(args) -> Path:
    return args.out or ROOT / "benchmarks/results" / f"scale_hybrid{'_spark' if args.engine == 'spark' else ''}.json"


def _write(args, result: dict) -> None:
    out = _out(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", choices=["embedded", "spark"], default="embedded")
    ap.add_argument("--users", type=int, default=200_000)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--reviews-per-user", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--params", default="{}", help="hybrid parameters (JSON)")
    ap.add_argument("--growth-share", type=float, default=0.1, help="users (and reviews) of the growth run, as a share "
                    "of the main run's (0: skip)")
    ap.add_argument("--eval-users", type=int, default=20_000, help="test users sampled for the quality comparison")
    ap.add_argument("--no-quality", dest="quality", action="store_false")
    ap.add_argument("--ease-ablation", action="store_true", help="only the EASE ablation on this shop (a catalog where "
                    "EASE fits): the hybrid with and without its EASE generators, on the validation split")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="scoring processes")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--workdir", type=Path, help="Spark: keep the shards and the workspace here and resume after the "
                    "last completed stage (default: a temporary folder, removed)")
    ap.add_argument("--_step", choices=list(STEPS), help=argparse.SUPPRESS)
    ap.add_argument("--_make-csv", dest="make_csv", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._step:
        return _step_main(args)
    if args.make_csv:
        return _make_csv_main(args)
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    if args.ease_ablation:
        args.out = args.out or ROOT / "benchmarks/results/scale_hybrid_ease_ablation.json"
        result = run_ease_ablation(args)
    else:
        result = run_embedded(args) if args.engine == "embedded" else run_spark(args)
    result["total_seconds"] = round(time.perf_counter() - t0, 1)
    _write(args, result)
    for name, ok in result.get("checks", {}).items():
        print(f"  {'OK  ' if ok else 'MISS'} {name}")
    return 0


def make_csv(users: int, items: int, per_user: float, seed: int, folder: Path) -> dict:
    """The scaled shop as review CSV shards (the Spark ingest reads one file per task) + items.csv."""
    from scale import write_shards

    from emorec.jobs.demo_shop import DemoConfig, generate_demo_shop

    t = time.perf_counter()
    shop = generate_demo_shop(DemoConfig.at_scale(users, items, per_user, seed=seed))
    gen_s = time.perf_counter() - t
    reviews = write_shards(shop, folder)
    return {"reviews": len(reviews), "users": int(reviews["user_id"].nunique()), "items": len(shop.items),
            "reviewed_items": int(reviews["item_id"].nunique()), "generate_seconds": round(gen_s, 1)}


def _make_csv_main(args) -> int:
    print(json.dumps(make_csv(args.users, args.items, args.reviews_per_user, args.seed, Path(args.data))))
    return 0


def run_spark(args) -> dict:
    """Every stage on Spark (``benchmarks/scale.py``'s stage runner), the train stage the hybrid.

    With ``--workdir`` the shards and the workspace are kept there, and a rerun with the same
    shop resumes after the last stage that completed (its figures are read back from ``--out``)."""
    from scale import STAGES, run_stage

    shop = {"users": args.users, "items": args.items, "reviews_per_user": args.reviews_per_user, "seed": args.seed}
    result: dict = {"engine": "spark", "master": args.master, "conf": args.conf, "shop": shop,
                    "machine": {"cpus": os.cpu_count(), "load_start": os.getloadavg()},
                    "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "stages": {}}
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="emorec-scale-hybrid-spark-")))
        else:
            folder = Path(args.workdir)
            folder.mkdir(parents=True, exist_ok=True)
        data, ws, made_for = folder / "data", folder / "ws", folder / "shop.json"
        earlier = json.loads(_out(args).read_text()) if _out(args).exists() else {}
        if made_for.exists() and json.loads(made_for.read_text()) == shop and earlier.get("shop") == shop:
            done = {k: v for k, v in earlier["stages"].items() if k in STAGES}
            result.update(data=earlier["data"], stages=done, resumed_after=list(done))
        else:
            shutil.rmtree(data, ignore_errors=True)
            shutil.rmtree(ws, ignore_errors=True)
            made = subprocess.run([sys.executable, __file__, "--_make-csv", "--users", str(args.users), "--items",
                                   str(args.items), "--reviews-per-user", str(args.reviews_per_user), "--seed",
                                   str(args.seed), "--data", str(data)], capture_output=True, text=True, check=True)
            result["data"] = json.loads(made.stdout.strip().splitlines()[-1])
            made_for.write_text(json.dumps(shop))
        d = result["data"]
        print(f"spark {args.master}: {d['reviews']:,} reviews, {d['users']:,} users, {d['items']:,} items; other load: "
              f"{_other_load()}", flush=True)
        for stage in STAGES:
            if stage in result["stages"]:
                print(f"  {stage:<10} done before (resumed)", flush=True)
                continue
            fig = run_stage("spark", stage, ws, data, args.master, args.conf, "hybrid", json.dumps(json.loads(args.params)))
            result["stages"][stage] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in fig.items()}
            print(f"  {stage:<10} {fig['seconds']:9.1f} s  peak {fig['peak_tree_mib'] / 1024:6.2f} GiB "
                  f"(shared pages once: {fig['peak_tree_pss_mib'] / 1024:.2f})  "
                  f"(load before {fig['load_before']:.1f})", flush=True)
            _write(args, result)
    stages = list(result["stages"].values())
    result["stages"]["total"] = {"seconds": round(sum(s["seconds"] for s in stages), 1),
                                 "peak_tree_mib": max(s["peak_tree_mib"] for s in stages)}
    result["checks"] = {"completes": True}
    return result


if __name__ == "__main__":
    sys.exit(main())
