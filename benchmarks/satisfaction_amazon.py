"""Satisfaction prediction: do emotions and aspects tell whether a customer will be glad they bought?

For every test (user, item) pair - a review the model has not seen - predict P(satisfied)
(4-5 stars; :mod:`recommender.outcomes`) from what was written *before* the review
(:mod:`recommender.satisfaction`), and measure AUC and log-loss:

* star-only baselines: user mean + item mean with shrinkage (``means``), a biased matrix
  factorisation of the stars (``mf``), and LightGBM on the star features alone
  (``lightgbm_stars``: the strongest star-only model);
* the emotional model: LightGBM on every feature group (``lightgbm_all``: stars, polarity,
  emotions, aspects, monitor signals), and its ablation per group (``drop_<group>``);
* ``lightgbm_selected``: what :func:`recommender.satisfaction.tune` recommends for this shop -
  every group if they beat stars alone on the validation pairs (paired bootstrap, p < 0.1),
  else stars alone (the features that do not pay are dropped).

Two splits: **leave-last-out** (each user's last review is the test pair) and a **global
time split** (reviews after a cutoff by users seen before it; the cutoff leaves ``--test-share``
of the reviews after it). Every setting (shrinkage, MF size, LightGBM parameters and rounds,
whether boosting starts from the MF's log-odds) is chosen on a validation split carved from the
training part the same way (never on test pairs); the star-only baseline the target compares
against is the one with the best *validation* AUC. Features of test pairs read the training
part only (what was known when the model was trained), each pair only reviews written before
its own time.

Paired tests: bootstrap over users (``--boot`` resamples; a user's pairs move together and
both AUCs are recomputed on every resample), two-sided p-values, Holm-adjusted across the
comparisons of the emotional model within a split (``p_holm``). An ablation refits the model
with its own early-stopped rounds, so a small difference from a group with no gain share is
refitting noise, not the group's contribution: read it with the gain shares.

Reviews are scored with the shipped transformer (int8; ``--scorer lexicon`` for VADER, which
gives no emotions: the emotions group is then empty) and cached per dataset fingerprint and
model version (``benchmarks/score_cache.py``).

``--demo`` runs on the generated demo shop instead (``--demo-users``), whose truth tables mark
the planted regrets (purchases of items with a hidden defect on an aspect the buyer cares
about, or that disappoints everyone): there it also reports how well each model ranks the
planted regrets below the other test pairs (AUC of ``1 - P(satisfied)`` for "planted regret"),
overall and among the purchases of defective items.

    python benchmarks/satisfaction_amazon.py [--reviews FILE | --demo] [--scorer transformer|lexicon]
                                             [--test-share 0.3] [--boot 2000]

Prints the tables and writes ``benchmarks/results/satisfaction_<dataset>_<scorer>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from score_cache import AMAZON, ROOT, dataset_name, load_file, review_scores

from emorec.jobs.evaluation.stats import adjust_pvalues
from emorec.recommender.metrics import auc, log_loss, paired_auc_bootstrap
from emorec.recommender.satisfaction import (
    GROUPS,
    SatisfactionConfig,
    SatisfactionModel,
    fit_rounds,
    pair_labels,
    tune,
)
from emorec.recommender.splits import cutoff_for_share, global_cutoff, leave_last_out

log = logging.getLogger("satisfaction_amazon")
STAR_ONLY = ("means", "mf", "lightgbm_stars")
EMOTIONAL_GROUPS = ("polarity", "emotions", "aspects", "monitor")
TARGET_GAIN = 0.03


def make_splits(reviews: pd.DataFrame, test_share: float) -> dict:
    """Each split with its validation split carved from its training part, the same way."""
    llo = leave_last_out(reviews)
    cut = cutoff_for_share(reviews, test_share)
    glob = global_cutoff(reviews, cut)
    val_cut = cutoff_for_share(glob.train, test_share)
    return {
        "leave_last_out": {"split": llo, "validation": leave_last_out(llo.train), "cutoff": None},
        "global_time": {"split": glob, "validation": global_cutoff(glob.train, val_cut),
                        "cutoff": str(cut.date()), "validation_cutoff": str(val_cut.date())},
    }


def run_split(name: str, spec: dict, scores: pd.DataFrame, has_emotions: bool, n_boot: int, seed: int,
              truth: pd.DataFrame | None) -> dict:
    split, val = spec["split"], spec["validation"]
    t0 = time.perf_counter()
    base = SatisfactionConfig()
    tuned = tune(base, val.train, val.test, scores, lightgbm_groups=[list(GROUPS), ["stars"]])
    configs = {"means": tuned["means"]["config"], "mf": tuned["mf"]["config"],
               "lightgbm_stars": tuned["lightgbm"]["stars"]["config"],
               "lightgbm_all": tuned["lightgbm"]["+".join(GROUPS)]["config"]}
    val_auc = {"means": max(t["auc"] for t in tuned["means"]["trials"]), "mf": max(t["auc"] for t in tuned["mf"]["trials"]),
               "lightgbm_stars": tuned["lightgbm"]["stars"]["validation_auc"],
               "lightgbm_all": tuned["lightgbm"]["+".join(GROUPS)]["validation_auc"]}
    selected = tuned["selected"]["groups"]
    configs["lightgbm_selected"] = tuned["lightgbm"][selected]["config"]
    val_auc["lightgbm_selected"] = tuned["lightgbm"][selected]["validation_auc"]
    skipped = {}
    for g in EMOTIONAL_GROUPS:
        if g == "emotions" and not has_emotions:
            skipped[f"drop_{g}"] = "the scorer gives no emotions: the group is empty, dropping it changes nothing"
            continue
        cfg = configs["lightgbm_all"].model_copy(update={"groups": [x for x in configs["lightgbm_all"].groups if x != g]})
        configs[f"drop_{g}"], val_auc[f"drop_{g}"] = fit_rounds(cfg, val.train, val.test, scores)
    tune_s = time.perf_counter() - t0

    test = split.test
    y = pair_labels(test, scores)
    known = np.isfinite(y)
    test, y = test.loc[known].reset_index(drop=True), y[known]
    users = test["user_id"].astype(str).to_numpy()
    preds, results, importances = {}, {}, None
    for variant, cfg in configs.items():
        t = time.perf_counter()
        model = SatisfactionModel(cfg).fit(split.train, scores)
        p = model.predict_proba(test, split.train, scores)
        preds[variant] = p
        results[variant] = {"auc": auc(y, p), "log_loss": log_loss(y, p), "validation_auc": val_auc[variant],
                            "config": _summary(cfg), "seconds": round(time.perf_counter() - t, 1)}
        if variant == "lightgbm_all":
            imp = model.feature_importances()
            importances = {"gain_share_by_group": (imp.groupby("group")["gain"].sum() / max(imp["gain"].sum(), 1e-12))
                           .sort_values(ascending=False).round(3).to_dict(),
                           "top": imp.head(12)[["feature", "group", "gain"]].round(1).to_dict(orient="records")}

    best_star = max(STAR_ONLY, key=lambda v: val_auc[v])
    tests = {}
    for other in (*STAR_ONLY, *[k for k in configs if k.startswith("drop_")]):
        tests[f"lightgbm_all_vs_{other}"] = paired_auc_bootstrap(y, preds[other], preds["lightgbm_all"], users,
                                                                 n_boot=n_boot, seed=seed)
    tests["lightgbm_stars_vs_mf"] = paired_auc_bootstrap(y, preds["mf"], preds["lightgbm_stars"], users, n_boot=n_boot,
                                                         seed=seed)
    # Holm across the family of comparisons of the emotional model (baselines and ablations)
    family = [k for k in tests if k.startswith("lightgbm_all_vs_")]
    for k, p in zip(family, adjust_pvalues([tests[k]["p"] for k in family], "holm")):
        tests[k]["p_holm"] = float(p)
    # the claim must hold against every star-only model, not only the one validation preferred
    vs = {b: tests[f"lightgbm_all_vs_{b}"] for b in STAR_ONLY}
    weakest = min(vs, key=lambda b: vs[b]["diff"])
    target = {"required_gain": TARGET_GAIN, "best_star_only_by_validation": best_star,
              "gain_vs_best_by_validation": vs[best_star]["diff"], "p_vs_best_by_validation": vs[best_star]["p"],
              "strongest_star_only_on_test": weakest, "gain": vs[weakest]["diff"], "p": vs[weakest]["p"],
              "met": bool(all(r["diff"] >= TARGET_GAIN and r["p"] < 0.05 for r in vs.values()))}
    out = {"train_reviews": len(split.train), "test_pairs": len(test), "test_users": len(set(users)),
           "unsatisfied_test_pairs": int((y == 0).sum()), "validation_pairs": len(val.test),
           "cutoff": spec.get("cutoff"), "validation_cutoff": spec.get("validation_cutoff"),
           "results": results, "paired_tests": tests, "target": target, "skipped": skipped,
           "selected_on_validation": {"groups": selected, "validation_test": tuned["selected"]["validation_test"]},
           "importances": importances, "tuning_seconds": round(tune_s, 1),
           "tuning": {"means": tuned["means"]["trials"], "mf": tuned["mf"]["trials"],
                      **{f"lightgbm[{k}]": v["trials"] for k, v in tuned["lightgbm"].items()}}}
    if truth is not None:
        out["planted"] = planted_regrets(test, truth, preds, users, n_boot, seed, best_star)
    return out


def planted_regrets(test: pd.DataFrame, truth: pd.DataFrame, preds: dict, users: np.ndarray, n_boot: int, seed: int,
                    best_star: str) -> dict:
    """How well each model ranks the demo shop's planted regrets below the other test pairs."""
    rt = test[["review_id"]].merge(truth, on="review_id", how="left")
    planted = rt["planted_regret"].fillna(False).to_numpy(bool)
    defect = rt["defect"].fillna(False).to_numpy(bool)
    not_planted = (~planted).astype(np.float64)
    out = {"planted_regret_pairs": int(planted.sum()), "defective_item_pairs": int(defect.sum()), "auc": {},
           "auc_among_defective_purchases": {}}
    for v, p in preds.items():
        out["auc"][v] = auc(not_planted, p) if 0 < planted.sum() < len(p) else None
        ok = defect
        out["auc_among_defective_purchases"][v] = auc(not_planted[ok], p[ok]) if 0 < planted[ok].sum() < ok.sum() else None
    if 0 < planted.sum() < len(planted):
        out["paired_test_vs_best_star_only"] = paired_auc_bootstrap(not_planted, preds[best_star], preds["lightgbm_all"],
                                                                    users, n_boot=n_boot, seed=seed)
    if 0 < planted[defect].sum() < defect.sum():
        out["paired_test_among_defective_vs_best_star_only"] = paired_auc_bootstrap(
            not_planted[defect], preds[best_star][defect], preds["lightgbm_all"][defect], users[defect],
            n_boot=n_boot, seed=seed)
    return out


