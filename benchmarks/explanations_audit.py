"""Audit every explanation of every list against the stored tables.

Runs the pipeline (ingest, score, train the hybrid, recommend the top-10 of every user) on the
Amazon Musical Instruments file and on the demo shop, then re-derives every claim of every
explanation FROM THE STORED TABLES (``reviews``, ``review_scores``, ``items``,
``recommendations``) with its own pandas code, independently of ``recommender/explain.py`` and
``recommender/evidence.py`` (it reads only the thresholds from the saved model's config and the
aspect seeds from the scores' metadata; clauses and their valence come from the public functions
of ``sentiment.aspects``, the definition of "a clause about an aspect"):

* aspect reasons: the quoted review is a review of the recommended item, the quote is an exact
  substring of its title or text, at most ``quote_chars`` long, mentions the aspect and reads
  positive (lexicon valence above the neutral band, and the review's stored aspect sentiment is
  positive); the count of praising reviews (stored aspect sentiment positive, a clause about the
  aspect with lexicon valence >= ``praise_valence`` and none <= ``-praise_valence``; a review
  is negative when its stored aspect sentiment is negative or such a clause is) and of all its
  reviews are recomputed and
  must equal the stated ones, clear ``min_support``, be at least ``min_praise_share`` of the
  reviews with a clear opinion on the aspect, and be credibly (posterior probability >=
  ``praise_confidence``) above the shop's share of praise on that aspect;
* sequential / also_bought: the named item is one the user reviewed; the distinct customers who
  reviewed it and later (or also) the recommended item, and all its customers, are recounted;
* popular: reviews per item in the 90 days before the day of the user's last review, the item's
  rank and the items reviewed then are recounted; it needs ``min_support`` reviews and the top
  ``popular_top_share`` of those items;
* review_count (popularity fallback): customers per item and rank;
* the polarity of every explained item: review count, share of reviews whose valence reads
  positive, mean stars, and the texts-versus-stars note exactly when they differ by
  ``star_text_gap``;
* every number a reason states appears in its sentence.

It prints the unsupported claims (target: 0), the share of each reason type (``generic`` = no
reason with enough evidence) and, on the demo shop, the precision of aspect reasons against the
planted item aspects (strength > 0 = true; target >= 0.95). Figures go to
``benchmarks/results/explanations_audit.json``.

    OMP_NUM_THREADS=1 python benchmarks/explanations_audit.py                 # lexicon scorer, both shops
    python benchmarks/explanations_audit.py --scorer transformer --skip-demo  # the transformer on Amazon
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import beta

ROOT = Path(__file__).resolve().parents[1]

from emorec.jobs import pipeline  # noqa: E402
from emorec.jobs.store import Workspace  # noqa: E402
from emorec.recommender import ServiceConfig  # noqa: E402
from emorec.sentiment.aspects import AspectConfig, AspectExtractor, lexicon_clause_valence  # noqa: E402

AMAZON = ROOT.parent / "shared/data/amazon-musical-instruments-2014/reviews_Musical_Instruments_5.json.gz"
NEUTRAL = 0.05  # the valence band of a neutral text (profiles' negative_valence, the extractor's band)
log = logging.getLogger("explanations_audit")


# --- the pipeline -----------------------------------------------------------------------------------
def run_pipeline(ws: Workspace, sources: list[Path], items: Path | None, scorer: str, n: int) -> dict:
    t = {}
    t0 = time.perf_counter()
    pipeline.ingest(ws, sources, None, items)
    t["ingest_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pipeline.score(ws, pipeline.resolve_scorer(ws, scorer))
    t["score_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pipeline.train(ws, ServiceConfig(model="hybrid"))
    t["train_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pipeline.recommend(ws, n)
    t["recommend_s"] = time.perf_counter() - t0
    return {k: round(v, 1) for k, v in t.items()}


# --- the audit --------------------------------------------------------------------------------------
class Audit:
    """Re-derives the claims of a workspace's ``recommendations`` from its stored tables."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        model_cfg = json.loads((ws.model_path("recommender") / "model" / "config.json").read_text())
        self.cfg = model_cfg["config"]["evidence"]
        self.reviews = ws.read_table("reviews", columns=["review_id", "user_id", "item_id", "rating", "title", "text",
                                                         "timestamp"])
        self.scores = ws.read_table("review_scores")
        recs = ws.read_table("recommendations")
        for c, t in recs.dtypes.items():  # plain Python values: NaN for a missing number, None for a missing text
            recs[c] = recs[c].astype("float64") if str(t).startswith(("Int", "float")) else recs[c]
            if str(t) == "string":
                recs[c] = recs[c].astype(object).where(recs[c].notna(), None)
        self.recs = recs
        self.titles = {}
        if ws.has_table("items"):
            it = ws.read_table("items", columns=["item_id", "title"]).dropna()
            self.titles = dict(zip(it["item_id"], it["title"].str.strip()))
        self.aspect_config = AspectConfig(**ws.table_metadata("review_scores")["aspects"])
        self.extractor = AspectExtractor(self.aspect_config)
        r = self.reviews.merge(self.scores, on="review_id", how="left")
        r["title"], r["text"] = r["title"].fillna("").astype(str), r["text"].fillna("").astype(str)
        r["t"] = (r["timestamp"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()  # NaN without a timestamp
        r["day"] = np.floor(r["t"] / 86400)
        self.r = r
        g = r.groupby("item_id")
        self.item = pd.DataFrame({
            "reviews": g.size(), "customers": g["user_id"].nunique(),
            "scored": g["valence"].count(), "positive": g["valence"].apply(lambda v: int((v > NEUTRAL).sum())),
            "rated": g["rating"].count(), "stars": g["rating"].mean(),
            "star_pos": g["rating"].apply(lambda v: int((v >= 4).sum())),
        })
        self.user_items = r.groupby("user_id")["item_id"].agg(set)
        self.user_last_day = r.groupby("user_id")["day"].max()
        # per (user, item): first and last review time
        self.ui = r.groupby(["user_id", "item_id"])["t"].agg(["min", "max"]).reset_index()
        self.problems: list[dict] = []
        self.claims = Counter()

    def fail(self, row, what: str) -> None:
        self.problems.append({"user_id": row.user_id, "item_id": row.item_id, "reason_type": row.reason_type,
                              "problem": what, "explanation": row.explanation})

    def check(self, row, ok: bool, what: str) -> bool:
        self.claims[row.reason_type] += 1
        if not ok:
            self.fail(row, what)
        return ok

    # --- reasons ---------------------------------------------------------------------
    def praise_table(self) -> pd.DataFrame:
        """Per (item, aspect): praising and negative reviews, recounted from the tables."""
        if "_praise" not in self.__dict__:
            r = self.r
            names = list(self.extractor.aspects)
            present = [a for a in names if f"asp_{a}_mentions" in r.columns]
            ment = {a: r[f"asp_{a}_mentions"].fillna(0).to_numpy() >= 1 for a in present}
            sent = {a: r[f"asp_{a}_sentiment"].to_numpy(dtype=float, na_value=np.nan) for a in present}
            cand = np.flatnonzero(np.any([ment[a] for a in present], axis=0))
            praised = {a: np.zeros(len(r), bool) for a in present}
            negative = {a: ment[a] & (sent[a] < -NEUTRAL) for a in present}
            t = self.cfg["praise_valence"]
            for j in cand:
                full = _joined(r["title"].iloc[j], r["text"].iloc[j])
                clauses = self.extractor.clause_aspects(full)
                vals = lexicon_clause_valence([full], [[(s0, e0) for s0, e0, _ in clauses]])[0]
                for a in present:
                    if not ment[a][j]:
                        continue
                    k = names.index(a)
                    about = [v for (_, _, idx), v in zip(clauses, vals) if k in idx]
                    if any(v <= -t for v in about):
                        negative[a][j] = True
                    elif sent[a][j] > NEUTRAL and any(v >= t for v in about):
                        praised[a][j] = True
            rows = []
            for a in present:
                g = pd.DataFrame({"item_id": r["item_id"], "praised": praised[a], "negative": negative[a]}).groupby("item_id").sum()
                rows.append(g.assign(aspect=a).reset_index())
            self._praising_reviews = {a: set(r["review_id"][praised[a]]) for a in present}
            t = pd.concat(rows, ignore_index=True)
            totals = t.groupby("aspect")[["praised", "negative"]].sum()
            t["shop_share"] = t["aspect"].map(totals["praised"] / (totals["praised"] + totals["negative"]))
            self._praise = t.set_index(["item_id", "aspect"])
        return self._praise

    def audit_aspect(self, row) -> None:
        a, q, rid = row.reason_aspect, row.evidence_quote, row.evidence_review_id
        if not self.check(row, isinstance(a, str) and a in self.extractor.aspects, f"unknown aspect {a!r}"):
            return
        rv = self.r[self.r["review_id"] == rid]
        if not self.check(row, len(rv) == 1 and rv["item_id"].iloc[0] == row.item_id,
                          f"quoted review {rid} is not a review of {row.item_id}"):
            return
        title, text = (rv["title"].fillna("").iloc[0], rv["text"].fillna("").iloc[0])
        self.check(row, isinstance(q, str) and (q in title or q in text), "the quote is not in the review's text")
        self.check(row, isinstance(q, str) and len(q) <= self.cfg["quote_chars"], "the quote is too long")
        k = self.extractor.aspects.index(a)
        self.check(row, any(k in idx for _, _, idx in self.extractor.clause_aspects(q)), f"the quote does not mention {a}")
        self.check(row, lexicon_clause_valence([q], [[(0, len(q))]])[0][0] > NEUTRAL, "the quote does not read positive")
        self.check(row, rv[f"asp_{a}_sentiment"].iloc[0] > NEUTRAL, f"the quoted review's stored {a} sentiment is not positive")
        p = self.praise_table().loc[(row.item_id, a)]
        self.check(row, rid in self._praising_reviews[a], f"the quoted review {rid} is not one that praises {a}")
        praised, against, shop = int(p["praised"]), int(p["negative"]), float(p["shop_share"])
        n = int(self.item.loc[row.item_id, "reviews"])
        self.check(row, row.evidence_count == praised, f"praising reviews: stated {row.evidence_count}, recounted {praised}")
        self.check(row, row.evidence_total == n, f"reviews: stated {row.evidence_total}, recounted {n}")
        self.check(row, praised >= self.cfg["min_support"], f"only {praised} praising reviews")
        self.check(row, praised >= self.cfg["min_praise_share"] * (praised + against),
                   f"{praised} praising vs {against} negative reviews")
        above = beta.sf(shop, praised + 1, against + 1)
        self.check(row, above >= self.cfg["praise_confidence"],
                   f"not credibly above the shop's praise share {shop:.2f}: P = {above:.2f} ({praised} vs {against})")
        self.check(row, f"{praised} of its {n} reviews" in row.explanation and f'"{q}"' in row.explanation
                   and all(w in row.explanation for w in a.split("_")), "the sentence does not state the evidence")

    def audit_pair(self, row, later: bool) -> None:
        a, b = row.evidence_item_id, row.item_id
        if not self.check(row, a in self.user_items.get(row.user_id, set()), f"the user never reviewed {a}"):
            return
        ua = self.ui[self.ui["item_id"] == a].set_index("user_id")
        ub = self.ui[self.ui["item_id"] == b].set_index("user_id")
        both = ua.add_suffix("_a").join(ub.add_suffix("_b"), how="inner")
        count = int((both["min_a"] < both["max_b"]).sum()) if later else len(both)
        total = len(ua)
        self.check(row, row.evidence_count == count, f"customers: stated {row.evidence_count}, recounted {count}")
        self.check(row, row.evidence_total == total, f"customers of {a}: stated {row.evidence_total}, recounted {total}")
        self.check(row, count >= self.cfg["min_support"], f"only {count} customers")
        name = f'"{self.titles[a]}"' if self.titles.get(a) else f"item {a}"
        self.check(row, f"{count} of the {total} customers who bought {name}" in row.explanation,
                   "the sentence does not state the evidence")
        self.check(row, (row.evidence_title or None) == (self.titles.get(a) or None), "wrong title")

    def audit_popular(self, row) -> None:
        days = self.cfg["popular_days"]
        d = self.user_last_day[row.user_id]
        win = self.r[(self.r["day"] >= d - days) & (self.r["day"] <= d - 1)]
        counts = win.groupby("item_id").size()
        c = int(counts.get(row.item_id, 0))
        rank, active = int(1 + (counts > c).sum()), len(counts)
        self.check(row, (row.evidence_count, row.evidence_rank, row.evidence_total) == (c, rank, active),
                   f"window: stated {row.evidence_count} reviews #{row.evidence_rank} of {row.evidence_total}, "
                   f"recounted {c} #{rank} of {active}")
        self.check(row, c >= self.cfg["min_support"] and rank <= self.cfg["popular_top_share"] * active,
                   f"not popular: {c} reviews, #{rank} of {active}")
        self.check(row, f"in the {days} days before your last review ({c} reviews, #{rank} of the {active} items"
                   in row.explanation, "the sentence does not state the evidence")

    def audit_review_count(self, row) -> None:
        cust = self.item["customers"]
        c = int(cust.get(row.item_id, 0))
        rank, active = int(1 + (cust > c).sum()), int((cust > 0).sum())
        self.check(row, (row.evidence_count, row.evidence_rank, row.evidence_total) == (c, rank, active),
                   f"stated {row.evidence_count} customers #{row.evidence_rank} of {row.evidence_total}, recounted "
                   f"{c} #{rank} of {active}")
        top = rank <= self.cfg["popular_top_share"] * active
        self.check(row, ("most reviewed" in row.explanation) == top and f"#{rank} of {active}" in row.explanation,
                   "the sentence does not state the evidence")

    def audit_polarity(self, row) -> None:
        s = self.item.loc[row.item_id]
        n, scored, rated = int(s["reviews"]), int(s["scored"]), int(s["rated"])
        self.claims["polarity"] += 1
        bad = []
        if row.item_reviews != n:
            bad.append(f"reviews: stated {row.item_reviews}, recounted {n}")
        share = s["positive"] / scored if scored else float("nan")
        stars = s["stars"] if rated else float("nan")
        if not _close(row.item_positive_share, share):
            bad.append(f"positive share: stated {row.item_positive_share}, recounted {share}")
        if not _close(row.item_mean_stars, stars):
            bad.append(f"mean stars: stated {row.item_mean_stars}, recounted {stars}")
        if scored and f"{share:.0%} of its {scored} " not in row.explanation:
            bad.append("the sentence does not state the positive share")
        if rated and f"{stars:.1f} stars on average" not in row.explanation:
            bad.append("the sentence does not state the mean stars")
        if scored and rated:
            gap = abs(share - s["star_pos"] / rated) >= self.cfg["star_text_gap"]
            if gap != ("than its stars" in row.explanation):
                bad.append(f"texts {share:.2f} vs 4-5 stars {s['star_pos'] / rated:.2f}: the disagreement note is "
                           + ("missing" if gap else "wrong"))
        for b in bad:
            self.fail(row, b)

    def run(self) -> dict:
        recs = self.recs
        for row in recs.itertuples(index=False):
            self.claims["listed"] += 1
            if row.item_id in self.user_items.get(row.user_id, set()):
                self.fail(row, "recommends an item the user already reviewed")
            t = row.reason_type
            if t == "aspect":
                self.audit_aspect(row)
            elif t in ("sequential", "also_bought"):
                self.audit_pair(row, later=t == "sequential")
            elif t == "popular":
                self.audit_popular(row)
            elif t == "review_count":
                self.audit_review_count(row)
            elif t != "generic":
                self.fail(row, f"unknown reason type {t!r}")
            if not pd.isna(row.item_reviews):
                self.audit_polarity(row)
        shares = recs["reason_type"].value_counts(normalize=True).round(4).to_dict()
        per_user_generic = recs.groupby("user_id")["reason_type"].apply(lambda s: (s == "generic").all()).mean()
        unsupported_rows = len({(p["user_id"], p["item_id"]) for p in self.problems})
        return {
            "users": int(recs["user_id"].nunique()), "explanations": len(recs),
            "claims_checked": dict(self.claims), "unsupported_claims": len(self.problems),
            "explanations_with_an_unsupported_claim": unsupported_rows,
            "reason_type_share": shares, "generic_share": float(shares.get("generic", 0.0)),
            "users_with_only_generic_reasons": round(float(per_user_generic), 4),
            "problems_by_kind": dict(Counter(p["problem"].split(":")[0] for p in self.problems).most_common(20)),
            "problem_examples": self.problems[:20],
            "examples": recs.groupby("reason_type").head(2)[["user_id", "item_id", "reason_type", "explanation"]]
            .to_dict(orient="records"),
        }


def _joined(title: str, text: str) -> str:
    """Title and body as the scorer reads them (``"title. body"``)."""
    title, text = title.strip(), text.strip()
    if title and text:
        return title + (" " if title[-1] in ".!?" else ". ") + text
    return title or text


def _close(stated, recomputed) -> bool:
    if pd.isna(recomputed):
        return pd.isna(stated)
    return not pd.isna(stated) and math.isclose(float(stated), float(recomputed), rel_tol=1e-5, abs_tol=1e-5)


def aspect_precision(recs: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Aspect reasons against the demo shop's planted item aspects (strength > 0 = true)."""
    a = recs[recs["reason_type"] == "aspect"][["item_id", "reason_aspect"]].astype(str)
    t = truth.assign(item_id=truth["item_id"].astype(str), aspect=truth["aspect"].astype(str))
    m = a.merge(t, left_on=["item_id", "reason_aspect"], right_on=["item_id", "aspect"], how="left")
    true = m["strength"].fillna(-1) > 0
    pairs = m.drop_duplicates(["item_id", "reason_aspect"])
    return {"aspect_reasons": len(m), "precision": round(float(true.mean()), 4) if len(m) else None,
            "distinct_item_aspects": len(pairs),
            "precision_distinct": round(float((pairs["strength"].fillna(-1) > 0).mean()), 4) if len(pairs) else None,
            "false": m[~true][["item_id", "reason_aspect", "strength"]].drop_duplicates().head(20).to_dict(orient="records")}


def report(name: str, res: dict) -> None:
    print(f"\n== {name} ==")
    print(f"users {res['users']:,}, explanations {res['explanations']:,}; claims checked {sum(res['claims_checked'].values()) - res['claims_checked'].get('listed', 0):,}")
    print(f"unsupported claims: {res['unsupported_claims']} (in {res['explanations_with_an_unsupported_claim']} explanations)")
    for k, v in res["problems_by_kind"].items():
        print(f"  {v:6d}  {k}")
    print("reason types: " + ", ".join(f"{k} {v:.1%}" for k, v in res["reason_type_share"].items()))
    print(f"generic reasons: {res['generic_share']:.1%} of explanations; users with only generic reasons: "
          f"{res['users_with_only_generic_reasons']:.1%}")
    if "aspect_precision" in res:
        p = res["aspect_precision"]
        print(f"aspect reasons vs planted aspects: precision {p['precision']} over {p['aspect_reasons']} reasons "
              f"({p['precision_distinct']} over {p['distinct_item_aspects']} distinct item x aspect)")
    for e in res["examples"]:
        print(f"  [{e['reason_type']}] {e['explanation']}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--amazon", type=Path, default=AMAZON)
    ap.add_argument("--demo-users", type=int, default=1000)
    ap.add_argument("--scorer", default="lexicon", choices=["lexicon", "transformer"])
    ap.add_argument("--skip-amazon", action="store_true")
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("-n", type=int, default=10, help="list length")
    ap.add_argument("--keep", type=Path, help="keep the workspaces under this folder")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/explanations_audit.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out: dict = {"scorer": args.scorer}
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        if not args.skip_demo:
            from emorec.jobs.demo_shop import generate_demo_shop

            shop = generate_demo_shop(n_users=args.demo_users)
            paths = shop.write(base / "demo-data")
            ws = Workspace(base / f"demo-{args.scorer}")
            timings = run_pipeline(ws, [Path(paths["reviews"])], Path(paths["items"]), args.scorer, args.n)
            res = Audit(ws).run()
            res["aspect_precision"] = aspect_precision(ws.read_table("recommendations"), shop.item_aspects)
            res["timings"] = timings
            out["demo"] = res
            report(f"demo shop ({args.demo_users} users, {args.scorer} scorer)", res)
        if not args.skip_amazon:
            if not args.amazon.exists():
                print(f"SKIP Amazon: {args.amazon} not found (../shared/data is absent)")
            else:
                ws = Workspace(base / f"amazon-{args.scorer}")
                timings = run_pipeline(ws, [args.amazon], None, args.scorer, args.n)
                res = Audit(ws).run()
                res["timings"] = timings
                out["amazon"] = res
                report(f"Amazon Musical Instruments ({args.scorer} scorer)", res)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str))
    print(f"\nwrote {args.out}")
    bad = sum(v["unsupported_claims"] for k, v in out.items() if isinstance(v, dict) and "unsupported_claims" in v)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
