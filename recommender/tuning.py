"""Equal-budget hyper-parameter search on a validation split carved from the training part.

Every model gets the same number of trials (:func:`sample_grid` draws them deterministically
from its search space), each trial is fitted on the validation split's training part and
scored by mean NDCG@k of its held-out items - the test items are never looked at.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from emorec.common.errors import ConfigError

from .metrics import evaluate_lists
from .service import RecommendationService, ServiceConfig
from .splits import Split

log = logging.getLogger(__name__)

#: Default search spaces (model -> parameter -> values).
SEARCH_SPACES: dict[str, dict[str, list]] = {
    "popular": {"half_life_days": [None, 15, 30, 60, 90, 180, 365, 730, 1460, 2920]},
    "ease": {"l2": [5.0, 10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0]},
    "itemknn": {"k": [10, 20, 50, 100, 200, 400], "shrink": [0.0, 5.0, 10.0, 25.0, 50.0, 100.0]},
    "als": {"factors": [16, 32, 64, 128], "regularization": [0.01, 0.1, 1.0, 10.0], "alpha": [1.0, 5.0, 20.0, 50.0],
            "iterations": [15], "num_threads": [1]},
    "bpr": {"factors": [32, 64, 128], "learning_rate": [0.01, 0.05, 0.1], "regularization": [0.001, 0.01, 0.1],
            "iterations": [100, 300]},
    "hybrid": {"n_estimators": [100, 200, 400], "num_leaves": [7, 15], "min_child_samples": [100, 300]},
}


def sample_grid(space: Mapping[str, Sequence[Any]], trials: int, seed: int = 0) -> list[dict]:
    """``trials`` parameter sets from the grid ``space`` (all of it when it is that small).

    One-dimensional spaces keep their order, spread evenly; larger grids are sampled without
    replacement with ``seed``.
    """
    if trials < 1:
        raise ConfigError(f"trials must be >= 1, got {trials}")
    keys = sorted(space)
    combos = [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]
    if len(combos) <= trials:
        return combos
    if len(keys) == 1:
        pick = np.unique(np.linspace(0, len(combos) - 1, trials).round().astype(int))
    else:
        pick = np.sort(np.random.default_rng(seed).choice(len(combos), size=trials, replace=False))
    return [combos[i] for i in pick]


def evaluate_service(config: ServiceConfig, split: Split, scores: pd.DataFrame | None = None, k: int = 10,
                     items: pd.DataFrame | None = None) -> pd.DataFrame:
    """Fit ``config`` on ``split.train`` and return per-user metrics of the top-``k`` on ``split.test``."""
    service = RecommendationService(config).fit(split.train, scores=scores, items=items)
    users = sorted(split.test["user_id"].astype(str).unique())
    recs = service.recommend(users, n=k)
    return evaluate_lists(recs, split.test, ks=[k])


def tune(model: str, validation: Split, trials: int, scores: pd.DataFrame | None = None, space: Mapping | None = None,
         fixed: Mapping[str, Any] | None = None, k: int = 10, seed: int = 0) -> dict:
    """Search ``model``'s ``space`` (default :data:`SEARCH_SPACES`) with ``trials`` trials.

    Returns
    -------
    dict
        ``best_params`` (``fixed`` merged in), ``best`` (validation NDCG@k), ``trials`` (each
        ``params``, ``ndcg``, ``hr``, ``seconds``).
    """
    space = SEARCH_SPACES[model] if space is None else space
    out: list[dict[str, Any]] = []
    for params in sample_grid(space, trials, seed):
        params = {**dict(fixed or {}), **params}
        t = time.perf_counter()
        m = evaluate_service(ServiceConfig(model=model, params=params), validation, scores, k)
        out.append({"params": params, "ndcg": float(m[f"ndcg@{k}"].mean()), "hr": float(m[f"hr@{k}"].mean()),
                    "seconds": round(time.perf_counter() - t, 2)})
        log.info("tune %s %s: ndcg@%d %.4f", model, params, k, out[-1]["ndcg"])
    best = max(out, key=lambda r: float(r["ndcg"]))
    return {"best_params": best["params"], "best": best["ndcg"], "trials": out}