def _summary(cfg: SatisfactionConfig) -> dict:
    if cfg.model == "means":
        return {"model": "means", "shrink_user": cfg.shrink_user, "shrink_item": cfg.shrink_item}
    if cfg.model == "mf":
        return {"model": "mf", "factors": cfg.mf.factors, "l2": cfg.mf.l2}
    g = cfg.lightgbm
    return {"model": "lightgbm", "groups": cfg.groups, "base_margin": cfg.base_margin, "num_leaves": g.num_leaves,
            "min_child_samples": g.min_child_samples, "feature_fraction": g.feature_fraction, "rounds": g.n_estimators}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reviews", type=Path, default=AMAZON)
    ap.add_argument("--demo", action="store_true", help="the generated demo shop (with its planted regrets)")
    ap.add_argument("--demo-users", type=int, default=4000)
    ap.add_argument("--scorer", choices=["transformer", "lexicon"], default="transformer")
    ap.add_argument("--test-share", type=float, default=0.3, help="share of reviews after the global cutoff")
    ap.add_argument("--boot", type=int, default=2000, help="bootstrap resamples of the paired tests")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    t_start = time.perf_counter()
    truth = None
    if args.demo:
        from emorec.jobs.demo_shop import generate_demo_shop

        shop = generate_demo_shop(n_users=args.demo_users, seed=args.seed)
        reviews, truth = shop.reviews, shop.review_truth
        dataset = f"demo_shop_{args.demo_users}"
    else:
        if not args.reviews.exists():
            print(f"SKIP: {args.reviews} not found (../shared/data is absent)")
            return 0
        reviews = load_file(args.reviews)
        dataset = dataset_name(args.reviews)
    t = time.perf_counter()
    scores, cached, _ = review_scores(reviews, args.scorer, dataset)
    score_s = time.perf_counter() - t
    reviews = reviews[["review_id", "user_id", "item_id", "rating", "timestamp"]]
    has_emotions = bool(scores.filter(like="ekman_").notna().any().any())
    print(f"{dataset}: {len(reviews):,} reviews, {reviews.user_id.nunique():,} users, {reviews.item_id.nunique():,} items; "
          f"{args.scorer} scores {score_s:.1f}s{' (cached)' if cached else ''}; emotions: {'yes' if has_emotions else 'no'}")
    report = {"data": dataset, "scorer": args.scorer, "seed": args.seed, "bootstrap": args.boot, "splits": {}}
    for name, spec in make_splits(reviews, args.test_share).items():
        res = run_split(name, spec, scores, has_emotions, args.boot, args.seed, truth)
        report["splits"][name] = res
        _print_split(name, res)
    report["seconds_total"] = round(time.perf_counter() - t_start, 1)
    out = args.out or ROOT / "benchmarks/results" / f"satisfaction_{dataset}_{args.scorer}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {out} ({report['seconds_total']}s)")
    return 0


