"""The hybrid trained on Spark: candidate generation per partition, LightGBM on the driver.

:meth:`recommender.HybridRanker.fit_rounds` runs the rounds as the embedded engine does (the
temporal splits, the generators and feature state of each round fitted on the driver, the
query sample, the ranker, the serving state); only the expensive part - candidates and
features of every training query against the whole catalog - is spread over the cluster:

1. the round's fitted stage (generators, feature state, interaction matrices, the sampled
   queries) is written to the workspace (``partial/hybrid_train/<token>/round-<r>``, the
   model's own safetensors/JSON layout: a folder every executor reads, as the recommend stage
   reads the artifact);
2. ``mapInPandas`` over the query batches (``batch_size`` queries each, the embedded batches,
   whole batches per partition): each Python worker loads the stage once and makes the
   batches' training rows with :func:`recommender.hybrid.training_batch`, returned as Arrow;
3. the driver gathers the rows (a sample bounded by ``max_train_queries``), puts them in query
   order and LightGBM learns from them.

The rows of a batch depend only on the batch, so the ranker sees exactly the rows the embedded
engine makes and the artifact - and every list served from it - is the embedded one
(``tests/test_spark.py``). Scoring all users is the recommend stage's ``mapInPandas`` over the
saved artifact (:mod:`jobs.spark.als`).
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Iterator

import numpy as np
import pandas as pd

from emorec.recommender import HybridRanker, TrainingData

from ..store import Workspace
from .session import default_parallelism

log = logging.getLogger(__name__)

PARTS = "hybrid_train"
_STAGES: dict[str, dict] = {}


def _stage(path: str) -> dict:
    """The stage at ``path``, loaded once per Python worker."""
    if path not in _STAGES:
        _STAGES.clear()  # one round at a time per worker
        _STAGES[path] = HybridRanker.load_stage(path)
    return _STAGES[path]


def batch_rows(path: str, n_features: int):
    """``mapInPandas`` function: the training rows of the query batches ``b`` of the stage at
    ``path`` (columns ``q`` query index, ``row`` order within the batch, ``y`` label, ``f0``...)."""

    def rows(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from emorec.recommender.hybrid import training_batch

        s = _stage(path)
        bs = s["batch_size"]
        for frame in batches:
            for b in frame["b"].to_numpy():
                sl = slice(int(b) * bs, (int(b) + 1) * bs)
                F, y, pos = training_batch(s["gens"], s["state"], s["features"], s["uid"][sl], s["label"][sl],
                                           s["pick"][sl], s["other"], s["X"], s["E"])
                out = pd.DataFrame(F, columns=[f"f{j}" for j in range(n_features)])
                out.insert(0, "y", y)
                out.insert(0, "row", np.arange(len(y), dtype=np.int64))
                out.insert(0, "q", pos.astype(np.int64) + int(b) * bs)
                yield out

    return rows


def _schema(n_features: int):
    from pyspark.sql import types as T

    return T.StructType([T.StructField("q", T.LongType(), False), T.StructField("row", T.LongType(), False),
                         T.StructField("y", T.IntegerType(), False),
                         *[T.StructField(f"f{j}", T.FloatType(), True) for j in range(n_features)]])


def fit_hybrid(spark, data: TrainingData, params, ws: Workspace) -> HybridRanker:
    """A :class:`recommender.HybridRanker` whose training rows are made per partition on the
    cluster (see the module docstring); the same model the embedded engine trains."""
    token = uuid.uuid4().hex[:12]
    root = ws.parts_dir(PARTS, token)
    model = HybridRanker(params)

    def round_rows(r, gens, state, uid, label, pick, other, X, E):
        folder = model.save_stage(root / f"round-{r}", gens, state, X, E, uid, label, pick, other)
        n_features = len(model.feature_specs(gens, state))
        n_batches = -(-len(uid) // model.config.batch_size)
        if not n_batches:
            return []
        parts = max(1, min(n_batches, 4 * default_parallelism(spark)))
        batches = spark.createDataFrame(pd.DataFrame({"b": np.arange(n_batches, dtype=np.int64)})).repartition(parts)
        rows = batches.mapInPandas(batch_rows(str(folder.resolve()), n_features), _schema(n_features)).toPandas()
        log.info("hybrid on Spark: round %d, %d queries in %d batches over %d partitions -> %d rows",
                 r + 1, len(uid), n_batches, parts, len(rows))
        if not len(rows):
            return []
        order = np.lexsort((rows["row"].to_numpy(), rows["q"].to_numpy()))  # the embedded order: by query, then item
        F = rows[[f"f{j}" for j in range(n_features)]].to_numpy(np.float32)[order]
        return [(F, rows["y"].to_numpy(np.int32)[order], rows["q"].to_numpy(np.int64)[order])]

    try:
        model.fit_rounds(TrainingData.coerce(data), round_rows)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        ws.clear_parts(PARTS)
    return model
