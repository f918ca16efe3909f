"""Quality of the shipped emotion model on the GoEmotions test split.

Loads ``sentiment/models/default`` with ``EmotionEncoder.from_pretrained`` and scores the test
split with the thresholds stored in its config (tuned on dev at training time): macro-F1 on the
28 labels, on the Ekman grouping (+neutral) and on the sentiment grouping (+neutral), plus the
polarity head (argmax) and ``polarity_label`` (the stored valence band) on the texts whose
polarity is derivable from their labels.

    python benchmarks/goemotions.py [--model sentiment/models/default] [--threads 2]

Prints a table and writes ``benchmarks/results/goemotions.json``. Skips (exit 0, with a
message) when ``../shared/data/goemotions`` is absent.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

from emorec.jobs.train_emotions import (  # noqa: E402
    EVAL_FILE,
    evaluate,
    read_goemotions,
    read_groups,
    stored_polarity_thresholds,
    stored_thresholds,
)
from emorec.sentiment.encoder import EmotionEncoder, tokenize  # noqa: E402
from emorec.sentiment.training import predict  # noqa: E402

DATA = ROOT.parent / "shared/data/goemotions"
MODEL = ROOT / "sentiment/models/default"
RESULT = ROOT / "benchmarks/results/goemotions.json"
#: Published references (README of ../shared/data): BERT-base 28 labels, a reproduction's groupings.
REFERENCE = {"emotions_macro_f1": 0.46, "ekman_macro_f1": 0.61, "sentiment_macro_f1": 0.67}


def run(model_path: Path = MODEL, data: Path = DATA, threads: int | None = 2) -> dict:
    """Evaluate ``model_path`` on the test split of ``data``; returns the report."""
    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    test = read_goemotions(data, splits=("test",))["test"]
    ekman, sentiment_groups = read_groups(data)
    model, tokenizer = EmotionEncoder.from_pretrained(model_path)
    pred = predict(model, tokenize(tokenizer, test.texts, model.config.max_length))
    report = evaluate(pred, test, stored_thresholds(model.config), {"ekman": ekman, "sentiment": sentiment_groups},
                      stored_polarity_thresholds(model.config))
    report.update({"model": str(model_path.relative_to(ROOT) if model_path.is_relative_to(ROOT) else model_path),
                   "version": model.config.version, "seconds": round(time.perf_counter() - started, 1),
                   "threads": threads, "reference": REFERENCE})
    shipped = model_path / EVAL_FILE
    if shipped.exists():
        report["eval_json_test"] = {k: v for k, v in json.loads(shipped.read_text())["test"].items() if k.endswith("macro_f1")}
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=MODEL)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=RESULT)
    args = p.parse_args(argv)
    if not (args.data / "test.tsv").exists():
        print(f"skipped: GoEmotions data not found at {args.data} (../shared/data is absent on this machine)")
        return 0
    r = run(args.model.resolve(), args.data, args.threads)
    print(f"GoEmotions test ({r['n']} comments), model {r['version']}, {r['seconds']}s")
    print(f"{'metric':<22}{'emorec':>8}{'reference':>11}")
    for key, ref in REFERENCE.items():
        print(f"{key:<22}{r[key]:>8.4f}{ref:>11.2f}")
    print(f"{'polarity_macro_f1':<22}{r['polarity']['macro_f1']:>8.4f}{'-':>11}")
    print(f"{'polarity_label_macro_f1':<22}{r['polarity_label']['macro_f1']:>8.4f}{'-':>11}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(r, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