def _print_split(name: str, res: dict) -> None:
    where = f", cutoff {res['cutoff']}" if res["cutoff"] else ""
    print(f"\n{name}{where}: {res['test_pairs']:,} test pairs ({res['unsatisfied_test_pairs']:,} not satisfied) by "
          f"{res['test_users']:,} users; {res['train_reviews']:,} training reviews; tuning {res['tuning_seconds']}s")
    print(f"  {'model':22s} {'AUC':>7s} {'log-loss':>9s} {'val AUC':>8s}  settings")
    for v, r in res["results"].items():
        print(f"  {v:22s} {r['auc']:7.4f} {r['log_loss']:9.4f} {r['validation_auc']:8.4f}  {r['config']}")
    for v, why in res["skipped"].items():
        print(f"  {v:22s} skipped: {why}")
    print("  paired bootstrap over users (AUC difference, 95% CI, p, Holm-adjusted p over the lightgbm_all family):")
    for k, r in res["paired_tests"].items():
        holm = f"  (Holm {r['p_holm']:.3g})" if "p_holm" in r else ""
        print(f"    {k:34s} {r['diff']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]  p = {r['p']:.3g}{holm}")
    sel = res["selected_on_validation"]
    print(f"  chosen on validation (text groups kept only if they beat stars alone, p < 0.1): {sel['groups']} "
          f"(validation AUC {sel['validation_test']['diff']:+.4f}, p = {sel['validation_test']['p']:.3g})")
    tg = res["target"]
    print(f"  target (AUC >= every star-only model + {tg['required_gain']}, p < 0.05): smallest gain "
          f"{tg['gain']:+.4f} (vs {tg['strongest_star_only_on_test']}), p = {tg['p']:.3g}; vs the star-only model validation "
          f"prefers ({tg['best_star_only_by_validation']}): {tg['gain_vs_best_by_validation']:+.4f}, "
          f"p = {tg['p_vs_best_by_validation']:.3g} -> {'MET' if tg['met'] else 'not met'}")
    if res["importances"]:
        print(f"  lightgbm_all gain share by group: {res['importances']['gain_share_by_group']}")
    if "planted" in res:
        pl = res["planted"]
        print(f"  planted regrets: {pl['planted_regret_pairs']} of the test pairs ({pl['defective_item_pairs']} purchases of "
              "defective items); AUC of ranking them below the rest (all pairs / among defective purchases):")
        for v in res["results"]:
            a, b = pl["auc"][v], pl["auc_among_defective_purchases"][v]
            print(f"    {v:22s} {a if a is None else f'{a:.4f}'} / {b if b is None else f'{b:.4f}'}")
        for key in ("paired_test_vs_best_star_only", "paired_test_among_defective_vs_best_star_only"):
            if key in pl:
                r = pl[key]
                print(f"    {key}: {r['diff']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}], p = {r['p']:.3g}")


if __name__ == "__main__":
    raise SystemExit(main())
