"""The profile stage on Spark, with the embedded profile code doing the arithmetic.

User profiles
    A user's profile depends only on that user's reviews (and the item prices), by design
    of :mod:`profiles.users`. Reviews are hash-bucketed by ``user_id`` so that every bucket
    holds whole users, and ``applyInPandas`` runs :func:`profiles.build_user_profiles` on
    each bucket: the rows equal the embedded table's bit for bit (per-group sums do not
    depend on the other groups, see :mod:`profiles.aggregate`).
Item profiles
    An item's profile also depends on the mean of its category over *all* reviews (the
    shrinkage prior), which no bucket sees. So, in three steps:

    1. per item bucket, :func:`profiles.build_item_profiles` with no shrinkage
       (``item_prior_strength=0``) gives each item's own means and counts;
    2. Spark SQL aggregations give the category (and global) means of valence, the Ekman
       emotions and each aspect's sentiment, NaN-skipping as
       :func:`profiles.aggregate.category_means`, and each item's count of valid values;
    3. :func:`shrink_item_profiles` applies :func:`profiles.aggregate.shrink` and
       :func:`profiles.aggregate.pick` with those global priors per partition.

    The shrunk columns differ from the embedded ones only by the summation order of the
    category means (~1e-16 relative).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from emorec import profiles
from emorec.profiles.aggregate import EKMAN_COLUMNS, discover_aspects

from ..profile_buckets import VALID_PREFIX as _VALID
from ..profile_buckets import shrink_item_profiles
from ..store import Workspace, WorkspaceError
from . import tables
from .session import default_parallelism

REVIEW_KEYS = {"review_id": "string", "user_id": "string", "item_id": "string", "rating": "float64", "timestamp": tables.TIMESTAMP}
#: Reviews per profile bucket (bounds the pandas frame one task holds).
BUCKET_ROWS = 100_000
BUCKET = "_bucket"


def table_dtypes(ws: Workspace, name: str) -> dict[str, str]:
    """``{column: pandas dtype}`` of a stored table, as :meth:`Workspace.read_table` returns it."""
    empty = pq.read_schema(ws.table_path(name)).empty_table().to_pandas()
    return {c: str(t) for c, t in empty.dtypes.items()}


def _n_buckets(spark, n_rows: int) -> int:
    return max(default_parallelism(spark), math.ceil(n_rows / BUCKET_ROWS))


def scored_reviews(spark, ws: Workspace):
    """Reviews joined with their scores (Spark), and the pandas dtypes of the joined columns."""
    from pyspark.sql import functions as F

    reviews = tables.read_table(spark, ws, "reviews", list(REVIEW_KEYS))
    scores = tables.read_table(spark, ws, "review_scores")
    missing = reviews.join(scores.select("review_id"), on="review_id", how="left_anti").count()
    if missing:
        raise WorkspaceError(f"{missing} reviews have no scores (the reviews changed after scoring); run `emorec score`")
    dtypes = {**REVIEW_KEYS, **{c: t for c, t in table_dtypes(ws, "review_scores").items() if c != "review_id"}}
    return reviews.join(scores, on="review_id", how="inner").select(*[F.col(c) for c in dtypes]), dtypes


def _with_items(scored, items, column: str):
    from pyspark.sql import functions as F

    if items is None:
        return scored.withColumn(column, F.lit(None).cast("double" if column == "price" else "string"))
    return scored.join(items.select("item_id", column), on="item_id", how="left")


def _mini_items(pdf: pd.DataFrame, column: str, dtype: str) -> pd.DataFrame:
    """The item table restricted to a bucket's items (what the profile code looks up)."""
    return pdf[["item_id", column]].drop_duplicates("item_id").astype({"item_id": "string", column: dtype})


def _per_bucket(spark, ws: Workspace, scored, key: str, column: str, column_dtype: str, dtypes_of, build_profiles):
    """Profiles per hash bucket of ``key`` (each bucket holds whole users or items), built by
    ``build_profiles(frame, catalog)`` with the item table's ``column`` as ``catalog``.

    Returns the Spark DataFrame, its pandas dtypes (``dtypes_of(aspects)``), the aspects and
    the scored reviews (``scored`` or :func:`scored_reviews`).
    """
    from pyspark.sql import functions as F

    scored, dtypes = scored or scored_reviews(spark, ws)
    aspects = discover_aspects(dtypes)
    out_dtypes = dtypes_of(aspects)
    has_items = ws.has_table("items")
    items = tables.read_table(spark, ws, "items") if has_items else None
    rows = _with_items(scored, items, column)
    n = pq.ParquetFile(ws.table_path("reviews")).metadata.num_rows

    def build(pdf: pd.DataFrame) -> pd.DataFrame:
        frame = tables.to_pandas_dtypes(pdf, dtypes)
        catalog = _mini_items(frame, column, column_dtype) if has_items else None
        return tables.to_spark_pandas(build_profiles(frame[list(dtypes)], catalog), out_dtypes)

    bucketed = rows.withColumn(BUCKET, F.pmod(F.xxhash64(key), F.lit(_n_buckets(spark, n))))
    return bucketed.groupBy(BUCKET).applyInPandas(build, tables.spark_schema(out_dtypes)), out_dtypes, aspects, scored


