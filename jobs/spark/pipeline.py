"""The pipeline stages on Spark, with the signatures of :mod:`jobs.pipeline`.

:class:`SparkPipeline` has ``ingest``, ``score``, ``profile``, ``train`` and ``recommend``
taking the same arguments as the embedded stage functions (minus nothing, plus the
session it was built with) and returning the same :class:`jobs.pipeline.StageResult`, so
the CLI runs either engine with the same code::

    stages = jobs.pipeline if args.engine == "embedded" else SparkPipeline.from_args(args)
    stages.ingest(ws, sources, mapping, items); stages.score(ws, scorer); ...
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from emorec import profiles, sentiment
from emorec.recommender import ServiceConfig

from ..pipeline import StageResult, resolve_scorer
from ..store import Workspace


class SparkPipeline:
    """The five stages on one SparkSession.

    Parameters
    ----------
    spark
        The session (see :func:`jobs.spark.session.get_session`).
    """

    engine = "spark"

    def __init__(self, spark) -> None:
        self.spark = spark

    @classmethod
    def from_options(cls, master: str | None = None, conf: Sequence[str] | dict | None = None) -> SparkPipeline:
        """A pipeline on the active session or a new one (``--master``, ``--conf k=v``)."""
        from .session import get_session, parse_conf

        return cls(get_session(master, conf if isinstance(conf, dict) else parse_conf(conf)))

    def _run(self, stage: str, fn, *args, **kwargs) -> StageResult:
        t0 = time.perf_counter()
        out = fn(self.spark, *args, **kwargs)
        res = StageResult(stage, counts=out["counts"], outputs=out["outputs"], notes=out.get("notes", []))
        res.seconds = time.perf_counter() - t0
        return res

    def ingest(self, ws: Workspace, sources: Sequence[Path], mapping: dict[str, str] | None = None,
               items: Path | None = None, replace: bool = False, pseudonymize_ids: bool = False) -> StageResult:
        """:func:`jobs.pipeline.ingest` on Spark (see :mod:`jobs.spark.ingest`): it replaces the
        stored reviews, so a workspace that has some needs ``replace``; ids are stored as given."""
        from emorec.common.errors import ConfigError

        from .ingest import ingest

        if pseudonymize_ids:
            raise ConfigError("--pseudonymize-ids is not available with --engine spark: ingest with the embedded engine")
        if not replace and ws.has_table("reviews"):
            raise ConfigError(f"--engine spark replaces the stored reviews of {ws.root}: add --replace to replace them, "
                              "or ingest with the embedded engine to add to them")

        res = self._run("ingest", ingest, ws, sources, mapping, items)
        if res.counts.get("quarantined"):
            res.notes.append(f"{res.counts['quarantined']} input rows quarantined in {ws.table_path('quarantine')}; "
                             "see `emorec query \"SELECT * FROM quarantine\"`")
        return res

    def score(self, ws: Workspace, scorer: sentiment.Scorer | None = None, workers: int | None = None) -> StageResult:
        """:func:`jobs.pipeline.score` on Spark (``workers`` is Spark's: ignored here)."""
        from .score import score

        return self._run("score", score, ws, scorer or resolve_scorer(ws))

    def profile(self, ws: Workspace, config: profiles.ProfileConfig | None = None) -> StageResult:
        """:func:`jobs.pipeline.profile` on Spark (see :mod:`jobs.spark.profiles`)."""
        from .profiles import profile

        return self._run("profile", profile, ws, config)

    def train(self, ws: Workspace, config: ServiceConfig | None = None, version: str = "latest",
              fallback: ServiceConfig | None = None) -> StageResult:
        """:func:`jobs.pipeline.train` on Spark: MLlib ALS, or the hybrid with its training
        candidates made per partition (see :mod:`jobs.spark.als`, :mod:`jobs.spark.hybrid`)."""
        from .als import train

        return self._run("train", train, ws, config, version, fallback)

    def recommend(self, ws: Workspace, n: int = 10) -> StageResult:
        """:func:`jobs.pipeline.recommend` on Spark."""
        from .als import recommend

        return self._run("recommend", recommend, ws, n)
