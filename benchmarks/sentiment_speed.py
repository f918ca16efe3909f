"""Scoring throughput: emorec's transformer scorer (full feature vector) in fp32, bf16 autocast
and int8 (dynamic quantization) vs a plain Hugging Face loop, and the lexicon scorer, on real
review texts, all in one run (so the ratios hold even on a shared machine).

    python benchmarks/sentiment_speed.py [--n 1000] [--threads N] [--streams S] [--model DIR]

Prints reviews/s, real (non-padding) tokens/s and useful GFLOP/s next to this machine's
measured fp32 matmul GFLOP/s, the speed-up of each path over the plain loop, the machine's
load average and CPU flags (AVX-512 VNNI / BF16, AMX), and writes
``benchmarks/results/sentiment_speed.json``. Uses the Amazon file when present, else demo-shop
reviews. ``--threads`` defaults to the cores this process may use.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

from emorec import sentiment  # noqa: E402
from emorec.common.cpus import available_cpus  # noqa: E402
from emorec.sentiment.encoder import load_base  # noqa: E402
from emorec.sentiment.parallel import score_chunks  # noqa: E402
from emorec.sentiment.transformer import SHIPPED_MODEL, TransformerScorer  # noqa: E402

AMAZON = ROOT.parent / "shared/data/amazon-musical-instruments-2014/reviews_Musical_Instruments_5.json.gz"
MAX_LENGTH = 256


def review_texts(n: int) -> tuple[list[str], str, list[str]]:
    if AMAZON.exists():
        from emorec.jobs.loaders import load_reviews
        from emorec.jobs.pipeline import clean_reviews

        r = clean_reviews(load_reviews(AMAZON)).reviews
        label = AMAZON.name
    else:
        from emorec.jobs.demo_shop import generate_demo_shop

        r = generate_demo_shop(n_users=max(200, n // 5)).reviews
        label = "demo shop"
    texts = sentiment.review_text(r["title"], r["text"]).tolist()
    rng = np.random.default_rng(0)
    sample = [texts[i] for i in rng.choice(len(texts), min(n, len(texts)), replace=False)]
    return sample, label, texts


def matmul_gflops(size: int = 1024, repeat: int = 20) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    t = time.perf_counter()
    for _ in range(repeat):
        a @ b
    return 2 * size**3 * repeat / (time.perf_counter() - t) / 1e9


def flops_per_review(n_tokens: int, hidden: int = 384, inter: int = 1536, layers: int = 6) -> float:
    """Forward FLOPs of a BERT encoder on one sequence (projections, FFN, attention)."""
    per_layer = 2 * n_tokens * (4 * hidden * hidden + 2 * hidden * inter) + 2 * 2 * n_tokens * n_tokens * hidden
    return layers * per_layer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: the usable cores)")
    ap.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    ap.add_argument("--precisions", default="fp32,bf16,int8", help="transformer paths to time (default: %(default)s)")
    ap.add_argument("--streams", type=int, default=None,
                    help="batches scored at once (default: the scorer's own, 2 on 2 or more threads)")
    args = ap.parse_args()
    args.threads = args.threads or available_cpus()
    torch.set_num_threads(args.threads)
    texts, label, all_texts = review_texts(args.n)
    tokenizer, bert = load_base()
    bert.eval()
    lengths = [len(x) for x in tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]]
    real_tokens = int(sum(lengths))
    useful_flops = float(sum(flops_per_review(n) for n in lengths))
    flags = set()
    if Path("/proc/cpuinfo").exists():
        flags = {f for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags") for f in line.split()}
    result = {"data": label, "n_reviews": len(texts), "max_length": MAX_LENGTH, "threads": args.threads,
              "mean_tokens": round(real_tokens / len(texts), 1), "machine_fp32_matmul_gflops": round(matmul_gflops(), 1),
              "load_average_1min_at_start": round(os.getloadavg()[0], 2), "cpus_usable": available_cpus(),
              "cpu_flags": sorted(flags & {"avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile", "avx_vnni"})}

    def record(name: str, seconds: float) -> None:
        result[name] = {"reviews_per_s": round(len(texts) / seconds, 1), "real_tokens_per_s": round(real_tokens / seconds),
                        "useful_gflops": round(useful_flops / seconds / 1e9, 1), "seconds": round(seconds, 2)}
        print(f"{name:<32} {len(texts) / seconds:8.1f} reviews/s  {real_tokens / seconds:9.0f} tokens/s  "
              f"{useful_flops / seconds / 1e9:6.1f} GFLOP/s", flush=True)

    print(f"{len(texts)} reviews from {label}, mean {result['mean_tokens']} tokens, max length {MAX_LENGTH}; "
          f"machine fp32 matmul {result['machine_fp32_matmul_gflops']} GFLOP/s")
    # A plain Hugging Face loop: batches of 32 in input order, padded to the longest, no_grad.
    t = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(texts), 32):
            batch = tokenizer(texts[i:i + 32], padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
            bert(**batch)
    record("plain_hf_loop_batch32", time.perf_counter() - t)

    for precision in args.precisions.split(","):
        scorer = TransformerScorer(args.model, max_length=MAX_LENGTH, precision=precision, threads=args.threads,
                                   streams=args.streams).load()
        scorer.score(texts[:16])  # warm-up
        t = time.perf_counter()
        scorer.score(texts)
        record(f"emorec_transformer_{precision}", time.perf_counter() - t)
        result[f"emorec_transformer_{precision}"]["streams"] = scorer.resolved_streams()

    lex = sentiment.LexiconScorer()
    lex.score(texts[:16])
    t = time.perf_counter()
    lex.score(texts)
    s = time.perf_counter() - t
    result["lexicon_reviews_per_s"] = round(len(texts) / s, 1)
    print(f"{'lexicon (one process)':<32} {len(texts) / s:8.1f} reviews/s")
    # The pipeline's path for large batches (> 20,000 reviews): one worker process per core,
    # chunks of 2,000; 60,000 reviews (the real texts, repeated) so that worker start-up is amortised
    # as it is in a real run.
    many = (all_texts * (60000 // len(all_texts) + 1))[:60000]
    workers = available_cpus()
    chunks = [many[i:i + 2000] for i in range(0, len(many), 2000)]
    t = time.perf_counter()
    n_scored = sum(len(df) for df in score_chunks(lex, chunks, workers=workers))
    s = time.perf_counter() - t
    result["lexicon_parallel"] = {"workers": workers, "n_reviews": n_scored, "reviews_per_s": round(n_scored / s, 1),
                                  "seconds_including_worker_start": round(s, 2)}
    print(f"{f'lexicon ({workers} worker processes)':<32} {n_scored / s:8.1f} reviews/s  ({n_scored} reviews, worker start included)")
    result["lexicon_target_reviews_per_s"] = 3000
    plain = result["plain_hf_loop_batch32"]["reviews_per_s"]
    result["speedup_vs_plain_loop"] = {p: round(result[f"emorec_transformer_{p}"]["reviews_per_s"] / plain, 2) for p in args.precisions.split(",")}
    result["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    print(f"speed-up over the plain loop (same run): {result['speedup_vs_plain_loop']}; load average "
          f"{result['load_average_1min_at_start']} -> {result['load_average_1min_at_end']} on {os.cpu_count()} CPUs")
    if "int8" in result["speedup_vs_plain_loop"]:
        result["int8_targets"] = {"reviews_per_s>=100": result["emorec_transformer_int8"]["reviews_per_s"] >= 100,
                                  "speedup>=3x": result["speedup_vs_plain_loop"]["int8"] >= 3.0}
    out = ROOT / "benchmarks/results/sentiment_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
