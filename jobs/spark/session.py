"""The SparkSession of a run, from the standard Spark configuration.

Precedence (highest first): an already active session (``spark-submit``, a notebook, a
Databricks job: its master and settings are used as they are, and only emorec's
runtime SQL options are set on it); ``--master`` / ``--conf k=v`` given to emorec;
``$SPARK_MASTER``; the ``spark-defaults.conf`` of ``$SPARK_HOME`` / ``$SPARK_CONF_DIR``
(read by Spark itself); and ``local[*]``.

Every session gets two runtime options emorec relies on:

``spark.sql.legacy.parquet.nanosAsLong=true``
    The workspace tables store timestamps in nanoseconds (pandas' unit), which Spark's
    Parquet reader rejects otherwise; inside Spark they are ``long`` nanoseconds since the
    epoch (UTC) and the table writer turns them back into timestamps.
``spark.sql.execution.arrow.pyspark.enabled=true``
    Arrow transfers for ``toPandas`` / ``createDataFrame``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Mapping, Sequence

from emorec.common.errors import ConfigError

from . import SparkUnavailable, require_pyspark

log = logging.getLogger(__name__)

APP_NAME = "emorec"
#: Runtime SQL options every emorec session needs (see the module docstring).
REQUIRED_CONF: dict[str, str] = {
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def parse_conf(pairs: Sequence[str] | None) -> dict[str, str]:
    """``["k=v", ...]`` (``--conf`` values) as a dict; a pair without ``=`` raises ``ValueError``."""
    out: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = str(pair).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--conf expects KEY=VALUE (e.g. spark.executor.memory=4g), got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _quiet_pandas_warning() -> None:
    # PySpark 4.x warns that it "does not yet fully support pandas >= 3"; emorec's Spark
    # tests check every value it exchanges with pandas, so the warning is noise here.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)


def get_session(master: str | None = None, conf: Mapping[str, str] | None = None, app_name: str = APP_NAME):
    """The active SparkSession, or a new one built from the standard configuration.

    Parameters
    ----------
    master
        Master URL (``local[2]``, ``yarn``, ``k8s://...``, ``spark://host:7077``); defaults to
        ``$SPARK_MASTER``, else Spark's own default (``local[*]``). Ignored, with a warning,
        when a session is already active (``spark-submit`` decided).
    conf
        ``spark.*`` options for a new session (static ones such as ``spark.executor.memory``
        only take effect there); on an active session only runtime SQL options are set.
    app_name
        Application name of a new session.

    Returns
    -------
    pyspark.sql.SparkSession

    Raises
    ------
    SparkUnavailable
        When PySpark is not installed or Java cannot be started.
    """
    require_pyspark()
    _quiet_pandas_warning()
    from pyspark.sql import SparkSession

    conf = dict(conf or {})
    active = SparkSession.getActiveSession()
    if active is not None:
        if master:
            log.warning("a Spark session is already active (master %s); --master %s is ignored",
                        active.sparkContext.master, master)
        for key, value in {**conf, **REQUIRED_CONF}.items():
            try:
                active.conf.set(key, value)
            except Exception:  # static options cannot change on a running session
                log.warning("Spark option %s cannot be changed on the active session; ignored", key)
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    master = master or os.environ.get("SPARK_MASTER")
    if master:  # otherwise spark-submit's --master, spark-defaults.conf, or Spark's default local[*]
        builder = builder.master(master)
    for key, value in {**conf, **REQUIRED_CONF}.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # Java missing or the wrong version: say so plainly
        raise SparkUnavailable(f"could not start Spark ({type(exc).__name__}: {exc}); "
                               "Spark 4 needs Java 17 (JAVA_HOME or java on PATH)") from exc
    log.info("Spark %s session on %s", spark.version, spark.sparkContext.master)
    return spark


@contextlib.contextmanager
def sql_conf(spark, key: str, value: str):
    """Set a runtime SQL option for the duration of a block, then restore it."""
    old = spark.conf.get(key, None)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if old is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, old)


def partitions_for(spark, n_rows: int, rows_per_partition: int) -> int:
    """Partitions for ``n_rows``: at least one per core, at most ``rows_per_partition`` rows each."""
    return max(default_parallelism(spark), -(-int(n_rows) // rows_per_partition))


def default_parallelism(spark) -> int:
    """Cores Spark can use (at least 1)."""
    return max(1, int(spark.sparkContext.defaultParallelism))
