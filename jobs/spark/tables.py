"""Workspace tables in and out of Spark, in the embedded store's layout.

Spark writes a table as a folder of part files; the workspace keeps one Parquet file per
table (``<workspace>/tables/<name>.parquet``, see :mod:`jobs.store`), which every reader of
emorec (DuckDB queries, the embedded stages, the marketing commands) expects. So
:func:`write_table` lets Spark write the parts into a hidden folder beside the table, then
streams them, batch by batch and in part order (so a sorted frame stays sorted), into one
Parquet file with exactly the Arrow schema and pandas metadata the embedded writer would
produce, and publishes it with the same atomic rename. Memory stays bounded by one batch;
the extra cost is one sequential pass over the table on the driver, fine up to tens of
millions of rows. (A workspace on a cluster must be on a file system every node sees:
NFS, or ``/dbfs/...`` on Databricks.)

Inside Spark, timestamps are ``long`` nanoseconds since the epoch, UTC (how Spark reads the
workspace's nanosecond timestamps with ``spark.sql.legacy.parquet.nanosAsLong``): the
pandas functions run per partition convert with :func:`to_pandas_dtypes` /
:func:`to_spark_pandas`.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from emorec.common.atomic import atomic_write

from ..store import METADATA_KEY, Workspace, WorkspaceError

TIMESTAMP = "datetime64[ns, UTC]"
#: Records per Spark part file (bounds the memory of one batch of :func:`write_table`).
RECORDS_PER_FILE = 500_000
READ_BATCH = 100_000


def uri(path: Path) -> str:
    """A ``file://`` URI of a local (or shared) path, so Spark never resolves it on HDFS."""
    return Path(path).resolve().as_uri()


def spark_type(dtype: str):
    """The Spark SQL type holding a pandas dtype of the workspace tables."""
    from pyspark.sql import types as T

    mapping = {
        "string": T.StringType(), "str": T.StringType(), "object": T.StringType(),
        "float64": T.DoubleType(), "float32": T.FloatType(),
        "int64": T.LongType(), "Int64": T.LongType(), "int32": T.IntegerType(), "Int32": T.IntegerType(),
        "bool": T.BooleanType(), "boolean": T.BooleanType(), TIMESTAMP: T.LongType(),
    }
    try:
        return mapping[str(dtype)]
    except KeyError:
        raise ValueError(f"no Spark type for pandas dtype {dtype!r}") from None


def spark_schema(dtypes: Mapping[str, str]):
    """A Spark ``StructType`` for a table's ``{column: pandas dtype}``."""
    from pyspark.sql import types as T

    return T.StructType([T.StructField(c, spark_type(t), True) for c, t in dtypes.items()])


def to_spark_pandas(df: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """``df`` ready to hand back to Spark: columns of ``dtypes`` in order, timestamps as
    nullable int64 nanoseconds, strings as Python objects."""
    out = {}
    for c, t in dtypes.items():
        s = df[c]
        if t == TIMESTAMP:
            ts = pd.to_datetime(s, utc=True).astype(TIMESTAMP)
            values = ts.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view("int64")
            s = pd.Series(pd.array(values, dtype="Int64"), index=df.index).mask(ts.isna())
        elif t in ("string", "str", "object"):
            # plain Python strings: Arrow-backed string columns can be chunked, which
            # PySpark's batch conversion does not accept
            s = s.astype(object).where(s.notna(), None)
        out[c] = s
    return pd.DataFrame(out, index=df.index)


def to_pandas_dtypes(df: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """A frame from Spark (timestamps as int64 ns) with the workspace dtypes; columns of
    ``df`` not in ``dtypes`` are kept as they are."""
    df = df.copy()
    for c, t in dtypes.items():
        if c not in df.columns:
            continue
        if t == TIMESTAMP:
            if not isinstance(df[c].dtype, pd.DatetimeTZDtype):
                ns = pd.array(df[c], dtype="Int64")
                missing = np.asarray(ns.isna())
                values = ns.to_numpy(dtype="int64", na_value=0).view("M8[ns]")
                df[c] = pd.Series(values, index=df.index).dt.tz_localize("UTC").mask(missing)
            df[c] = df[c].astype(TIMESTAMP)
        else:
            df[c] = df[c].astype(t)
    return df


def arrow_schema(dtypes: Mapping[str, str], metadata: dict | None = None) -> pa.Schema:
    """The Arrow schema (with pandas metadata) the embedded writer gives a frame of ``dtypes``."""
    empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})
    schema = pa.Schema.from_pandas(empty, preserve_index=False)
    meta = dict(schema.metadata or {})
    meta[METADATA_KEY] = json.dumps(metadata or {}, sort_keys=True, default=str).encode()
    return schema.with_metadata(meta)


def read_table(spark, ws: Workspace, name: str, columns: Sequence[str] | None = None):
    """Workspace table ``name`` as a Spark DataFrame (a missing table names its command)."""
    if not ws.has_table(name):
        ws.read_table(name)  # raises WorkspaceError naming the command that makes it
    df = spark.read.parquet(uri(ws.table_path(name)))
    return df.select(*columns) if columns else df


def write_table(ws: Workspace, name: str, df, dtypes: Mapping[str, str], metadata: dict | None = None,
                order_by: Sequence[str] | None = None) -> Path:
    """Write Spark DataFrame ``df`` as workspace table ``name`` (one Parquet file, atomically).

    Parameters
    ----------
    df
        Spark DataFrame with (at least) the columns of ``dtypes``; timestamps as int64 ns.
    dtypes
        ``{column: pandas dtype}`` of the table, in table order (the embedded stage's dtypes).
    metadata
        JSON metadata stored with the table, as :meth:`jobs.store.Workspace.write_table` does.
    order_by
        Sort the rows by these columns (the embedded table's row order).

    Returns
    -------
    Path
        The table's file.
    """
    path = ws.table_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    parts_dir = path.with_name(f".{name}.spark-{token}.tmp")  # a killed run's parts are swept by Workspace.lock
    frame = df.select(*dtypes)
    if order_by:
        frame = frame.orderBy(*order_by)
    schema = arrow_schema(dtypes, metadata)
    try:
        frame.write.option("maxRecordsPerFile", RECORDS_PER_FILE).parquet(uri(parts_dir))
        parts = sorted(parts_dir.glob("part-*.parquet"))

        def concatenate(tmp: Path) -> None:
            with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
                for part in parts:
                    for batch in pq.ParquetFile(part).iter_batches(batch_size=READ_BATCH):
                        pdf = to_pandas_dtypes(batch.to_pandas(), dtypes)[list(dtypes)]
                        writer.write_table(pa.Table.from_pandas(pdf, schema=schema, preserve_index=False))

        atomic_write(path, concatenate)
    except OSError as exc:
        raise WorkspaceError(f"could not write table {name!r} to {path}: {exc.strerror or exc}; "
                             "the previous version is intact") from exc
    finally:
        shutil.rmtree(parts_dir, ignore_errors=True)
    return path
