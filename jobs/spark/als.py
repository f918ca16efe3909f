"""The train and recommend stages on Spark: MLlib ALS, served with the standard artifact.

Training
    The service's :class:`recommender.TrainingData` holds the vocabularies and the interaction
    matrix (the same :func:`recommender.interaction_weights`, the largest weight per user-item
    pair), built on the driver; ``pyspark.ml.recommendation.ALS`` with ``implicitPrefs=True``
    learns the factors from exactly that matrix across the cluster.
    Everything is saved as the usual :class:`recommender.RecommendationService` artifact
    (``models/recommender/<version>``), so ``emorec recommend --user`` and every other
    consumer serve a Spark-trained model unchanged. (The driver holds the artifact: about
    16 bytes per interaction plus 4 x factors bytes per user and item.) The hybrid makes the
    candidates and features of its training queries per partition and fits LightGBM on the
    driver (:mod:`jobs.spark.hybrid`); other models are fitted by the embedded code on the
    driver.
Recommending
    ``mapInPandas`` over the users: each Python worker loads the artifact once and calls
    :meth:`recommender.RecommendationService.recommend` on its batches, so seen-item
    filtering, the popularity fallback, the ``source`` column - and the re-ranking of a
    ``hybrid`` (LightGBM) model, whatever the artifact holds - are the embedded code's,
    applied per partition.

MLlib's ALS is not ``implicit``'s: it scales the regularisation by each user's and item's
number of interactions (ALS-WR) and initialises differently, so the factors differ; the
recommendation quality is compared in ``tests/test_spark.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from emorec.common.errors import NothingToLearnError
from emorec.recommender import (
    ALS,
    RECOMMENDATION_COLUMNS,
    HybridRanker,
    MostPopular,
    RecommendationService,
    Recommender,
    ServiceConfig,
    TrainingData,
    model_class,
)
from emorec.recommender.explain import EXPLANATION_COLUMNS

from ..pipeline import model_notes, training_inputs
from ..store import Workspace
from . import tables
from .session import default_parallelism, partitions_for, sql_conf

#: Users per recommend partition (a Spark task).
RECOMMEND_PARTITION_USERS = 50_000

log = logging.getLogger(__name__)

RECOMMENDER_MODEL = "recommender"
_SERVICES: dict[tuple, RecommendationService] = {}


def spark_als(params, blocks: int = 10):
    """An MLlib ALS estimator with the hyper-parameters of an :class:`recommender.ALSConfig`
    (implicit feedback: ``implicitPrefs=True``, confidence ``1 + alpha * weight``), the
    factor matrices split in ``blocks`` blocks."""
    from pyspark.ml.recommendation import ALS as SparkALS

    return SparkALS(rank=params.factors, maxIter=params.iterations, regParam=params.regularization, alpha=params.alpha,
                    seed=params.seed, implicitPrefs=True, userCol="u", itemCol="i", ratingCol="w", nonnegative=False,
                    coldStartStrategy="drop", numUserBlocks=blocks, numItemBlocks=blocks)


def _dense(factors: pd.DataFrame, n: int, rank: int) -> np.ndarray:
    out = np.zeros((n, rank), dtype=np.float32)
    if len(factors):
        out[factors["id"].to_numpy(dtype=np.int64)] = np.stack(factors["features"].to_numpy()).astype(np.float32)
    return out


def fit_als(spark, data: TrainingData, params, ws: Workspace | None = None) -> ALS:
    """An :class:`recommender.ALS` whose factors MLlib ALS learns on the cluster from exactly
    ``data.user_items`` (the service's interaction matrix)."""
    m = data.user_items.tocoo()
    triples = pd.DataFrame({"u": m.row.astype(np.int32), "i": m.col.astype(np.int32), "w": m.data.astype(np.float32)})
    interactions = spark.createDataFrame(triples)
    n_users, n_items = m.shape
    # one block per core (MLlib's default of 10 only adds shuffle overhead on a few cores)
    blocks = max(2, min(10, default_parallelism(spark)))
    fitted = spark_als(params, blocks).fit(interactions.repartition(blocks))
    model = ALS(params)
    model.user_factors_ = _dense(fitted.userFactors.toPandas(), n_users, params.factors)
    model.item_factors_ = _dense(fitted.itemFactors.toPandas(), n_items, params.factors)
    return model


def _fit_hybrid(spark, data: TrainingData, params, ws: Workspace) -> HybridRanker:
    from .hybrid import fit_hybrid

    return fit_hybrid(spark, data, params, ws)


#: Model classes with a Spark trainer: ``trainer(spark, data, params, ws) -> fitted model``.
SPARK_TRAINERS: dict[type[Recommender], Callable] = {ALS: fit_als, HybridRanker: _fit_hybrid}


def fit_service(spark, ws: Workspace, config: ServiceConfig) -> RecommendationService:
    """Train a :class:`RecommendationService` on the stored reviews, on Spark where it can.

    The training data (vocabularies, the interaction matrix of
    :func:`recommender.interaction_weights`, the fallback's counts) is built on the driver as
    by the embedded engine; a model with a Spark trainer (:data:`SPARK_TRAINERS`) then learns
    from it on the cluster: ALS by MLlib from exactly that matrix, the hybrid with its training
    candidates made per partition (:mod:`jobs.spark.hybrid`). Other models (``popular``, ...)
    are trained by the embedded code on the driver; the recommend stage still applies them per
    partition.
    """
    reviews, inputs = training_inputs(ws, config)
    trainer = SPARK_TRAINERS.get(model_class(config.model))
    if trainer is None:
        log.info("model %r has no Spark trainer: fitting it on the driver", config.model)
        return RecommendationService(config).fit(reviews, **inputs)
    data = TrainingData.from_reviews(reviews, inputs.get("scores"), inputs.get("items"), config.interactions,
                                     inputs.get("aspects"))
    return RecommendationService(config).fit_data(data, model=trainer(spark, data, config.model_params(), ws))


def train(spark, ws: Workspace, config: ServiceConfig | None = None, version: str = "latest",
          fallback: ServiceConfig | None = None) -> dict:
    """Train on Spark and publish the model in the workspace (as :func:`jobs.pipeline.train`;
    ``fallback`` is trained instead, with a note, when ``config``'s model finds nothing to learn)."""
    config = config or ServiceConfig()
    notes = []
    try:
        service = fit_service(spark, ws, config)
    except NothingToLearnError as exc:
        if fallback is None:
            raise
        notes.append(f"{config.model} could not train ({exc}); trained {fallback.model} instead")
        log.warning("%s could not train (%s); training %s instead", config.model, exc, fallback.model)
        service = fit_service(spark, ws, fallback)
    with ws.new_model_version(RECOMMENDER_MODEL, version) as folder:
        service.save_pretrained(folder)
    return {"counts": {"train_users": len(service.users_), "train_items": len(service.items_),
                       "interactions": int(service.seen_.nnz)},
            "outputs": [str(ws.model_path(RECOMMENDER_MODEL))], "notes": notes + model_notes(service)}


def worker_service(path: str, stamp: tuple) -> RecommendationService:
    """The service saved at ``path``, loaded once per Python worker; ``stamp`` (inode and
    mtime of its ``service.json``) tells a re-published version from the one cached."""
    key = (path, *stamp)
    if key not in _SERVICES:
        _SERVICES.clear()  # one model at a time per worker
        _SERVICES[key] = RecommendationService.from_pretrained(path)
    return _SERVICES[key]


def _stamp(folder: Path) -> tuple:
    st = (folder / "service.json").stat()
    return (st.st_ino, st.st_mtime_ns)


def recommend(spark, ws: Workspace, n: int = 10, batch_users: int = 2048) -> dict:
    """Top-``n`` for every user the model knows, into ``recommendations`` (as :func:`jobs.pipeline.recommend`)."""
    from pyspark.sql import functions as F

    folder = ws.model_path(RECOMMENDER_MODEL).resolve()
    path, stamp = str(folder), _stamp(folder)
    # a model that explains (the hybrid) adds an explanation and its evidence per item, as in the embedded table
    explains = model_class(json.loads((folder / "service.json").read_text())["config"]["model"]).explains
    columns = {**RECOMMENDATION_COLUMNS, **(EXPLANATION_COLUMNS if explains else {})}
    n_users = pq.ParquetFile(folder / "users.parquet").metadata.num_rows
    users = (spark.read.parquet(tables.uri(folder / "users.parquet")).select(F.col("id").alias("user_id"))
             .repartition(partitions_for(spark, n_users, RECOMMEND_PARTITION_USERS)))

    def serve(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        service = worker_service(path, stamp)
        for batch in batches:
            yield service.recommend(batch["user_id"].astype(str).tolist(), n=n)[list(columns)]

    recs = users.mapInPandas(serve, tables.spark_schema(columns))
    with sql_conf(spark, "spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_users)):
        out = tables.write_table(ws, "recommendations", recs, columns, {"n": n}, order_by=["user_id", "rank"])
    generic = ", count(*) FILTER (WHERE reason_type = 'generic') AS generic" if explains else ""
    stats = ws.query("SELECT count(DISTINCT user_id) AS users, count(*) AS recs, "
                     f"count(*) FILTER (WHERE source = '{MostPopular.name}') AS fallback{generic} FROM recommendations").iloc[0]
    counts = {"users": int(stats["users"]), "recommendations": int(stats["recs"]), "from_fallback": int(stats["fallback"])}
    if explains:
        counts["generic_reasons"] = int(stats["generic"])
    return {"counts": counts, "outputs": [str(out)]}
