"""The score stage on Spark: ``mapInPandas`` runs the very same :class:`sentiment.Scorer`.

The scorer object is shipped to the Python workers with the job (scorers load their
weights lazily, so what travels is small) and kept in a module-level cache keyed by its
``model_version``: each Python worker (Spark reuses them across tasks,
``spark.python.worker.reuse``) builds and loads the model once, not once per batch.

Like the embedded stage, rows whose text and scorer are unchanged since the last run are
reused from the previous ``review_scores`` table (matched on ``text_hash``), not rescored, and
new scores are checkpointed wave by wave (Spark retries failed tasks itself; the checkpoints
survive a killed driver).
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pyarrow.parquet as pq

from emorec import sentiment

from ..store import Workspace
from . import tables
from .session import partitions_for, sql_conf

#: Reviews per scoring partition (a Spark task).
SCORE_PARTITION_ROWS = 20_000
#: Distinct texts per checkpointed scoring wave (one Spark job each).
SCORE_WAVE_ROWS = 100_000

_SCORERS: dict[str, sentiment.Scorer] = {}


def worker_scorer(key: str, scorer: sentiment.Scorer) -> sentiment.Scorer:
    """The scorer cached in this Python process under ``key`` (``scorer`` the first time)."""
    return _SCORERS.setdefault(key, scorer)


def score(spark, ws: Workspace, scorer: sentiment.Scorer, batch_rows: int = 2000) -> dict:
    """Score every review on Spark; same table, metadata, reuse rule and checkpoints as
    :func:`jobs.pipeline.score`.

    Every review's text is hashed first. Texts found in the previous ``review_scores`` (same
    model) are reused; texts found in the checkpointed parts of a killed run are resumed; the
    rest are scored once per distinct text, in waves of about :data:`SCORE_WAVE_ROWS` texts.
    Each wave is checkpointed as a part (``partial/review_scores/<key>/part-NNNNNN.parquet``,
    the embedded stage's layout and key, so either engine resumes the other's work) as soon as
    it is scored; a killed driver loses at most one wave.

    Parameters
    ----------
    batch_rows
        Reviews per Arrow batch handed to the scorer (``spark.sql.execution.arrow.maxRecordsPerBatch``).
    """
    from pyspark.sql import functions as F

    from ..pipeline import checkpoint_key
    from ..store import crash_point

    dtypes = {**sentiment.schema.KEY_COLUMNS, **scorer.columns}
    features = list(scorer.columns)
    kinds = sentiment.schema.checkpoint_dtypes(scorer.columns)  # float64 numbers, string labels
    key = scorer.model_version
    part_key = checkpoint_key(scorer)

    def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        local = worker_scorer(key, scorer)
        for batch in batches:
            texts = sentiment.review_text(batch["title"], batch["text"])
            scored = local.score(texts.tolist())
            numbers = {c: "float64" for c, k in kinds.items() if k == "float64"}
            out = tables.to_spark_pandas(scored.astype(numbers), kinds)  # the checkpoint parts' types
            out.insert(0, "text_hash", batch["text_hash"].to_numpy())
            yield out

    # A table file may be one Parquet row group (not splittable): spread the rows over the
    # cores / executors after numbering them in table order.
    n = pq.ParquetFile(ws.table_path("reviews")).metadata.num_rows
    reviews = (tables.read_table(spark, ws, "reviews", ["review_id", "title", "text"])
               .withColumn("_order", F.monotonically_increasing_id())
               .repartition(partitions_for(spark, n, SCORE_PARTITION_ROWS)))
    hashed = reviews.mapInPandas(_hash_batches, tables.spark_schema({"review_id": "string", "title": "string", "text": "string",
                                                                 "text_hash": "string", "_order": "int64"})).persist()
    part_schema = tables.spark_schema({"text_hash": "string", **kinds})
    reused = resumed = 0
    todo = hashed
    previous = None  # scores of unchanged texts, by text hash
    if ws.has_table("review_scores") and ws.table_metadata("review_scores").get("model_version") == key:
        previous = (tables.read_table(spark, ws, "review_scores")
                    .select("text_hash", *[F.col(c).cast("double" if kinds[c] == "float64" else "string") for c in features])
                    .dropDuplicates(["text_hash"]))
        reused = hashed.join(previous.select("text_hash"), on="text_hash", how="left_semi").count()
        todo = todo.join(previous.select("text_hash"), on="text_hash", how="left_anti")
    old_parts = ws.part_paths("review_scores", part_key)  # (also drops the parts of another scorer)
    n_parts = len(old_parts)
    if old_parts:  # a killed run's checkpointed waves
        done = spark.read.schema(part_schema).parquet(*map(tables.uri, old_parts)).select("text_hash")
        resumed = todo.join(done, on="text_hash", how="left_semi").count()
        todo = todo.join(done, on="text_hash", how="left_anti")
    pending = todo.dropDuplicates(["text_hash"]).select("text_hash", "title", "text").persist()
    n_todo = pending.count()
    waves = max(1, -(-n_todo // SCORE_WAVE_ROWS))
    todo = pending.withColumn("_wave", F.pmod(F.xxhash64("text_hash"), F.lit(waves)))
    with sql_conf(spark, "spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_rows)):
        for w in range(waves if n_todo else 0):
            wave = todo.where(F.col("_wave") == w).drop("_wave")
            scored = wave.mapInPandas(score_batches, part_schema).toPandas()
            if len(scored):
                ws.write_part("review_scores", part_key, n_parts, scored)
                n_parts += 1
            crash_point("spark-score:wave")
    pending.unpersist()
    parts = ws.part_paths("review_scores", part_key)  # the killed runs' waves and this run's
    table = spark.read.schema(part_schema).parquet(*map(tables.uri, parts)) if parts else spark.createDataFrame([], part_schema)
    if previous is not None:
        table = table.unionByName(previous)
    table = table.dropDuplicates(["text_hash"])
    cast = [F.col(c).cast(tables.spark_type(dtypes[c])).alias(c) for c in features]
    scored = hashed.join(table, on="text_hash", how="left").select("review_id", "text_hash", *cast, "_order")
    meta = {"schema_version": sentiment.SCHEMA_VERSION, "scorer": scorer.name, "model_version": key,
            "aspects": scorer.aspects.model_dump(), "thresholds": scorer.thresholds}
    path = tables.write_table(ws, "review_scores", scored, dtypes, meta, order_by=["_order"])
    hashed.unpersist()
    ws.clear_parts("review_scores")
    counts = ws.query("SELECT count(*) AS n, count(*) FILTER (WHERE is_empty) AS empty FROM review_scores").iloc[0]
    return {"counts": {"scored": int(counts["n"]) - reused - resumed, "reused": reused, "resumed": resumed,
                       "empty_text": int(counts["empty"])},
            "outputs": [str(path)], "notes": [f"scorer {key}"]}


def _hash_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    for b in batches:
        texts = sentiment.review_text(b["title"], b["text"])
        yield b.assign(text_hash=sentiment.text_hash(texts).to_numpy())
