"""The score stage on Spark: ``mapInPandas`` runs the very same :class:`sentiment.Scorer`.

The scorer object is shipped to the Python workers with the job (scorers load their
weights lazily, so what travels is small) and kept in a module-level cache keyed by its
``model_version``: each Python worker (Spark reuses them across tasks,
``spark.python.worker.reuse``) builds and loads the model once, not once per batch.

Like the embedded stage, rows whose text and scorer are unchanged since the last run are
reused from the previous ``review_scores`` table (matched on ``text_hash``), not rescored.
Spark retries failed tasks itself, so there are no checkpointed parts (``resumed`` is 0).
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pyarrow.parquet as pq

import sentiment

from ..store import Workspace
from . import tables
from .session import partitions_for, sql_conf

#: Reviews per scoring partition (a Spark task).
SCORE_PARTITION_ROWS = 20_000

_SCORERS: dict[str, sentiment.Scorer] = {}


def worker_scorer(key: str, scorer: sentiment.Scorer) -> sentiment.Scorer:
    """The scorer cached in this Python process under ``key`` (``scorer`` the first time)."""
    return _SCORERS.setdefault(key, scorer)


def score_frame(scorer: sentiment.Scorer, reviews: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    """``review_id``, ``text_hash`` and the scorer's features of a batch of reviews
    (``review_id``, ``title``, ``text``), typed as the embedded ``review_scores`` table."""
    texts = sentiment.review_text(reviews["title"], reviews["text"])
    features = scorer.score(texts.tolist())
    out = pd.concat([reviews[["review_id"]].reset_index(drop=True), sentiment.text_hash(texts).rename("text_hash").reset_index(drop=True),
                     features], axis=1)
    return out.astype(dtypes)


def score(spark, ws: Workspace, scorer: sentiment.Scorer, batch_rows: int = 2000) -> dict:
    """Score every review on Spark; same table, metadata and reuse rule as :func:`jobs.pipeline.score`.

    Parameters
    ----------
    batch_rows
        Reviews per Arrow batch handed to the scorer (``spark.sql.execution.arrow.maxRecordsPerBatch``).
    """
    from pyspark.sql import functions as F

    dtypes = {**sentiment.schema.KEY_COLUMNS, **scorer.columns}
    key = scorer.model_version

    def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        local = worker_scorer(key, scorer)
        for batch in batches:
            yield score_frame(local, batch, dtypes).assign(_order=batch["_order"].to_numpy())

    # A table file may be one Parquet row group (not splittable): spread the rows over the
    # cores / executors after numbering them in table order.
    n = pq.ParquetFile(ws.table_path("reviews")).metadata.num_rows
    reviews = (tables.read_table(spark, ws, "reviews", ["review_id", "title", "text"])
               .withColumn("_order", F.monotonically_increasing_id())
               .repartition(partitions_for(spark, n, SCORE_PARTITION_ROWS)))
    reused = 0
    previous = None
    if ws.has_table("review_scores") and ws.table_metadata("review_scores").get("model_version") == key:
        previous = tables.read_table(spark, ws, "review_scores").dropDuplicates(["text_hash"]).drop("review_id")
    if previous is None:
        scored = reviews.mapInPandas(score_batches, tables.spark_schema({**dtypes, "_order": "int64"}))
    else:
        hashed = reviews.mapInPandas(_hash_batches, tables.spark_schema({"review_id": "string", "title": "string", "text": "string",
                                                                     "text_hash": "string", "_order": "int64"}))
        joined = hashed.join(previous, on="text_hash", how="left")
        hit = F.col("p_neutral").isNotNull()
        cached = joined.where(hit).select(*dtypes, "_order")
        todo = joined.where(~hit).select("review_id", "title", "text", "_order")
        fresh = todo.mapInPandas(score_batches, tables.spark_schema({**dtypes, "_order": "int64"}))
        scored = cached.unionByName(fresh)
        reused = cached.count()
    meta = {"schema_version": sentiment.SCHEMA_VERSION, "scorer": scorer.name, "model_version": key,
            "aspects": scorer.aspects.model_dump()}
    with sql_conf(spark, "spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows)):
        path = tables.write_table(ws, "review_scores", scored, dtypes, meta, order_by=["_order"])
    counts = ws.query("SELECT count(*) AS n, count(*) FILTER (WHERE is_empty) AS empty FROM review_scores").iloc[0]
    return {"counts": {"scored": int(counts["n"]) - reused, "reused": reused, "resumed": 0, "empty_text": int(counts["empty"])},
            "outputs": [str(path)], "notes": [f"scorer {key}"]}


def _hash_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for b in batches:
        texts = sentiment.review_text(b["title"], b["text"])
        yield b.assign(text_hash=sentiment.text_hash(texts).to_numpy())
