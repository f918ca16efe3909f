"""The ingest stage on Spark: one task per review file, the embedded loader inside it.

Every input file is read by one Spark task with :func:`jobs.loaders.iter_review_chunks` and
cleaned with :func:`jobs.pipeline.clean_reviews`, chunk by chunk in bounded memory, exactly
as the embedded ingest does (so the same records are kept, typed, deduplicated within the
file and quarantined with the same reasons). Files are the unit of parallelism: a big shop's
export is a folder of files (``part-0001.jsonl.gz``...), and gzip files cannot be split
anyway. A review id that appears in two files is kept in the first file given, the others go
to the quarantine ("duplicate review_id across input files"), as in the embedded stage; the
table keeps the files' order and each file's row order. Reviews and quarantined records of
forgotten users (:mod:`jobs.forget`) are dropped as in the embedded stage, with
:func:`jobs.forget.drop_forgotten` per batch.

File paths must be readable by every executor (local mode: any path; on a cluster: a shared
file system such as NFS or ``/dbfs/...``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from emorec.common.errors import InputError

from ..contract import QUARANTINE_COLUMNS, REVIEW_COLUMNS
from ..forget import FORGOTTEN_TABLE, drop_forgotten
from ..loaders import SchemaError, load_items
from ..store import Workspace
from . import tables

KIND, FILE, POS = "_kind", "_file", "_pos"
REVIEW, QUARANTINE, ERROR = "r", "q", "e"
#: One output row type for reviews, quarantined records and per-file errors.
ROW_DTYPES: dict[str, str] = {
    KIND: "string", FILE: "int64", POS: "int64",
    **REVIEW_COLUMNS,
    **{c: t for c, t in QUARANTINE_COLUMNS.items() if c not in REVIEW_COLUMNS},
}
CROSS_FILE_REASON = "duplicate review_id across input files"


def load_file_rows(files: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """``mapInPandas`` function: load, validate and clean each file of the batch.

    Input rows: ``_file`` (index), ``path``, ``mapping`` (JSON). Output: :data:`ROW_DTYPES`
    rows; a file that cannot be read at all (missing column, unknown format) yields one
    ``_kind = "e"`` row whose ``reason`` is ``"<ErrorType>: <message>"``.
    """
    from ..loaders import iter_review_chunks
    from ..pipeline import clean_reviews

    for batch in files:
        for _, f in batch.iterrows():
            index, path, mapping = int(f[FILE]), str(f["path"]), json.loads(f["mapping"]) or None
            n_reviews = n_quarantined = 0
            try:
                for chunk in iter_review_chunks(Path(path), mapping=mapping):
                    chunk = clean_reviews(chunk)
                    for kind, frame, start in ((REVIEW, chunk.reviews, n_reviews), (QUARANTINE, chunk.quarantine, n_quarantined)):
                        if len(frame):
                            out = frame.copy()
                            out[KIND], out[FILE] = kind, index
                            out[POS] = range(start, start + len(frame))
                            yield _rows(out)
                    n_reviews += len(chunk.reviews)
                    n_quarantined += len(chunk.quarantine)
            except (SchemaError, ValueError, OSError) as exc:
                yield _rows(pd.DataFrame({KIND: [ERROR], FILE: [index], POS: [0], "source": [path],
                                          "reason": [f"{type(exc).__name__}: {exc}"]}))


def _rows(frame: pd.DataFrame) -> pd.DataFrame:
    for c, t in ROW_DTYPES.items():
        if c not in frame.columns:
            frame[c] = pd.Series([None] * len(frame), index=frame.index, dtype=t if t != tables.TIMESTAMP else "Int64")
    return tables.to_spark_pandas(frame, ROW_DTYPES)


def ingest(spark, ws: Workspace, sources: Sequence[Path], mapping: dict[str, str] | None = None,
           items: Path | None = None) -> dict:
    """Load, validate, clean and store review files, replacing the ``reviews`` table (every
    review counts as ``added``; :class:`jobs.spark.pipeline.SparkPipeline` asks for ``--replace``
    when reviews are stored).

    Same contract as :func:`jobs.pipeline.ingest` with ``replace=True``; returns ``{"counts", "outputs", "quarantine"}``
    for the stage summary.

    Raises
    ------
    SchemaError, ValueError
        As the embedded ingest, naming the file, when a file cannot be read.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    if not sources:
        raise InputError("ingest needs at least one review file")
    paths = [str(Path(s).resolve()) for s in sources]
    for p in paths:
        if not Path(p).exists():
            raise InputError(f"review file {p} does not exist")
    spec = [(i, p, json.dumps(mapping or {})) for i, p in enumerate(paths)]
    files = spark.sparkContext.parallelize(spec, numSlices=len(spec)).toDF([FILE, "path", "mapping"])
    rows = files.mapInPandas(load_file_rows, tables.spark_schema(ROW_DTYPES)).persist()
    later = None
    try:
        errors = rows.where(F.col(KIND) == ERROR).select("source", "reason").collect()
        if errors:
            kind, _, message = errors[0]["reason"].partition(": ")
            raise (SchemaError if kind == "SchemaError" else InputError)(message)
        reviews = rows.where(F.col(KIND) == REVIEW)
        quarantine = rows.where(F.col(KIND) == QUARANTINE)
        n_cross = 0
        if len(paths) > 1:  # the same review id in two files: keep the first, quarantine the rest
            first = Window.partitionBy("review_id").orderBy(FILE, POS)
            ids = reviews.select("review_id", FILE, POS).withColumn("_nth", F.row_number().over(first))
            later = ids.where(F.col("_nth") > 1).select(FILE, POS).persist()  # only ids are shuffled
            n_cross = later.count()
            if n_cross:
                again = (reviews.join(F.broadcast(later), on=[FILE, POS], how="left_semi")
                         .select(F.lit(QUARANTINE).alias(KIND), F.lit(len(paths)).cast("long").alias(FILE),
                                 (F.col(FILE) * F.lit(1 << 40) + F.col(POS)).alias(POS), "source", "line", "user_id",
                                 F.lit("review_id").alias("field"), F.lit(CROSS_FILE_REASON).alias("reason"),
                                 F.col("review_id").alias("record")))
                quarantine = quarantine.select(KIND, FILE, POS, *QUARANTINE_COLUMNS).unionByName(again)
                reviews = reviews.join(F.broadcast(later), on=[FILE, POS], how="left_anti")
        n_forgotten = 0
        if ws.has_table(FORGOTTEN_TABLE):  # right to erasure: as the embedded ingest, after deduplication
            before = reviews.count() + quarantine.count()
            reviews, quarantine = _drop_forgotten(ws, reviews, quarantine)
            n_forgotten = before - reviews.count() - quarantine.count()
        meta = {"sources": [str(s) for s in sources]}
        outputs = [str(tables.write_table(ws, "reviews", reviews, REVIEW_COLUMNS, meta, order_by=[FILE, POS])),
                   str(tables.write_table(ws, "quarantine", quarantine, QUARANTINE_COLUMNS, meta, order_by=[FILE, POS]))]
        if items is not None:
            outputs.append(str(ws.write_table("items", load_items(Path(items), mapping=None), {"source": str(items)})))
        stats = ws.query(
            "SELECT (SELECT count(*) FROM reviews) AS reviews, (SELECT count(DISTINCT user_id) FROM reviews) AS users, "
            "(SELECT count(DISTINCT item_id) FROM reviews) AS items, (SELECT count(*) FROM quarantine) AS quarantined, "
            "(SELECT count(*) FROM quarantine WHERE reason LIKE 'duplicate of line %') AS dups"
        ).iloc[0]
    finally:
        rows.unpersist()
        if later is not None:
            later.unpersist()
    counts = {"read": int(stats["reviews"] + stats["quarantined"]) + n_forgotten, "added": int(stats["reviews"]),
              "updated": 0, "already_stored": 0, "reviews": int(stats["reviews"]),
              "quarantined": int(stats["quarantined"]), "forgotten": n_forgotten, "duplicates_collapsed": int(stats["dups"]) + int(n_cross),
              "users": int(stats["users"]), "items": int(stats["items"])}
    return {"counts": counts, "outputs": outputs}


def _drop_forgotten(ws: Workspace, reviews, quarantine):
    """Both frames without the forgotten users' rows, by :func:`jobs.forget.drop_forgotten` per batch."""
    root = str(ws.root.resolve())

    def reviews_kept(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for b in batches:
            yield drop_forgotten(Workspace(root), b, pd.DataFrame({"record": pd.Series([], dtype=object)}))[0]

    def quarantine_kept(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for b in batches:
            yield drop_forgotten(Workspace(root), pd.DataFrame({"user_id": pd.Series([], dtype=object)}), b)[1]

    return reviews.mapInPandas(reviews_kept, reviews.schema), quarantine.mapInPandas(quarantine_kept, quarantine.schema)
