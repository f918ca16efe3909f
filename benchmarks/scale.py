"""How the pipeline's cost grows with the number of reviews, embedded or on Spark.

Generates the demo shop at each size (8 reviews per user on average, one item per 50
reviews), writes its reviews as CSV shards of 100,000 rows (a big shop's export is a folder
of files; the Spark ingest reads one file per task), then runs every stage - ingest, score
(lexicon scorer), profile, train (ALS), recommend - in a fresh Python process, and prints
per stage the wall time, the peak memory and reviews per second, and the growth exponent
``log(t2 / t1) / log(n2 / n1)`` between consecutive sizes (1 = linear).

Peak memory is the peak resident memory of the stage's whole process tree (the stage
process, its scoring worker processes, and for Spark the JVM and its Python workers),
sampled every 0.1 s from /proc; ``ru_maxrss`` of the stage process itself is also kept.
CPU seconds (user + system of the same tree) are recorded too, with their own growth
exponents: on a machine shared with other jobs wall time grows with the others' load, CPU
time much less (the load average before each stage is in the table).

    python benchmarks/scale.py                                         # embedded, 10k 100k 1M
    python benchmarks/scale.py --engine spark --sizes 100000 1000000   # Spark local[2]
    python benchmarks/scale.py --engine spark --master 'local[4]' --conf spark.driver.memory=6g

Results are merged into ``benchmarks/results/scale.json`` (one section per engine and
size), and when both engines have figures for a size they are printed side by side.
Targets (issue 7): exponent <= 1.1 for ingest, score and profile; 1M reviews end to end
under 15 minutes on 2 cores; peak memory under 4 GiB (embedded).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STAGES = ("ingest", "score", "profile", "train", "recommend")
LINEAR_STAGES = ("ingest", "score", "profile")
SHARD_ROWS = 100_000
REVIEWS_PER_USER = 8
REVIEWS_PER_ITEM = 50
#: CPU figure of the exponents: user + system seconds of the stage's whole process tree
#: (scoring workers under their forkserver; for Spark the JVM and its Python workers), which
#: includes the interpreter start (~1 s) and, for Spark, the session start. (``stage_cpu_seconds``,
#: the stage process and its reaped children only, misses forkserver workers and the JVM.)
CPU_FIELD = {"embedded": "cpu_seconds", "spark": "cpu_seconds"}
TARGETS = {"exponent": 1.1, "end_to_end_1m_seconds": 15 * 60, "peak_gib": 4.0}


# --- one stage in a child process -------------------------------------------------------
def _stage_main(args) -> int:
    """Child: run one stage on the workspace and print its figures as JSON on the last line."""
    import logging

    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TQDM_DISABLE", "1")
    from emorec.jobs import pipeline
    from emorec.jobs.store import Workspace

    ws = Workspace(args.ws)
    data = Path(args.data)
    session_s = 0.0
    if args.engine == "spark":
        from emorec.jobs.spark.pipeline import SparkPipeline

        t = time.perf_counter()
        conf = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
                "spark.driver.memory": "3g", "spark.sql.shuffle.partitions": "8",
                "spark.local.dir": str(Path(args.ws).parent / "spark-local")}
        for pair in args.conf or ():
            k, _, v = pair.partition("=")
            conf[k] = v
        eng = SparkPipeline.from_options(args.master, conf)
        eng.spark.sparkContext.setLogLevel("ERROR")
        session_s = time.perf_counter() - t
    else:
        eng = pipeline
    def cpu_now() -> float:
        a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

    cpu0 = cpu_now()
    if args._stage == "ingest":
        res = eng.ingest(ws, sorted(data.glob("reviews-*.csv")), None, data / "items.csv")
    elif args._stage == "score":
        res = eng.score(ws, pipeline.resolve_scorer(ws, "lexicon"))
    elif args._stage == "profile":
        res = eng.profile(ws)
    elif args._stage == "train":
        if args.model == "auto":
            res = eng.train(ws)
        else:
            from emorec.recommender import ServiceConfig

            res = eng.train(ws, ServiceConfig(model=args.model, params=json.loads(args.model_params or "{}")))
    else:
        res = eng.recommend(ws, 10)
    stage_cpu = cpu_now() - cpu0  # this process and its reaped workers (not Spark's JVM)
    if args.engine == "spark":
        eng.spark.stop()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": res.seconds, "session_seconds": session_s, "counts": res.counts, "stage_cpu_seconds": stage_cpu,
                      "ru_maxrss_mib": own}))
    return 0


_TICK = os.sysconf("SC_CLK_TCK")


def _pss(pid: int) -> int | None:
    """Proportional set size (KiB) of ``pid``: its private pages plus its share of the pages it
    maps together with other processes (a model file that several workers map counts once in
    the sum over the processes); ``None`` where the kernel does not say."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _tree(pid: int) -> tuple[int, int, dict[int, float]]:
    """Resident memory (KiB) of ``pid`` and all its descendants - summed resident sets (pages
    shared between the processes counted in each) and summed proportional sets (counted once;
    the resident set where the kernel gives none) - and the CPU seconds of each process (user +
    system, including its reaped children), from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ppid, pages = int(fields[1]), int(fields[21])
            ticks = sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * (os.sysconf("SC_PAGE_SIZE") // 1024)
        cpu[int(entry)] = ticks / _TICK
    total, pss, todo, tree_cpu = 0, 0, [pid], {}
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        own = _pss(p)
        pss += rss.get(p, 0) if own is None else own
        tree_cpu[p] = cpu.get(p, 0.0)
        todo.extend(children.get(p, []))
    return total, pss, tree_cpu


def run_stage(engine: str, stage: str, ws: Path, data: Path, master: str | None, conf: list[str], model: str = "als",
              model_params: str = "{}") -> dict:
    """Run one stage in a fresh process; returns its figures plus the sampled tree peak. The
    train stage trains ``model`` (``auto``: what ``--model auto`` picks)."""
    cmd = [sys.executable, __file__, "--_stage", stage, "--engine", engine, "--ws", str(ws), "--data", str(data),
           "--model", model, "--model-params", model_params]
    if master:
        cmd += ["--master", master]
    for c in conf:
        cmd += ["--conf", c]
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "SPARK_LOCAL_IP": "127.0.0.1",
           "PYSPARK_PYTHON": sys.executable}
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = [0, 0]
    cpu: dict[int, float] = {}

    def sample():
        while proc.poll() is None:
            rss, pss, tree_cpu = _tree(proc.pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            for p, c in tree_cpu.items():
                cpu[p] = max(cpu.get(p, 0.0), c)
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    sampler.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{engine} {stage} failed ({proc.returncode}):\n{err[-4000:]}")
    figures = json.loads(out.strip().splitlines()[-1])
    figures.update(process_seconds=round(wall, 2), peak_tree_mib=round(peak[0] / 1024, 1),
                   peak_tree_pss_mib=round(peak[1] / 1024, 1), load_before=round(load, 2),
                   cpu_seconds=round(sum(cpu.values()), 2))
    return figures


# --- data ---------------------------------------------------------------------------------
def make_data(n_reviews: int, folder: Path) -> dict:
    """Demo shop of about ``n_reviews`` reviews as CSV shards + items.csv; returns its sizes."""
    from emorec.jobs.demo_shop import generate_demo_shop

    t = time.perf_counter()
    shop = generate_demo_shop(n_users=max(50, n_reviews // REVIEWS_PER_USER),
                              n_items=max(300, n_reviews // REVIEWS_PER_ITEM), seed=42)
    gen_s = time.perf_counter() - t
    reviews = write_shards(shop, folder)
    return {"reviews": len(reviews), "users": int(reviews["user_id"].nunique()), "items": len(shop.items),
            "generate_seconds": round(gen_s, 2), "shards": math.ceil(len(reviews) / SHARD_ROWS)}


def write_shards(shop, folder: Path):
    """A demo shop as review CSV shards of ``SHARD_ROWS`` rows (the Spark ingest reads one file
    per task; the input contract's columns only) and ``items.csv``; returns the reviews written."""
    folder.mkdir(parents=True, exist_ok=True)
    reviews = shop.input_reviews()
    for k, start in enumerate(range(0, len(reviews), SHARD_ROWS)):
        reviews.iloc[start:start + SHARD_ROWS].to_csv(folder / f"reviews-{k:04d}.csv", index=False)
    shop.items.to_csv(folder / "items.csv", index=False)
    return reviews


def _make_data_main(args) -> int:
    print(json.dumps(make_data(int(args.size), Path(args.data))))
    return 0


def _other_load() -> str:
    try:
        out = subprocess.run(["ps", "-eo", "pcpu,args", "--sort=-pcpu"], capture_output=True, text=True).stdout.splitlines()[1:6]
    except OSError:
        return "unknown"
    me = str(Path(__file__).name)
    busy = [line.strip()[:100] for line in out if float(line.split()[0]) > 20 and me not in line]
    return "; ".join(busy) or "none"


# --- report -------------------------------------------------------------------------------
def exponents(rows: dict[str, dict], field: str = "seconds") -> dict[str, dict[str, float]]:
    """Growth exponents of ``field`` (wall ``seconds`` or ``cpu_seconds``) per stage between
    consecutive sizes of one engine."""
    sizes = sorted(rows, key=lambda s: rows[s]["data"]["reviews"])
    out: dict[str, dict[str, float]] = {}
    for a, b in itertools.pairwise(sizes):
        na, nb = rows[a]["data"]["reviews"], rows[b]["data"]["reviews"]
        key = f"{a}->{b}"
        out[key] = {}
        for stage in (*STAGES, "total"):
            ta, tb = rows[a]["stages"].get(stage, {}).get(field), rows[b]["stages"].get(stage, {}).get(field)
            if ta and tb:
                out[key][stage] = round(math.log(tb / ta) / math.log(nb / na), 3)
    return out


def print_engine(engine: str, rows: dict[str, dict]) -> None:
    print(f"\n== {engine} ==")
    print(f"{'size':>9} {'stage':<10} {'seconds':>9} {'cpu s':>8} {'reviews/s':>11} {'peak MiB':>9} {'load':>5}")
    for size in sorted(rows, key=lambda s: rows[s]["data"]["reviews"]):
        r = rows[size]
        n = r["data"]["reviews"]
        for stage in (*STAGES, "total"):
            s = r["stages"][stage]
            print(f"{n:>9,} {stage:<10} {s['seconds']:>9.2f} {s.get(CPU_FIELD[engine], float('nan')):>8.1f} {n / max(s['seconds'], 1e-9):>11,.0f} "
                  f"{s.get('peak_tree_mib', 0):>9.0f} {s.get('load_before', float('nan')):>5.2f}")
    for pair, ex in exponents(rows).items():
        print(f"growth exponent (wall) {pair}: " + ", ".join(f"{k} {v:.2f}" for k, v in ex.items()))
    for pair, ex in exponents(rows, CPU_FIELD[engine]).items():
        print(f"growth exponent (cpu)  {pair}: " + ", ".join(f"{k} {v:.2f}" for k, v in ex.items()))


def print_side_by_side(result: dict) -> None:
    emb, spk = result.get("embedded", {}), result.get("spark", {})
    both = sorted(set(emb) & set(spk), key=lambda s: emb[s]["data"]["reviews"])
    if not both:
        return
    print("\n== embedded vs spark (seconds; spark excludes its session start) ==")
    print(f"{'size':>9} {'stage':<10} {'embedded':>9} {'spark':>9} {'spark/emb':>9}")
    for size in both:
        n = emb[size]["data"]["reviews"]
        for stage in (*STAGES, "total"):
            a, b = emb[size]["stages"][stage]["seconds"], spk[size]["stages"][stage]["seconds"]
            print(f"{n:>9,} {stage:<10} {a:>9.2f} {b:>9.2f} {b / max(a, 1e-9):>9.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", choices=["embedded", "spark"], default="embedded")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--master", help="Spark master URL (default: local[2])")
    ap.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="Spark option (repeatable)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/scale.json")
    ap.add_argument("--_stage", choices=STAGES, help=argparse.SUPPRESS)
    ap.add_argument("--_make-data", dest="make_data", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--ws", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--size", help=argparse.SUPPRESS)
    ap.add_argument("--model", default="als", help="the model of the train stage (default: %(default)s; auto = what "
                    "`emorec train --model auto` picks)")
    ap.add_argument("--model-params", default="{}", help="its parameters (JSON)")
    args = ap.parse_args()
    if args._stage:
        return _stage_main(args)
    if args.make_data:
        return _make_data_main(args)
    master = args.master or ("local[2]" if args.engine == "spark" else None)

    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    result.setdefault("machine", {"cpus": os.cpu_count(), "python": sys.version.split()[0]})
    section = result.setdefault(args.engine, {})
    with tempfile.TemporaryDirectory(prefix="emorec-scale-") as tmp:
        for size in args.sizes:
            data = Path(tmp) / f"data-{size}"
            made = subprocess.run([sys.executable, __file__, "--_make-data", "--size", str(size), "--data", str(data)],
                                  capture_output=True, text=True, check=True)
            info = json.loads(made.stdout.strip().splitlines()[-1])
            ws = Path(tmp) / f"ws-{args.engine}-{size}"
            row = {"data": info, "engine": args.engine, "master": master, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "other_load": _other_load(), "stages": {}}
            print(f"{args.engine} {info['reviews']:,} reviews ({info['users']:,} users, {info['items']:,} items, "
                  f"{info['shards']} files); other load: {row['other_load']}", flush=True)
            for stage in STAGES:
                fig = run_stage(args.engine, stage, ws, data, master, args.conf, args.model, args.model_params)
                row["stages"][stage] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in fig.items()}
                print(f"  {stage:<10} {fig['seconds']:8.2f} s  cpu {fig['cpu_seconds']:8.1f} s  peak {fig['peak_tree_mib']:7.0f} MiB  "
                      f"(load before {fig['load_before']:.2f})", flush=True)
            row["stages"]["total"] = {
                "seconds": round(sum(row["stages"][s]["seconds"] for s in STAGES), 3),
                "cpu_seconds": round(sum(row["stages"][s].get("cpu_seconds", 0.0) for s in STAGES), 2),
                "stage_cpu_seconds": round(sum(row["stages"][s].get("stage_cpu_seconds", 0.0) for s in STAGES), 2),
                "peak_tree_mib": max(row["stages"][s]["peak_tree_mib"] for s in STAGES),
                "load_before": row["stages"]["ingest"]["load_before"],
            }
            section[str(size)] = row
            args.out.parent.mkdir(parents=True, exist_ok=True)
            result[f"{args.engine}_exponents"] = exponents(section)
            result[f"{args.engine}_cpu_exponents"] = exponents(section, CPU_FIELD[args.engine])
            args.out.write_text(json.dumps(result, indent=2))
    print_engine(args.engine, section)
    print_side_by_side(result)
    checks = {}
    for pair, ex in exponents(section).items():
        for stage in LINEAR_STAGES:
            if stage in ex:
                checks[f"exponent {stage} {pair} <= {TARGETS['exponent']}"] = ex[stage] <= TARGETS["exponent"]
    if "1000000" in section:
        total = section["1000000"]["stages"]["total"]
        checks[f"1M end to end < {TARGETS['end_to_end_1m_seconds']} s"] = total["seconds"] < TARGETS["end_to_end_1m_seconds"]
        if args.engine == "embedded":
            checks[f"1M peak < {TARGETS['peak_gib']} GiB"] = total["peak_tree_mib"] < TARGETS["peak_gib"] * 1024
    result[f"{args.engine}_targets"] = checks
    args.out.write_text(json.dumps(result, indent=2))
    for name, ok in checks.items():
        print(f"  {'OK  ' if ok else 'MISS'} {name}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
