"""The emorec pipeline on Apache Spark (``emorec run --engine spark``).

The same stages as :mod:`jobs.pipeline` (ingest, score, profile, train, recommend), reading
and writing the same workspace tables (``<workspace>/tables/<name>.parquet``), with the
work spread over a Spark cluster (or ``local[N]`` cores) and **the same per-record code**:

* ingest: one Spark task per input file runs :func:`jobs.loaders.iter_review_chunks` and
  :func:`jobs.pipeline.clean_reviews` (files are the unit of parallelism, like Spark's own
  non-splittable gzip inputs); duplicate review ids across files are resolved with a
  window, keeping the first as the embedded ingest does;
* score: ``mapInPandas`` calls the very same :class:`sentiment.Scorer` per batch, built
  once per Python worker (:mod:`jobs.spark.score`);
* profile: users are hash-bucketed so each bucket holds whole users, and
  ``applyInPandas`` runs :func:`profiles.build_user_profiles` per bucket (a user's profile
  depends only on their own reviews, so this equals the embedded table); item profiles
  need the category means of *all* reviews for their shrinkage: these come from Spark SQL
  aggregations and are applied with :func:`profiles.aggregate.shrink`
  (:mod:`jobs.spark.profiles`);
* train: the hybrid makes the candidates and features of its training queries per partition
  and fits LightGBM on the driver (:mod:`jobs.spark.hybrid`: the same ranker as the embedded
  engine), Spark MLlib ALS (``implicitPrefs=True``) learns ALS factors; either is saved as the
  standard :class:`recommender.RecommendationService` artifact;
* recommend: ``mapInPandas`` serves every user with that artifact, per partition.

PySpark is the optional extra ``emorec[spark]`` and needs Java 17. Sessions come from the
standard Spark configuration (:mod:`jobs.spark.session`), so the same code runs on
``local[2]``, under ``spark-submit`` and on YARN, Kubernetes or Databricks.
"""

from __future__ import annotations

from emorec.common.errors import ConfigError

MISSING_PYSPARK = (
    "the Spark engine needs PySpark 4 and Java 17: pip install 'emorec[spark]' "
    "(and a JDK 17 on PATH or JAVA_HOME)"
)


class SparkUnavailable(ConfigError):
    """PySpark (or Java) is missing; the message says what to install."""


def require_pyspark():
    """Import and return :mod:`pyspark`, or raise :class:`SparkUnavailable` saying how to install it."""
    try:
        import pyspark
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise SparkUnavailable(MISSING_PYSPARK) from exc
    return pyspark