def user_profiles(spark, ws: Workspace, config: profiles.ProfileConfig, scored=None):
    """User profiles (Spark DataFrame, timestamps as int64 ns) and their pandas dtypes.

    ``scored`` is the output of :func:`scored_reviews` when the caller has it already.
    """
    users, out_dtypes, _, _ = _per_bucket(spark, ws, scored, "user_id", "price", "float64", profiles.user_profile_dtypes,
                                          lambda frame, catalog: profiles.build_user_profiles(frame, config, items=catalog))
    return users, out_dtypes


def item_profiles(spark, ws: Workspace, config: profiles.ProfileConfig, scored=None):
    """Item profiles (Spark DataFrame, timestamps as int64 ns), their pandas dtypes, and the
    persisted intermediate table (unpersist it once the profiles are written)."""
    from pyspark.sql import functions as F

    unshrunk_config = config.model_copy(update={"item_prior_strength": 0.0})
    # 1. each item's own aggregates, by the embedded code, without shrinkage
    built, out_dtypes, aspects, scored = _per_bucket(
        spark, ws, scored, "item_id", "category", "string", profiles.item_profile_dtypes,
        lambda frame, catalog: profiles.build_item_profiles(frame, unshrunk_config, items=catalog))
    unshrunk = built.persist()

    # 2. priors: category and global NaN-skipping means over all reviews (Spark SQL)
    def valid(c):
        return F.when(~F.isnan(F.col(c)), F.col(c))

    prior_exprs = {"valence": valid("valence"), **{c: valid(c) for c in EKMAN_COLUMNS}}
    for a in aspects:
        mentioned = F.coalesce(F.col(f"asp_{a}_mentions"), F.lit(0)) > 0
        prior_exprs[f"asp_{a}_sentiment"] = F.when(mentioned & ~F.isnan(F.col(f"asp_{a}_sentiment")), F.col(f"asp_{a}_sentiment"))
    values = scored.join(unshrunk.select("item_id", "category"), on="item_id").select(
        "item_id", "category", *[e.cast("double").alias(c) for c, e in prior_exprs.items()])
    means = [F.avg(c).alias(c) for c in prior_exprs]
    per_category = values.where(F.col("category").isNotNull()).groupBy("category").agg(*means).toPandas()
    global_mean = values.agg(*means).toPandas().iloc[0]
    counted = ["valence", *EKMAN_COLUMNS]
    valid_counts = values.groupBy("item_id").agg(*[F.count(c).alias(_VALID + c) for c in counted])

    # 3. shrink toward the priors, per partition
    columns = list(prior_exprs)
    per_category = per_category.set_index("category")[columns].astype("float64")
    global_prior = global_mean[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    in_dtypes = {**out_dtypes, **{_VALID + c: "int64" for c in counted}}

    def finish(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            frame = tables.to_pandas_dtypes(pdf, in_dtypes)
            done = shrink_item_profiles(frame, per_category, global_prior, config, aspects)
            yield tables.to_spark_pandas(done, out_dtypes)

    joined = unshrunk.join(valid_counts, on="item_id", how="left")
    return joined.mapInPandas(finish, tables.spark_schema(out_dtypes)), out_dtypes, unshrunk


def profile(spark, ws: Workspace, config: profiles.ProfileConfig | None = None) -> dict:
    """Build user and item profiles on Spark into ``user_profiles`` / ``item_profiles``
    (same tables and metadata as :func:`jobs.pipeline.profile`)."""
    config = config or profiles.ProfileConfig()
    meta = {"config": config.model_dump(), "score_metadata": ws.table_metadata("review_scores")}
    scored, dtypes = scored_reviews(spark, ws)
    scored = scored.persist()
    try:
        users, user_dtypes = user_profiles(spark, ws, config, (scored, dtypes))
        outputs = [str(tables.write_table(ws, "user_profiles", users, user_dtypes,
                                          {**meta, "version": profiles.USER_PROFILE_VERSION}, order_by=["user_id"]))]
        items, item_dtypes, unshrunk = item_profiles(spark, ws, config, (scored, dtypes))
        try:
            outputs.append(str(tables.write_table(ws, "item_profiles", items, item_dtypes,
                                                  {**meta, "version": profiles.ITEM_PROFILE_VERSION}, order_by=["item_id"])))
        finally:
            unshrunk.unpersist()
    finally:
        scored.unpersist()
    counts = {name: pq.ParquetFile(ws.table_path(name)).metadata.num_rows for name in ("user_profiles", "item_profiles")}
    return {"counts": counts, "outputs": outputs}
