"""Offline A/B evaluation: train every variant on the same split, score the same users, compare.

:func:`run_evaluation` is a pure function of the inputs (reviews, optional review scores and
item table) and an :class:`~jobs.evaluation.config.ExperimentConfig`; :func:`write_outputs`
writes its result into one folder. Steps:

1. Split the reviews (``recommender.splits``): leave-last-out per user (default), a global
   time cutoff, or a random per-user holdout, all seeded. Users with too few reviews are
   excluded from per-user splits and counted.
2. Build user and item profiles from the *training* reviews only (they feed the hybrid, the
   segments and emotional fit; test reviews never leak into them).
3. For each variant: optionally tune its grid on a validation split carved from training,
   train on the training split, and recommend ``max(ks)`` items to every test user over the
   full catalogue minus the user's training items (no sampled negatives). A variant that fails
   is recorded with its error and the others still run.
4. Per-user accuracy metrics (``recommender.metrics.evaluate_lists``), outcome-aware metrics
   (``sat_hr``, ``sat_ndcg``, ``regret``: how each held-out purchase turned out, from its stars
   or, without stars, its text valence; :mod:`recommender.outcomes`) and beyond-accuracy
   metrics (:mod:`jobs.evaluation.beyond`); paired comparisons of every variant with the
   baseline (:mod:`jobs.evaluation.stats`), Holm-corrected across variants; breakdowns by
   segment, activity and item popularity (:mod:`jobs.evaluation.breakdown`); a verdict.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from emorec.common.atomic import atomic_write, atomic_write_text

from ..runs import fingerprint, package_versions
from .beyond import BeyondContext, beyond_metrics, catalog_coverage
from .breakdown import activity_labels, compare_groups, popularity_labels, segment_labels
from .config import OUTCOME_METRICS, ExperimentConfig, VariantConfig, check_variants, service_config
from .stats import compare, finalize, mean_ci
from .verdict import verdict_lines

log = logging.getLogger(__name__)

__all__ = ["EvaluationInputs", "EvaluationResult", "git_commit", "inputs_from_workspace", "run_evaluation", "write_outputs"]

REPORT_FORMAT = 1
REVIEW_COLUMNS = ["review_id", "user_id", "item_id", "rating", "timestamp"]
#: Keys of report.json that differ between identical runs (everything else must not).
VOLATILE_KEYS = ("run_id", "created_at", "timings")


@dataclass
class EvaluationInputs:
    """The data an evaluation runs on and where it came from."""

    reviews: pd.DataFrame
    scores: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    fingerprint: str = ""
    source: str = ""


@dataclass
class EvaluationResult:
    """What :func:`run_evaluation` returns; :func:`write_outputs` writes it."""

    report: dict
    per_user: pd.DataFrame
    verdict: str
    recommendations: dict[str, pd.DataFrame] = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# inputs and provenance
# --------------------------------------------------------------------------------------


def inputs_from_workspace(ws) -> EvaluationInputs:
    """Reviews, review scores (when ``emorec score`` ran) and items of a workspace."""
    import pyarrow.parquet as pq

    have = set(pq.read_schema(ws.table_path("reviews")).names) if ws.has_table("reviews") else set(REVIEW_COLUMNS)
    reviews = ws.read_table("reviews", columns=[c for c in REVIEW_COLUMNS if c in have])
    paths = [ws.table_path("reviews")]
    scores = items = None
    if ws.has_table("review_scores"):
        scores = ws.read_table("review_scores")
        paths.append(ws.table_path("review_scores"))
    if ws.has_table("items"):
        items = ws.read_table("items")
        paths.append(ws.table_path("items"))
    return EvaluationInputs(reviews, scores, items, fingerprint(paths), f"workspace {ws.root}")


def git_commit() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the checkout holding this package, ``(None, None)`` outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None, None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10)
        return head.stdout.strip(), (bool(status.stdout.strip()) if status.returncode == 0 else None)
    except (OSError, subprocess.SubprocessError):
        return None, None


#: Packages whose source files make up :func:`code_fingerprint`.
CODE_PACKAGES = ("sentiment", "profiles", "recommender", "jobs")


def code_fingerprint() -> str:
    """SHA-256 (16 hex digits) over the emorec source files (``*.py``, ``*.toml``) by relative path.

    Unlike the git commit it also changes with uncommitted and untracked edits, so two reports
    with the same data and code fingerprints ran the same code on the same data.
    """
    import hashlib

    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for pkg in CODE_PACKAGES:
        files = sorted(p for ext in ("*.py", "*.toml") for p in (root / pkg).rglob(ext) if "__pycache__" not in p.parts)
        for f in files:
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------
# splitting
# --------------------------------------------------------------------------------------


def make_split(reviews: pd.DataFrame, config: ExperimentConfig):
    """The train/test split the config asks for (``recommender.splits``)."""
    from emorec.recommender import splits

    s = config.split
    if s.method == "leave_last_out":
        return splits.leave_last_out(reviews, min_history=s.min_history)
    if s.method == "global_cutoff":
        cutoff = pd.Timestamp(s.cutoff)
        cutoff = cutoff.tz_localize("UTC") if cutoff.tzinfo is None else cutoff.tz_convert("UTC")
        return splits.global_cutoff(reviews, cutoff)
    return splits.random_holdout(reviews, fraction=s.fraction, seed=config.seed, min_history=s.min_history)


def validation_split(train: pd.DataFrame, config: ExperimentConfig):
    """A validation split carved from the training split (leave-last-out, or a random holdout
    when the test split is one; a global cutoff validates on each user's last training review)."""
    from emorec.recommender import splits

    s = config.split
    if s.method == "random_holdout":
        return splits.validation_split(train, method="random_holdout", fraction=s.fraction, seed=config.seed + 1,
                                       min_history=s.min_history)
    return splits.validation_split(train, method="leave_last_out", min_history=s.min_history)


def _users(frame: pd.DataFrame) -> list[str]:
    return sorted(frame["user_id"].astype(str).unique().tolist())


# --------------------------------------------------------------------------------------
# training one variant
# --------------------------------------------------------------------------------------


def train_and_recommend(variant: VariantConfig, params: dict | None, train: pd.DataFrame, users: list[str], n: int,
                        scores: pd.DataFrame | None, items: pd.DataFrame | None) -> pd.DataFrame:
    """Fit ``variant`` on ``train`` and return top-``n`` lists for ``users`` (training items filtered)."""
    from emorec.recommender.service import RecommendationService

    service = RecommendationService(service_config(variant, params)).fit(train, scores=scores, items=items)
    recs = service.recommend(users, n=n, filter_already_liked_items=True)
    return recs


def _grid(variant: VariantConfig, seed: int) -> list[dict]:
    grid = variant.tune.grid
    keys = sorted(grid)
    combos = [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    if len(combos) > variant.tune.trials:
        pick = np.random.default_rng(seed).choice(len(combos), size=variant.tune.trials, replace=False)
        combos = [combos[i] for i in sorted(pick)]
    return combos


def tune_variant(variant: VariantConfig, train: pd.DataFrame, config: ExperimentConfig,
                 scores: pd.DataFrame | None, items: pd.DataFrame | None) -> dict:
    """Search the variant's grid on a validation split of ``train``; the best params by the primary metric."""
    from emorec.recommender.metrics import evaluate_lists

    val = validation_split(train, config)
    users = _users(val.test)
    metric = config.primary_metric
    k = int(metric.split("@")[1])
    val_test = with_outcomes(val.test, scores, config)
    outcome = "outcome" if metric.split("@")[0] in OUTCOME_METRICS else None
    trials = []
    for params in _grid(variant, config.seed):
        try:
            recs = train_and_recommend(variant, params, val.train, users, k, _subset_scores(scores, val.train), items)
            value = float(evaluate_lists(recs, val_test, [k], outcome=outcome)[metric].reindex(users).fillna(0.0).mean())
            trials.append({"params": params, metric: value, "error": None})
        except Exception as exc:  # a failing trial is recorded, not fatal
            log.warning("variant %s: tuning trial %s failed: %s", variant.name, params, exc)
            trials.append({"params": params, metric: None, "error": f"{type(exc).__name__}: {exc}"})
    ok = [t for t in trials if t[metric] is not None]
    if not ok:
        raise RuntimeError(f"every tuning trial failed (first error: {trials[0]['error']})")
    best = max(ok, key=lambda t: t[metric])  # first best on ties (grid order)
    return {"metric": metric, "validation_users": len(users), "trials": trials, "best_params": best["params"]}


def with_outcomes(test: pd.DataFrame, scores: pd.DataFrame | None, config: ExperimentConfig) -> pd.DataFrame:
    """``test`` with an ``outcome`` column (:func:`recommender.outcomes.review_outcomes`: stars, or
    the text valence of ``scores`` where a review has no stars)."""
    from emorec.recommender.outcomes import review_outcomes

    usable = scores if scores is not None and "review_id" in test.columns and "valence" in scores.columns else None
    return test.assign(outcome=review_outcomes(test, usable, config.outcome).to_numpy())


def outcome_counts(test: pd.DataFrame) -> dict[str, int]:
    """Held-out reviews per outcome (``satisfied``, ``neutral``, ``regretted``, ``unknown``)."""
    from emorec.recommender.outcomes import OUTCOMES

    codes = test["outcome"].to_numpy()
    return {name: int((codes == code).sum()) for code, name in OUTCOMES.items()}


def _subset_scores(scores: pd.DataFrame | None, reviews: pd.DataFrame) -> pd.DataFrame | None:
    if scores is None:
        return None
    if "review_id" not in reviews.columns:
        return scores
    return scores[scores["review_id"].isin(reviews["review_id"])].reset_index(drop=True)


# --------------------------------------------------------------------------------------
# the evaluation
# --------------------------------------------------------------------------------------


def _profiles(train: pd.DataFrame, scores: pd.DataFrame | None, items: pd.DataFrame | None):
    if scores is None or "review_id" not in train.columns:
        return None, None
    from emorec import profiles

    scored = train.merge(scores, on="review_id", how="inner", validate="one_to_one")
    if scored.empty:
        return None, None
    return profiles.build_user_profiles(scored, items=items), profiles.build_item_profiles(scored, items=items)


def run_evaluation(inputs: EvaluationInputs, config: ExperimentConfig, show_progress: bool | None = None) -> EvaluationResult:
    """Split, train every variant, evaluate, compare, break down; see the module docstring.

    Raises
    ------
    ValueError
        The config names an unknown model or parameter (before anything is trained), the split
        leaves no test users, or every variant failed to train.
    """
    from emorec.recommender.metrics import evaluate_lists, regret_share

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    code = code_fingerprint()  # before any model module is imported
    check_variants(config)
    reviews = inputs.reviews
    if reviews.empty:
        raise ValueError("no reviews to evaluate on")
    split = make_split(reviews, config)
    test_all = split.test
    users = _users(test_all)
    if not users:
        raise ValueError(f"the {config.split.method} split leaves no test users")
    if config.split.max_users and len(users) > config.split.max_users:
        pick = np.random.default_rng(config.seed).choice(len(users), size=config.split.max_users, replace=False)
        users = [users[i] for i in sorted(pick)]
    test = test_all[test_all["user_id"].astype(str).isin(users)].reset_index(drop=True)
    test = with_outcomes(test, inputs.scores, config)
    outcomes = outcome_counts(test)
    # outcome metrics need a known outcome somewhere; without stars and scores they would all be 0
    outcome = "outcome" if outcomes["unknown"] < len(test) else None
    if outcome is None and config.primary_metric.split("@")[0] in OUTCOME_METRICS:
        raise ValueError(f"primary metric {config.primary_metric} needs outcomes, but no test review has stars or a "
                         "text score (score the reviews first, or choose another primary metric)")
    train = split.train
    train_scores = _subset_scores(inputs.scores, train)
    user_profiles, item_profiles = _profiles(train, train_scores, inputs.items)
    catalog = None if inputs.items is None or "item_id" not in inputs.items.columns else inputs.items["item_id"].astype(str)
    ctx = BeyondContext(train, config.breakdown.head_share, user_profiles, item_profiles, config.emotional_fit, catalog)
    timings["split_and_profiles"] = time.perf_counter() - t0
    train_users = set(train["user_id"].astype(str))
    reviewed = set(ctx.popularity.index[ctx.popularity.to_numpy() > 0])
    split_info = {
        "method": config.split.method, "train_reviews": len(train), "test_reviews": len(test),
        "train_users": len(train_users), "train_items": len(reviewed), "candidate_items": len(ctx.catalog),
        "test_users": len(_users(test_all)), "evaluated_users": len(users),
        "cold_test_users": sum(u not in train_users for u in users),
        "test_items_unseen_in_training": int((~test["item_id"].astype(str).isin(reviewed)).sum()),
        "excluded": {k: int(v) for k, v in dict(split.excluded).items()},
        "test_outcomes": outcomes,
    }
    if outcome is None:
        log.warning("no test review has stars or a text score: sat_hr, sat_ndcg and regret are not measured")
    for reason, n in split_info["excluded"].items():
        if n:
            log.info("split excluded %d %s", n, reason)

    variants_out, per_user, recs_by_variant = [], {}, {}
    bar = tqdm(config.variants, desc="evaluate", unit="variant", disable=None if show_progress is None else not show_progress)
    for variant in bar:
        bar.set_postfix_str(variant.name)
        entry: dict[str, Any] = {"name": variant.name, "model": variant.model, "params": dict(variant.params),
                                 "description": variant.description, "status": "ok", "error": None, "tuning": None}
        t1 = time.perf_counter()
        try:
            params = None
            if variant.tune and variant.tune.grid:
                entry["tuning"] = tune_variant(variant, train, config, train_scores, inputs.items)
                params = entry["tuning"]["best_params"]
                entry["params"] = {**variant.params, **params}
            recs = train_and_recommend(variant, params, train, users, config.max_k, train_scores, inputs.items)
        except Exception as exc:
            log.error("variant %s (%s) failed: %s: %s", variant.name, variant.model, type(exc).__name__, exc,
                      exc_info=log.isEnabledFor(logging.DEBUG))
            entry.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            variants_out.append(entry)
            timings[f"variant.{variant.name}"] = time.perf_counter() - t1
            continue
        acc = evaluate_lists(recs, test, config.ks, outcome=outcome)
        acc.index = acc.index.astype(str)
        acc = acc.reindex(pd.Index(users, dtype=object, name="user_id"))
        beyond = beyond_metrics(recs, users, ctx, config.ks)
        per_user[variant.name] = pd.concat([acc, beyond], axis=1)
        recs_by_variant[variant.name] = recs
        entry["list_lengths"] = {"min": int(recs.groupby("user_id").size().reindex(users).fillna(0).min()),
                                 "users_without_list": len(set(users) - set(recs["user_id"].astype(str)))}
        variants_out.append(entry)
        timings[f"variant.{variant.name}"] = time.perf_counter() - t1
    ok = [v["name"] for v in variants_out if v["status"] == "ok"]
    if not ok:
        errors = "; ".join(f"{v['name']}: {v['error']}" for v in variants_out)
        raise ValueError(f"every variant failed to train ({errors})")

    t2 = time.perf_counter()
    metric_names = list(next(iter(per_user.values())).columns)
    st = config.stats
    metrics = {name: {m: mean_ci(per_user[name][m].to_numpy(np.float64), st.bootstrap, st.alpha, config.seed)
                      for m in metric_names} for name in ok}
    coverage = {name: catalog_coverage(recs_by_variant[name], ctx, config.ks) for name in ok}
    regret_shares = ({name: {f"regret_share@{k}": regret_share(per_user[name], k) for k in config.ks} for name in ok}
                     if outcome is not None else {})
    baseline = config.baseline
    challengers = [n for n in ok if n != baseline]
    comparisons: list[dict] = []
    if baseline in ok:
        for m in metric_names:
            family = [compare(per_user[baseline][m].to_numpy(np.float64), per_user[v][m].to_numpy(np.float64), m, v,
                              baseline, n_boot=st.bootstrap, n_perm=st.permutations, alpha=st.alpha, power=st.power,
                              test=st.test, n_comparisons=len(challengers), seed=config.seed) for v in challengers]
            comparisons += [c.to_dict() for c in finalize(family, st.correction, st.alpha)]
    timings["statistics"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    breakdowns = []
    labels = pd.DataFrame(index=pd.Index(users, dtype=object, name="user_id"))
    labels["activity"] = activity_labels(train, users, config.breakdown.activity_bins).astype(str)
    as_of = pd.to_datetime(train["timestamp"], utc=True).max() if "timestamp" in train.columns else None
    labels["segment"] = segment_labels(user_profiles, users, config.breakdown.segments,
                                       None if as_of is None or pd.isna(as_of) else as_of)
    primary = config.primary_metric
    if baseline in ok and challengers:
        for dim in ("segment", "activity"):
            groups = {}
            order = (labels[dim].astype("category").cat.categories if dim == "segment"
                     else activity_labels(train, users, config.breakdown.activity_bins).cat.categories)
            for g in order:
                members = labels.index[labels[dim] == g]
                if len(members):
                    groups[g] = {n: per_user[n].loc[members, primary] for n in ok}
            breakdowns += compare_groups(dim, groups, baseline, ok, primary, st, config.breakdown, config.seed)
        pop = popularity_labels(test, ctx.head, ctx.catalog)
        groups = {}
        k = int(primary.split("@")[1])
        if primary.split("@")[0] in ("hr", "recall", "precision", "ndcg", "map", "mrr", *OUTCOME_METRICS):
            for g in ("head", "long tail"):  # "unseen" test items can never be hit: counted in split info
                part = test[pop.to_numpy() == g]
                if part.empty:
                    continue
                members = _users(part)
                groups[g] = {n: evaluate_lists(recs_by_variant[n], part, [k], outcome=outcome)[primary].rename(
                    index=str).reindex(members) for n in ok}
            breakdowns += compare_groups("item_popularity", groups, baseline, ok, primary, st, config.breakdown, config.seed)
    timings["breakdowns"] = time.perf_counter() - t3

    table = []
    for name in ok:
        df = per_user[name].copy()
        df.insert(0, "variant", name)
        df = df.reset_index().rename(columns={"index": "user_id"})
        df["segment"] = labels["segment"].reindex(df["user_id"]).to_numpy()
        df["activity"] = labels["activity"].reindex(df["user_id"]).to_numpy()
        table.append(df)
    per_user_table = pd.concat(table, ignore_index=True)
    per_user_table["user_id"] = per_user_table["user_id"].astype("string")

    commit, dirty = git_commit()
    report = {
        "format": REPORT_FORMAT,
        "name": config.name,
        "run_id": None,
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "reproducibility": {
            "data_fingerprint": inputs.fingerprint, "source": inputs.source, "seed": config.seed,
            "config": config.model_dump(mode="json", by_alias=True), "versions": package_versions(),
            "git_commit": commit, "git_dirty": dirty, "code_fingerprint": code,
        },
        "split": split_info,
        "baseline": baseline,
        "primary_metric": primary,
        "variants": variants_out,
        "metrics": metrics,
        "coverage": coverage,
        "outcomes": {"definition": config.outcome.model_dump(), "test_reviews": outcomes,
                     "measured": outcome is not None, "regret_share": regret_shares},
        "comparisons": comparisons,
        "breakdowns": breakdowns,
        "emotional_fit": {"aspects": ctx.aspects, "users_with_cared_aspects": ctx.users_with_care(users),
                          "settings": config.emotional_fit.model_dump()},
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    report["timings"]["total"] = round(time.perf_counter() - t0, 3)
    lines = verdict_lines(report)
    report["verdict"] = lines
    report = _clean(report)
    return EvaluationResult(report, per_user_table, "\n".join(lines) + "\n", recs_by_variant)


def _clean(obj):
    """JSON-safe copy: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj


# --------------------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------------------

OUTPUT_FILES = {"report": "report.json", "per_user": "per_user.parquet", "html": "report.html", "verdict": "verdict.txt"}


def write_outputs(result: EvaluationResult, out_dir: str | Path, run_id: str | None = None) -> dict[str, Path]:
    """Write ``report.json``, ``per_user.parquet``, ``report.html`` and ``verdict.txt`` into ``out_dir``."""

    from .report import build_html

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if run_id is not None:
        result.report["run_id"] = run_id
    paths = {k: out_dir / name for k, name in OUTPUT_FILES.items()}
    atomic_write_text(paths["report"], json.dumps(result.report, indent=2, sort_keys=False))
    atomic_write(paths["per_user"], lambda p: result.per_user.to_parquet(p, index=False))
    atomic_write_text(paths["html"], build_html(result.report))
    atomic_write_text(paths["verdict"], result.verdict)
    return paths
