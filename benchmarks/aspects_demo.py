"""Aspect extraction quality and speed: the demo shop's ground truth and the Amazon file.

Demo shop (``jobs.demo_shop``, ground truth ``review_aspects``: one row per aspect sentence
written, with its polarity):

* mention precision and recall per aspect and overall, on (review, aspect) pairs;
* polarity accuracy on the correctly detected pairs (sign of ``asp_<a>_sentiment`` against
  the written polarity; a neutral 0 counts as wrong);
* the share of aspect carers whose most-mentioned aspect (sum of ``asp_*_mentions`` over
  their reviews; a tie counts as a miss) is their ``cared_aspect``.

The truth covers the review body, so the body is what is scored; the same figures on the
pipeline's text (title + body, :func:`sentiment.review_text`) are reported beside them.

Amazon Musical Instruments (skipped with a message when the file is absent): coverage (share
of reviews with >= 1 aspect), the top aspects, with the default aspects and with a music
shop's extra ``sound`` aspect, agreement of aspect sentiment with the star rating, and 15
random (clause, aspect, valence) triples to read.

Throughput: extraction alone (clause splitting + seed matching) and the full
:func:`sentiment.aspects.aspect_features` with the VADER callback, in reviews/s.

    python benchmarks/aspects_demo.py                    # 2,000 demo users + Amazon
    python benchmarks/aspects_demo.py --users 500 --no-amazon

Writes every figure to ``benchmarks/results/aspects_demo.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

from emorec.jobs.demo_shop import generate_demo_shop  # noqa: E402
from emorec.sentiment.aspects import (  # noqa: E402
    AspectConfig,
    AspectExtractor,
    aspect_features,
    lexicon_clause_valence,
)
from emorec.sentiment.base import review_text  # noqa: E402
from emorec.sentiment.text import clean_text  # noqa: E402

AMAZON = ROOT.parent / "shared/data/amazon-musical-instruments-2014/reviews_Musical_Instruments_5.json.gz"
OUT = ROOT / "benchmarks/results/aspects_demo.json"

#: What a music shop would add in its aspect config file.
MUSIC_EXTRA = {"sound": ["sound", "tone", "noise", "hum", "buzz", "tuning", "in tune", "volume", "sounds great"]}

log = logging.getLogger("aspects_demo")


# --------------------------------------------------------------------------------------
# demo shop
# --------------------------------------------------------------------------------------


def recovery(features: pd.DataFrame, review_ids: pd.Series, truth: pd.DataFrame, aspects: tuple[str, ...]) -> dict:
    """Mention precision/recall per aspect and overall, polarity accuracy on detected pairs."""
    truth = truth.assign(review_id=truth["review_id"].astype(str), aspect=truth["aspect"].astype(str))
    # a review can in principle carry the same aspect twice: its polarity is the mean sign
    tpol = truth.groupby(["review_id", "aspect"])["polarity"].mean()
    rid = review_ids.astype(str).to_numpy()
    per_aspect = {}
    tp_all = fp_all = fn_all = pol_ok_all = pol_n_all = 0
    for a in aspects:
        pred = features[f"asp_{a}_mentions"].to_numpy() > 0
        sent = features[f"asp_{a}_sentiment"].to_numpy(dtype=np.float64)
        t = tpol.xs(a, level="aspect") if a in tpol.index.get_level_values("aspect") else pd.Series(dtype=float)
        is_true = np.isin(rid, t.index.to_numpy())
        tp = int((pred & is_true).sum())
        fp = int((pred & ~is_true).sum())
        fn = int((~pred & is_true).sum())
        hit = np.flatnonzero(pred & is_true)
        truth_sign = np.sign(t.reindex(rid[hit]).to_numpy())
        pol_ok = int((np.sign(sent[hit]) == truth_sign).sum())
        per_aspect[a] = {
            "truth": int(is_true.sum()),
            "precision": tp / max(tp + fp, 1),
            "recall": tp / max(tp + fn, 1),
            "polarity_accuracy": pol_ok / max(len(hit), 1),
        }
        tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
        pol_ok_all, pol_n_all = pol_ok_all + pol_ok, pol_n_all + len(hit)
    return {
        "precision": tp_all / max(tp_all + fp_all, 1),
        "recall": tp_all / max(tp_all + fn_all, 1),
        "polarity_accuracy": pol_ok_all / max(pol_n_all, 1),
        "pairs_true": tp_all + fn_all,
        "pairs_predicted": tp_all + fp_all,
        "per_aspect": per_aspect,
    }


def carer_share(features: pd.DataFrame, reviews: pd.DataFrame, users: pd.DataFrame, aspects: tuple[str, ...]) -> dict:
    """Share of carers whose strictly most-mentioned aspect is their cared aspect."""
    cols = [f"asp_{a}_mentions" for a in aspects]
    per_user = features[cols].groupby(reviews["user_id"].astype(str).to_numpy()).sum()
    carers = users.dropna(subset=["cared_aspect"])
    counts = per_user.reindex(carers["user_id"].astype(str)).fillna(0).to_numpy()
    cared = np.array([aspects.index(a) for a in carers["cared_aspect"].astype(str)])
    top = counts.max(axis=1)
    own = counts[np.arange(len(cared)), cared]
    strict = (own == top) & ((counts == top[:, None]).sum(axis=1) == 1) & (top > 0)
    by_aspect = {
        a: float(strict[cared == k].mean()) if (cared == k).any() else None for k, a in enumerate(aspects)
    }
    return {"share": float(strict.mean()), "n_carers": len(cared), "per_cared_aspect": by_aspect}


def demo(n_users: int, seed: int) -> dict:
    t0 = time.perf_counter()
    shop = generate_demo_shop(n_users=n_users, seed=seed)
    log.info("demo shop: %d reviews in %.1f s", len(shop.reviews), time.perf_counter() - t0)
    cfg = AspectConfig()
    aspects = cfg.names
    reviews = shop.reviews
    body = reviews["text"].fillna("").astype(str).tolist()
    full = review_text(reviews["title"], reviews["text"]).tolist()
    out: dict = {"n_users": n_users, "seed": seed, "n_reviews": len(reviews), "n_truth_pairs": len(shop.review_aspects)}

    variants = {
        "body": (body, {}),
        "body_no_inherit": (body, {"inherit": 0.0}),
        "body_vader_only": (body, {"clause_valence": _vader_only}),
        "title_and_body": (full, {}),
    }
    for name, (texts, kwargs) in variants.items():
        feats = aspect_features(texts, cfg, **kwargs)
        out[name] = recovery(feats, reviews["review_id"], shop.review_aspects, aspects)
        out[name]["carers"] = carer_share(feats, reviews, shop.users, aspects)
    # the ceiling: the same carer share computed from the true aspect sentences
    truth_counts = (
        shop.review_aspects.assign(review_id=shop.review_aspects["review_id"].astype(str))
        .pivot_table(index="review_id", columns="aspect", values="polarity", aggfunc="size", fill_value=0)
        .reindex(index=reviews["review_id"].astype(str), columns=list(aspects), fill_value=0)
    )
    truth_counts.columns = [f"asp_{a}_mentions" for a in truth_counts.columns]
    out["carers_from_truth"] = carer_share(truth_counts.reset_index(drop=True), reviews, shop.users, aspects)
    return out


def _vader_only(texts, spans):
    return lexicon_clause_valence(texts, spans, domain_cues=False)


# --------------------------------------------------------------------------------------
# throughput
# --------------------------------------------------------------------------------------


def throughput(texts: list[str]) -> dict:
    ex = AspectExtractor(AspectConfig())
    t0 = time.perf_counter()
    ex.clause_aspects("warm up: compile the regex")
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for t in texts:
        ex.clause_aspects(t)
    extract_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    aspect_features(texts, extractor=ex)
    full_s = time.perf_counter() - t0
    return {
        "n_texts": len(texts),
        "compile_s": compile_s,
        "extraction_reviews_per_s": len(texts) / extract_s,
        "with_lexicon_valence_reviews_per_s": len(texts) / full_s,
    }


# --------------------------------------------------------------------------------------
# Amazon
# --------------------------------------------------------------------------------------


def amazon(path: Path, n_samples: int = 15, seed: int = 0) -> dict:
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            rows.append((r.get("summary") or "", r.get("reviewText") or "", float(r.get("overall") or 0)))
    df = pd.DataFrame(rows, columns=["title", "text", "rating"])
    df["title"] = df["title"].map(clean_text)
    df["text"] = df["text"].map(clean_text)
    texts = review_text(df["title"], df["text"]).tolist()
    out: dict = {"file": str(path), "n_reviews": len(texts)}
    for label, cfg in (("default", AspectConfig()), ("with_sound", AspectConfig.with_extra(MUSIC_EXTRA))):
        ex = AspectExtractor(cfg)
        feats = aspect_features(texts, cfg, extractor=ex)
        m = feats[[f"asp_{a}_mentions" for a in cfg.names]].to_numpy()
        share = {a: float((m[:, k] > 0).mean()) for k, a in enumerate(cfg.names)}
        block = {
            "coverage": float((m.sum(axis=1) > 0).mean()),
            "mentions_per_review": float(m.sum() / len(texts)),
            "aspect_share": dict(sorted(share.items(), key=lambda kv: -kv[1])),
        }
        # aspect sentiment against the stars: negative in 1-2 star, positive in 5 star reviews
        sents = feats[[f"asp_{a}_sentiment" for a in cfg.names]].to_numpy(dtype=np.float64)
        low, high = df["rating"].to_numpy() <= 2, df["rating"].to_numpy() == 5
        s_low, s_high = sents[low].ravel(), sents[high].ravel()
        s_low, s_high = s_low[~np.isnan(s_low)], s_high[~np.isnan(s_high)]
        block["negative_share_in_1_2_star"] = float((s_low < 0).mean()) if len(s_low) else None
        block["positive_share_in_5_star"] = float((s_high > 0).mean()) if len(s_high) else None
        out[label] = block
        if label == "with_sound":
            out["samples"] = _samples(texts, ex, n_samples, seed)
    return out


def _samples(texts: list[str], ex: AspectExtractor, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    triples = []
    for i in rng.permutation(len(texts)):
        found = ex.clause_aspects(texts[i])
        if not found:
            continue
        s, e, idx = found[rng.integers(len(found))]
        v = float(lexicon_clause_valence([texts[i]], [[(s, e)]])[0][0])
        triples.append({"clause": texts[i][s:e], "aspects": [ex.aspects[a] for a in idx], "valence": round(v, 3)})
        if len(triples) == n:
            break
    return triples


# --------------------------------------------------------------------------------------


def _print_recovery(name: str, r: dict) -> None:
    print(f"\n[{name}] precision {r['precision']:.3f}  recall {r['recall']:.3f}  "
          f"polarity accuracy {r['polarity_accuracy']:.3f}  carer share {r['carers']['share']:.3f} "
          f"({r['carers']['n_carers']} carers)")
    print(f"  {'aspect':<18}{'truth':>7}{'prec':>8}{'recall':>8}{'polarity':>10}{'carers':>8}")
    for a, m in r["per_aspect"].items():
        c = r["carers"]["per_cared_aspect"].get(a)
        print(f"  {a:<18}{m['truth']:>7}{m['precision']:>8.3f}{m['recall']:>8.3f}{m['polarity_accuracy']:>10.3f}"
              f"{'' if c is None else format(c, '8.3f')}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=2000, help="demo shop users (default 2000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--amazon", type=Path, default=AMAZON)
    ap.add_argument("--no-amazon", action="store_true")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    results: dict = {"demo": demo(args.users, args.seed)}
    print(f"demo shop: {args.users} users, {results['demo']['n_reviews']} reviews, "
          f"{results['demo']['n_truth_pairs']} true (review, aspect) pairs")
    for name in ("body", "body_no_inherit", "body_vader_only", "title_and_body"):
        _print_recovery(name, results["demo"][name])
    ceiling = results["demo"]["carers_from_truth"]
    print(f"\ncarer share from the true aspect sentences (ceiling): {ceiling['share']:.3f}; per cared aspect: "
          + ", ".join(f"{a} {v:.2f}" for a, v in ceiling["per_cared_aspect"].items() if v is not None))

    shop_texts = generate_demo_shop(n_users=args.users, seed=args.seed).reviews["text"].fillna("").tolist()
    results["throughput_demo"] = throughput(shop_texts)
    tp = results["throughput_demo"]
    print(f"\nthroughput (demo bodies, {tp['n_texts']} texts): extraction"
          f" {tp['extraction_reviews_per_s']:,.0f} reviews/s, with VADER clause valence {tp['with_lexicon_valence_reviews_per_s']:,.0f} reviews/s"
          f" (regex compile {tp['compile_s'] * 1000:.0f} ms)")

    if args.no_amazon:
        results["amazon"] = None
    elif not args.amazon.exists():
        print(f"\nSKIP Amazon: {args.amazon} not found (../shared/data is absent on this machine)")
        results["amazon"] = {"skipped": f"{args.amazon} not found"}
    else:
        am = amazon(args.amazon)
        results["amazon"] = am
        print(f"\nAmazon {args.amazon.name}: {am['n_reviews']} reviews")
        for label in ("default", "with_sound"):
            b = am[label]
            top = ", ".join(f"{a} {s:.1%}" for a, s in list(b["aspect_share"].items())[:6])
            print(f"  [{label}] coverage {b['coverage']:.1%}, {b['mentions_per_review']:.2f} aspect clauses/review;"
                  f" negative in 1-2 stars {b['negative_share_in_1_2_star']:.1%}, positive in 5 stars"
                  f" {b['positive_share_in_5_star']:.1%}\n    top: {top}")
        print("  15 random (clause, aspect, valence) triples to read:")
        for s in am["samples"]:
            print(f"    {s['valence']:+.2f} {','.join(s['aspects']):<22} {s['clause'][:110]!r}")
        texts = []
        with gzip.open(args.amazon, "rt", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                texts.append(clean_text(r.get("summary") or "") + ". " + clean_text(r.get("reviewText") or ""))
        results["throughput_amazon"] = throughput(texts)
        tp = results["throughput_amazon"]
        print(f"  throughput (Amazon, {tp['n_texts']} texts, avg {np.mean([len(t) for t in texts]):.0f} chars):"
              f" extraction {tp['extraction_reviews_per_s']:,.0f} reviews/s, with VADER"
              f" {tp['with_lexicon_valence_reviews_per_s']:,.0f} reviews/s")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
