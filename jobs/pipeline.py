"""The pipeline stages. Each reads the previous stage's tables from the workspace and
writes its own: ingest -> score -> profile -> train -> recommend.

Stage functions are plain functions of a :class:`~jobs.store.Workspace` and a config; the
CLI (:mod:`jobs.cli`) only parses arguments, takes the workspace lock, records the run and
prints summaries.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
from pydantic import Field
from tqdm.auto import tqdm

from emorec import profiles, sentiment
from emorec.common.errors import ConfigError, InputError, NothingToLearnError
from emorec.recommender import RECOMMENDATION_COLUMNS, ModelConfig, RecommendationService, ServiceConfig, model_class
from emorec.sentiment.parallel import score_chunks

from .contract import QUARANTINE_COLUMNS, REVIEW_COLUMNS, conform
from .forget import drop_forgotten
from .ids import META_KEY as PSEUDONYMIZED_KEY
from .ids import check_consistent, pseudonymize
from .loaders import EmptyFileError, LoadResult, iter_review_chunks, load_items, quarantine_record
from .profile_buckets import build_user_profiles_bucketed
from .store import Workspace, WorkspaceError, crash_point

log = logging.getLogger(__name__)

SCORE_CHUNK = 2000
#: Reviews to score above which a parallel-capable scorer gets one worker process per core.
PARALLEL_MIN = 20_000
RECOMMENDER_MODEL = "recommender"


@dataclass
class StageResult:
    """What a stage did: counts, seconds, tables written, notes (information) and warnings
    (something the user should look at: rows quarantined, columns not used, a file skipped)."""

    stage: str
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


# --- ingest ---------------------------------------------------------------------------
def clean_reviews(result: LoadResult) -> LoadResult:
    """Clean and scrub review text for storage; rows left with no text move to quarantine."""
    reviews = result.reviews.copy()
    for col in ("title", "text"):
        reviews[col] = pd.Series([sentiment.prepare_for_storage(t) for t in reviews[col].fillna("")], index=reviews.index, dtype="string")
    empty = (reviews["title"] == "") & (reviews["text"] == "")
    if not empty.any():
        return LoadResult(reviews, result.quarantine, result.n_read, result.n_duplicates, result.source, result.columns)
    moved = result.reviews.loc[empty]
    q = pd.DataFrame({
        "source": moved["source"], "line": moved["line"], "user_id": moved["user_id"], "field": "text",
        "reason": "empty text after removing HTML and control characters",
        "record": [quarantine_record(r) for r in moved[["review_id", "user_id", "item_id", "title", "text"]]
                   .astype(object).where(moved[["review_id", "user_id", "item_id", "title", "text"]].notna(), None)
                   .to_dict("records")],
    })
    quarantine = pd.concat([result.quarantine, conform(q, QUARANTINE_COLUMNS)], ignore_index=True)
    return LoadResult(reviews.loc[~empty].reset_index(drop=True), quarantine, result.n_read, result.n_duplicates,
                      result.source, result.columns)


#: What makes two stored reviews with the same id the same review (else the newer one updates it).
_CONTENT = ["user_id", "item_id", "rating", "title", "text", "timestamp"]


def _reason_kinds(reasons: pd.Series) -> pd.Series:
    """Quarantine reasons without their values ("rating out of range 1..5: 9" -> "rating out of range 1..5")."""
    return (reasons.str.replace(r"\s*[:(].*$", "", regex=True)
            .str.replace(r"\bline \d+", "line N", regex=True).str.strip())


def _merge_stored(ws: Workspace, reviews: pd.DataFrame, quarantine: pd.DataFrame,
                  ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """The stored reviews plus the new ones: a review id already stored with the same content is
    skipped (``already_stored``), with different content it replaces the stored row (``updated``);
    the quarantine gains the new rows it does not hold yet."""
    stored = ws.read_table("reviews")
    incoming = reviews.set_index("review_id", drop=False)
    known = incoming.index.isin(stored["review_id"])
    old = stored.set_index("review_id", drop=False).loc[incoming.index[known]]
    same = (pd.util.hash_pandas_object(conform(old, REVIEW_COLUMNS)[_CONTENT], index=False).to_numpy()
            == pd.util.hash_pandas_object(conform(incoming.loc[known], REVIEW_COLUMNS)[_CONTENT], index=False).to_numpy())
    updated_ids = set(old.index[~same])
    fresh = incoming.loc[~known].reset_index(drop=True)
    changed = incoming.loc[known].loc[~same].reset_index(drop=True)
    kept = stored.loc[~stored["review_id"].isin(updated_ids)]
    merged = pd.concat([conform(kept, REVIEW_COLUMNS), conform(changed, REVIEW_COLUMNS),
                        conform(fresh, REVIEW_COLUMNS)], ignore_index=True)
    stored_q = conform(ws.read_table("quarantine"), QUARANTINE_COLUMNS) if ws.has_table("quarantine") else None
    if stored_q is not None:
        quarantine = pd.concat([stored_q, quarantine], ignore_index=True).drop_duplicates(
            subset=["source", "line", "field", "reason", "record"], keep="first", ignore_index=True)
    counts = {"added": len(fresh), "updated": len(changed), "already_stored": int(same.sum()), "before": len(stored)}
    return merged, quarantine, counts


def ingest(ws: Workspace, sources: Sequence[Path], mapping: dict[str, str] | None = None, items: Path | None = None,
           replace: bool = False, pseudonymize_ids: bool = False) -> StageResult:
    """Load, validate, clean and store review files.

    By default the new reviews are added to the stored ones, deduplicated by review id (the
    shop's id, or a hash of user, item, time, title and text): a review already stored is
    counted as ``already_stored``, one whose id is stored with a different content replaces it
    (``updated``). ``replace`` replaces the stored reviews and quarantine instead (the summary
    says how many were there before). An item table given with ``items`` is merged by item id
    (replaced with ``replace``).

    Nothing is changed when the files yield no review: a single file without any record, or
    files whose every record is quarantined, is an :class:`~emorec.common.errors.InputError`
    naming the files; in a multi-file ingest an empty file is skipped with a warning.
    ``pseudonymize_ids`` stores user ids as keyed hashes (:mod:`jobs.ids`).
    """
    res = StageResult("ingest")
    with _Timer() as t:
        if not sources:
            raise InputError("ingest needs at least one review file")
        check_consistent(ws, pseudonymize_ids, replace)
        loaded = []
        with tqdm(desc="ingest", unit="row", disable=None) as bar:
            for src in sources:
                try:
                    column_warnings = []
                    for chunk in iter_review_chunks(Path(src), mapping=mapping):
                        if chunk.columns is not None:
                            column_warnings = chunk.columns.warnings()
                        loaded.append(clean_reviews(chunk))
                        bar.update(chunk.n_read)
                    res.warnings.extend(column_warnings)
                except EmptyFileError as exc:
                    if len(sources) == 1:
                        raise EmptyFileError(f"{exc}; nothing was changed") from None
                    res.warnings.append(f"{exc}; skipped")
        if not loaded:
            raise EmptyFileError(f"none of the {len(sources)} review files holds a record: nothing was changed")
        reviews = pd.concat([r.reviews for r in loaded], ignore_index=True)
        quarantine = pd.concat([r.quarantine for r in loaded], ignore_index=True)
        dup_ids = reviews["review_id"].duplicated()
        if dup_ids.any():  # the same review id in two files: keep the first, quarantine the rest
            d = reviews.loc[dup_ids]
            q = pd.DataFrame({"source": d["source"], "line": d["line"], "user_id": d["user_id"], "field": "review_id",
                              "reason": "duplicate review_id across input files", "record": d["review_id"]})
            quarantine = pd.concat([quarantine, conform(q, QUARANTINE_COLUMNS)], ignore_index=True)
            reviews = reviews.loc[~dup_ids]
        reviews, quarantine, n_forgotten = drop_forgotten(ws, reviews, quarantine)  # right to erasure
        if pseudonymize_ids:
            reviews, quarantine = _pseudonymized(ws, reviews, quarantine)
        n_read = sum(r.n_read for r in loaded)
        if reviews.empty:
            files = ", ".join(str(s) for s in sources)
            raise InputError(f"no reviews in {files}: all {n_read:,} records were rejected ({len(quarantine):,} quarantined, "
                             f"{n_forgotten:,} of forgotten users); nothing was changed. Most common reasons: "
                             + ", ".join(f"{n} x {r}" for r, n in _reason_kinds(quarantine["reason"].astype(str))
                                         .value_counts().head(3).items()))
        n_quarantined, new_reasons = len(quarantine), quarantine["reason"].astype(str)
        merge = {}
        if not replace and ws.has_table("reviews"):
            reviews, quarantine, merge = _merge_stored(ws, reviews, quarantine)
        reviews = conform(reviews, REVIEW_COLUMNS)
        quarantine = conform(quarantine, QUARANTINE_COLUMNS)
        meta = {"sources": [str(s) for s in sources], PSEUDONYMIZED_KEY: bool(pseudonymize_ids)}
        tables = {"reviews": (reviews, meta), "quarantine": (quarantine, meta)}
        if items is not None:
            catalog = load_items(Path(items), mapping=None)
            if not replace and ws.has_table("items"):
                stored = ws.read_table("items")
                catalog = pd.concat([stored.loc[~stored["item_id"].isin(catalog["item_id"])], catalog], ignore_index=True)
            tables["items"] = (catalog, {"source": str(items)})
        before = len(ws.read_table("reviews", columns=["review_id"])) if replace and ws.has_table("reviews") else None
        res.outputs.extend(str(path) for path in ws.write_tables(tables).values())
    res.seconds = t.seconds
    added = merge.get("added", len(reviews))
    res.counts = {
        "read": n_read, "added": added, "updated": merge.get("updated", 0),
        "already_stored": merge.get("already_stored", 0), "quarantined": n_quarantined, "forgotten": n_forgotten,
        "duplicates_collapsed": sum(r.n_duplicates for r in loaded) + int(dup_ids.sum()),
        "reviews": len(reviews), "users": int(reviews["user_id"].nunique()), "items": int(reviews["item_id"].nunique()),
    }
    if before is not None:
        res.notes.append(f"--replace: the {before:,} stored reviews were replaced by these {len(reviews):,}")
    elif merge:
        res.notes.append(f"added {added:,} new reviews to the {merge['before']:,} stored "
                         f"({merge['already_stored']:,} were already stored, {merge['updated']:,} updated); "
                         f"the workspace now holds {len(reviews):,} (--replace replaces instead of adding)")
    if n_quarantined:
        reasons = _reason_kinds(new_reasons).value_counts().head(5)
        res.warnings.append(
            f"{n_quarantined:,} input rows quarantined in {ws.table_path('quarantine')} ("
            + ", ".join(f"{n} {r}" for r, n in reasons.items())
            + f"); see `emorec query -w {ws.root} \"SELECT * FROM quarantine\"`"
        )
    return res


def _pseudonymized(ws: Workspace, reviews: pd.DataFrame, quarantine: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reviews and quarantine with user ids replaced by their pseudonyms (also inside quarantined records)."""
    reviews = reviews.assign(user_id=pseudonymize(ws, reviews["user_id"]).to_numpy())
    if len(quarantine) and quarantine["user_id"].notna().any():
        raw = quarantine["user_id"].astype("string")
        pseudo = pseudonymize(ws, raw)
        records = [rec.replace(r, p) if isinstance(rec, str) and isinstance(r, str) and r else rec
                   for rec, r, p in zip(quarantine["record"].astype(object), raw.astype(object), pseudo.astype(object))]
        quarantine = quarantine.assign(user_id=pseudo.to_numpy(), record=records)
    return reviews, quarantine


# --- score ----------------------------------------------------------------------------
SENTIMENT_MODEL = "sentiment"


def resolve_scorer(ws: Workspace, name: str = "auto", model_path: Path | None = None,
                   aspects: Path | None = None, quantize: bool = False, threads: int | None = None,
                   precision: str | None = None) -> sentiment.Scorer:
    """The scorer a run uses.

    ``auto`` is the transformer with, in this order, ``model_path``, the workspace's fine-tuned
    model (made by ``emorec train-sentiment``) or the shipped emotion model; only when none of
    them exists (an install without ``sentiment/models/default``) does it fall back to the
    lexicon scorer, with a warning. ``transformer`` uses the same models but never falls back:
    a missing model is an error naming the path. ``aspects`` is a TOML file adding or
    overriding aspects. ``threads``: the transformer's torch threads (default: the cores this
    process may use); the lexicon takes its worker processes from :func:`score`. ``precision``:
    the transformer's ``fp32`` (default), ``bf16`` or ``int8`` (``quantize=True`` means ``int8``);
    either one given with ``name="lexicon"`` is a :class:`ConfigError` (with ``auto``, the
    lexicon fallback ignores them).
    """
    from emorec.sentiment.aspects import AspectConfig
    from emorec.sentiment.transformer import SHIPPED_MODEL

    aspect_config = AspectConfig.from_toml(aspects) if aspects else AspectConfig()
    tuned = None
    with contextlib.suppress(WorkspaceError):
        tuned = ws.model_path(SENTIMENT_MODEL)
    fallback = name == "auto"
    if name == "auto":
        if model_path or tuned or (SHIPPED_MODEL / "config.json").exists():
            name = "transformer"
        else:
            log.warning("no transformer model (the shipped one is missing at %s): scoring with the lexicon", SHIPPED_MODEL)
            name = "lexicon"
    if name == "transformer":
        path = Path(model_path) if model_path else tuned
        return sentiment.get_scorer("transformer", model_path=path, aspects=aspect_config, quantize=quantize, threads=threads,
                                    precision=precision)
    if model_path:
        raise ConfigError(f"--sentiment-model is only used by the transformer scorer, not {name!r}")
    if (quantize or precision) and not fallback:
        raise ConfigError(f"--quantize and --precision are only used by the transformer scorer, not {name!r}")
    return sentiment.get_scorer(name, aspects=aspect_config)


def checkpoint_key(scorer: sentiment.Scorer) -> str:
    """Checkpoints are only reused by the same scorer (model version and score schema)."""
    import hashlib

    return hashlib.sha256(f"{scorer.model_version}|{sentiment.SCHEMA_VERSION}".encode()).hexdigest()[:16]


def _values(column: pd.Series, dtype: str) -> np.ndarray:
    """A score column as the array the stage assembles: float64 with NaN, or objects with None."""
    if dtype == "string":
        return column.astype(object).where(column.notna(), None).to_numpy(dtype=object)
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def score(ws: Workspace, scorer: sentiment.Scorer | None = None, workers: int | None = None,
          threads: int | None = None) -> StageResult:
    """Score every review; rows whose text and scorer are unchanged are reused, not rescored.

    ``workers`` processes score in parallel when the scorer gains from it (the lexicon);
    by default one per usable core (``threads``, else :func:`emorec.common.cpus.available_cpus`)
    once there are more than :data:`PARALLEL_MIN` reviews to score. The transformer scores in
    this process with its own torch threads (see :func:`resolve_scorer`).

    Every chunk of :data:`SCORE_CHUNK` newly scored reviews is checkpointed at once
    (``partial/review_scores/<key>/part-NNNNNN.parquet``, written atomically), so a run killed
    mid-scoring keeps its work: the next run reuses the checkpointed scores (counted as
    ``resumed``) and scores only the rest. ``review_scores`` itself is written once, at the
    end, and the checkpoints are then removed. Progress moves per scored batch (a bar on a
    terminal, a log line every few seconds without one).
    """
    from emorec.common.cpus import available_cpus
    from emorec.common.progress import Progress

    res = StageResult("score")
    with _Timer() as t:
        scorer = scorer or resolve_scorer(ws, threads=threads)
        columns = list(scorer.columns)
        kinds = sentiment.schema.checkpoint_dtypes(scorer.columns)
        reviews = ws.read_table("reviews", columns=["review_id", "title", "text"])
        texts = sentiment.review_text(reviews["title"], reviews["text"])
        hashes = sentiment.text_hash(texts)
        n = len(reviews)
        features = {c: (np.full(n, None, dtype=object) if k == "string" else np.full(n, np.nan)) for c, k in kinds.items()}

        def take(rows: np.ndarray, frame: pd.DataFrame) -> None:
            for c in columns:
                features[c][rows] = _values(frame[c], kinds[c])

        todo = np.ones(n, dtype=bool)
        if ws.has_table("review_scores") and ws.table_metadata("review_scores").get("model_version") == scorer.model_version:
            cached = ws.read_table("review_scores").drop_duplicates("text_hash").set_index("text_hash")
            hit = hashes.isin(cached.index).to_numpy()
            if hit.any():
                take(np.flatnonzero(hit), cached.loc[hashes[hit], columns])
            todo = ~hit
        reused = int((~todo).sum())
        key = checkpoint_key(scorer)
        parts = [p for p in ws.read_parts("review_scores", key) if set(columns) <= set(p.columns)]
        if parts:  # an earlier run was stopped mid-scoring: take its checkpointed chunks
            done = pd.concat(parts, ignore_index=True).drop_duplicates("text_hash").set_index("text_hash")
            hit = todo & hashes.isin(done.index).to_numpy()
            if hit.any():
                take(np.flatnonzero(hit), done.loc[hashes[hit], columns])
            todo = todo & ~hit
        resumed = n - reused - int(todo.sum())
        n_parts = len(parts)
        idx = np.flatnonzero(todo)
        if workers is None:
            workers = (threads or available_cpus()) if (scorer.parallel and len(idx) > PARALLEL_MIN) else 1
        chunks = [idx[start:start + SCORE_CHUNK] for start in range(0, len(idx), SCORE_CHUNK)]
        with Progress(len(idx), f"score ({scorer.name})", unit="review", logger=log) as bar:
            scored = score_chunks(scorer, (texts.iloc[c].tolist() for c in chunks), workers, progress=bar.update)
            for chunk, part in zip(chunks, scored):
                take(chunk, part)
                checkpoint = pd.DataFrame({"text_hash": hashes.iloc[chunk].to_numpy(), **{c: features[c][chunk] for c in columns}})
                ws.write_part("review_scores", key, n_parts, checkpoint.astype(kinds))
                n_parts += 1
                crash_point("score:part")
        dtypes = {**sentiment.schema.KEY_COLUMNS, **scorer.columns}
        out = pd.concat([reviews[["review_id"]], hashes.rename("text_hash"), pd.DataFrame(features, index=reviews.index)], axis=1).astype(dtypes)
        meta = {"schema_version": sentiment.SCHEMA_VERSION, "scorer": scorer.name, "model_version": scorer.model_version,
                "aspects": scorer.aspects.model_dump(), "thresholds": scorer.thresholds}
        res.outputs.append(str(ws.write_table("review_scores", out, meta)))
        ws.clear_parts("review_scores")
    res.seconds = t.seconds
    res.counts = {"scored": int(todo.sum()), "reused": reused, "resumed": resumed, "empty_text": int(out["is_empty"].sum())}
    res.notes.append(f"scorer {scorer.model_version}")
    return res


def train_sentiment(ws: Workspace, training=None, max_train: int | None = None, base_model: Path | None = None,
                    version: str = "latest", ngram_head: bool = True, long_reviews: int | None = None) -> StageResult:
    """Fine-tune the transformer's polarity on the stored reviews' stars (with a shop n-gram head
    blended in when it helps on the dev users, unless ``ngram_head`` is False, and with
    ``long_reviews`` synthetic long reviews added to the training reviews: None for the default
    share, :data:`sentiment.finetune.LONG_REVIEW_SHARE`, 0 for none); publish it."""
    import json

    from emorec.sentiment.finetune import SHOP_NGRAM_HEAD, finetune_polarity
    from emorec.sentiment.transformer import SHIPPED_MODEL

    res = StageResult("train-sentiment")
    with _Timer() as t:
        reviews = ws.read_table("reviews", columns=["user_id", "title", "text", "rating"])
        texts = sentiment.review_text(reviews["title"], reviews["text"]).tolist()
        model, report = finetune_polarity(texts, reviews["rating"].to_numpy(dtype=np.float64, na_value=np.nan),
                                          reviews["user_id"].to_numpy(dtype=object), base_model or SHIPPED_MODEL,
                                          training=training, max_train=max_train, ngram_head=SHOP_NGRAM_HEAD if ngram_head else None,
                                          long_reviews=long_reviews)
        with ws.new_model_version(SENTIMENT_MODEL, version) as folder:
            model.save_pretrained(folder)
            (folder / "eval.json").write_text(json.dumps(report, indent=2))
        res.outputs.append(str(ws.model_path(SENTIMENT_MODEL)))
    res.seconds = t.seconds
    res.counts = {**report["split"], "steps": report["steps"]}
    blend = "" if report["ngram_blend"] is None else f", blended with the shop n-gram head (transformer weight {report['ngram_blend']})"
    res.notes.append(
        f"held-out users ({report['split_users']['test']}): accuracy {report['accuracy']:.3f}, macro-F1 {report['macro_f1']:.3f}{blend}; "
        f"report in {ws.model_path(SENTIMENT_MODEL) / 'eval.json'}"
    )
    return res


# --- profile --------------------------------------------------------------------------
def scored_reviews(ws: Workspace) -> pd.DataFrame:
    """Reviews joined with their scores (the input of the profile stage)."""
    reviews = ws.read_table("reviews", columns=["review_id", "user_id", "item_id", "rating", "timestamp"])
    scores = ws.read_table("review_scores")
    missing = ~reviews["review_id"].isin(scores["review_id"])
    if missing.any():
        raise WorkspaceError(f"{int(missing.sum())} reviews have no scores (the reviews changed after scoring); run `emorec score`")
    return reviews.merge(scores, on="review_id", how="inner", validate="one_to_one")


def profile(ws: Workspace, config: profiles.ProfileConfig | None = None) -> StageResult:
    """Build user and item profiles from scored reviews."""
    config = config or profiles.ProfileConfig()
    res = StageResult("profile")
    with _Timer() as t:
        scored = scored_reviews(ws)
        catalog = ws.read_table("items") if ws.has_table("items") else None
        users = build_user_profiles_bucketed(scored, config, items=catalog)  # same table, linear time
        items = profiles.build_item_profiles(scored, config, items=catalog)
        meta = {"config": config.model_dump(), "score_metadata": ws.table_metadata("review_scores")}
        written = ws.write_tables({"user_profiles": (users, {**meta, "version": profiles.USER_PROFILE_VERSION}),
                                   "item_profiles": (items, {**meta, "version": profiles.ITEM_PROFILE_VERSION})})
        res.outputs.extend(str(path) for path in written.values())
    res.seconds = t.seconds
    res.counts = {"user_profiles": len(users), "item_profiles": len(items)}
    return res


# --- train / recommend ----------------------------------------------------------------
#: What ``--model auto`` prefers (the best model on the Amazon benchmark, with explanations)
#: and what it falls back to (it scales to any catalog and needs nothing but interactions).
AUTO_PREFERRED, AUTO_FALLBACK = "hybrid", "als"


class AutoBudget(ModelConfig):
    """What ``--model auto`` may spend on training (``--budget-gb``, ``--budget-minutes``)."""

    section: ClassVar[str] = "auto budget"
    memory_gb: float = Field(8.0, gt=0, description="peak memory of the training process")
    minutes: float = Field(60.0, gt=0, description="training time")


@dataclass(frozen=True)
class DataCounts:
    """The sizes a training cost is estimated from."""

    reviews: int
    users: int
    items: int


@dataclass(frozen=True)
class CostEstimate:
    """Estimated peak memory and time of training one model on some :class:`DataCounts`."""

    model: str
    memory_gb: float
    minutes: float
    note: str = ""

    def fits(self, budget: AutoBudget) -> bool:
        return self.memory_gb <= budget.memory_gb and self.minutes <= budget.minutes

    def describe(self) -> str:
        return f"about {self.memory_gb:.1f} GB and {self.minutes:.0f} min to train{self.note}"


#: Cost model of training, fitted to ``benchmarks/scale_hybrid.py`` on a 2-core machine shared
#: with other jobs (the hybrid's defaults on the scaled demo shop with lexicon scores: 200k
#: reviews / 20k users and 2M reviews / 200k users on 50k items, 1.5 and 5.6 GiB peak, 2 and
#: 6 min): fixed cost, per review (the rounds' generator fits and feature states), per training
#: query (its rows for LightGBM) and per query x item (the factor generators rank every item for
#: each query), per EASE item^3 (its Cholesky, when the generator fits its memory budget).
HYBRID_COST = {"gb": 0.4, "gb_per_review": 2.1e-6, "gb_per_query": 2.0e-5,
               "s": 10.0, "s_per_review": 1.0e-4, "s_per_query": 1.5e-3, "s_per_query_item": 2.5e-8,
               "s_per_ease_item3": 2.5e-11}
#: ALS (implicit, 15 iterations): the review table and the matrices; per review and iteration.
ALS_COST = {"gb": 0.4, "gb_per_review": 0.8e-6, "s": 5.0, "s_per_review": 1.5e-5}


def estimate_cost(model: str, counts: DataCounts, params: dict | None = None) -> CostEstimate:
    """Estimated peak memory and training time of ``model`` (``hybrid`` or ``als``) on ``counts``.

    The hybrid: reviews and profiles held in memory, its training queries (at most
    ``max_train_queries``), candidate generation over the catalog for each of them, and its EASE
    generators only when they fit their own ``max_memory_gb`` (a dense items x items matrix each,
    a Cholesky factorisation cubic in the items); otherwise they are left out (said in ``note``).
    """
    from emorec.recommender.ease import ease_memory_gb
    from emorec.recommender.hybrid import HybridConfig

    r, u, i = counts.reviews, counts.users, counts.items
    if model == AUTO_FALLBACK:
        c = ALS_COST
        return CostEstimate(model, c["gb"] + c["gb_per_review"] * r, (c["s"] + c["s_per_review"] * r) / 60)
    try:
        config = HybridConfig(**(params or {}))
    except ValueError:  # parameters of another model: the estimate of the defaults
        config = HybridConfig()
    c = HYBRID_COST
    queries = min(u * config.rounds, config.max_train_queries or u * config.rounds)
    gb = c["gb"] + c["gb_per_review"] * r + c["gb_per_query"] * queries
    s = c["s"] + c["s_per_review"] * r + queries * (c["s_per_query"] + c["s_per_query_item"] * i)
    eases = [n for n in ("ease", "ease_emotion") if n in config.generators]
    note = ""
    for n in eases:
        budget = config.generators[n].get("max_memory_gb", 4.0)
        if ease_memory_gb(i) <= budget:
            gb += ease_memory_gb(i)
            s += c["s_per_ease_item3"] * float(i) ** 3 * (config.rounds + 1)
        else:
            note = f"; its EASE generators left out (over their {budget:g} GB)"
    return CostEstimate(model, gb, s / 60, note)


def _counts(ws: Workspace) -> tuple[DataCounts, int]:
    stats = ws.query("SELECT count(*) AS reviews, count(DISTINCT user_id) AS users, count(DISTINCT item_id) AS items, "
                     "count(timestamp) AS stamped FROM reviews").iloc[0]
    items = int(stats["items"])
    if ws.has_table("items"):
        items = int(ws.query("SELECT count(*) AS n FROM (SELECT item_id FROM reviews UNION SELECT item_id FROM items)")
                    .iloc[0]["n"])
    return DataCounts(int(stats["reviews"]), int(stats["users"]), items), int(stats["stamped"])


def auto_model(ws: Workspace, budget: AutoBudget | None = None, params: dict | None = None) -> tuple[str, str]:
    """The model ``emorec train --model auto`` (the default) trains, and why.

    :data:`AUTO_PREFERRED` (the hybrid) when the workspace gives it what its class says it
    uses (scored reviews, timestamps) and its estimated training cost (:func:`estimate_cost`)
    fits ``budget``; :data:`AUTO_FALLBACK` (ALS) otherwise. The reason names the estimates.
    """
    budget = budget or AutoBudget()
    preferred = model_class(AUTO_PREFERRED)
    counts, stamped = _counts(ws)
    if preferred.uses_scores and not ws.has_table("review_scores"):
        return AUTO_FALLBACK, f"no review scores (run `emorec score` first for the {AUTO_PREFERRED})"
    if preferred.needs_timestamps and stamped == 0:
        return AUTO_FALLBACK, f"the reviews have no timestamps (the {AUTO_PREFERRED} trains on each user's next review)"
    size = f"{counts.reviews:,} reviews, {counts.users:,} users, {counts.items:,} items"
    within = f"the budget of {budget.memory_gb:g} GB and {budget.minutes:g} min"
    hybrid = estimate_cost(AUTO_PREFERRED, counts, params)
    if hybrid.fits(budget):
        return AUTO_PREFERRED, f"{size}: the {AUTO_PREFERRED} needs {hybrid.describe()}, within {within}"
    als = estimate_cost(AUTO_FALLBACK, counts)
    over = f"{size}: the {AUTO_PREFERRED} would need {hybrid.describe()}, over {within}"
    if not als.fits(budget):
        over += f" (ALS too needs {als.describe()}; raise --budget-gb / --budget-minutes)"
    return AUTO_FALLBACK, over


def training_inputs(ws: Workspace, config: ServiceConfig) -> tuple[pd.DataFrame, dict]:
    """The stored reviews and the other ``RecommendationService.fit`` inputs for ``config``: the
    review scores and the catalog when the model uses scores (``uses_scores``) or the
    interactions are emotion-weighted; for a model that explains, also the review texts (the
    quotes of its explanations) and the aspect config the scores were made with."""
    cls = model_class(config.model)
    emotional = cls.uses_scores or config.interactions.weighting == "emotion"
    columns = ["review_id", "user_id", "item_id", "rating", "timestamp"] if emotional else ["user_id", "item_id", "rating", "timestamp"]
    inputs = {}
    if emotional:
        inputs["scores"] = ws.read_table("review_scores") if ws.has_table("review_scores") else None
        inputs["items"] = ws.read_table("items") if ws.has_table("items") else None
    if emotional and cls.explains:
        columns += ["title", "text"]
        if inputs["scores"] is not None:
            from emorec.sentiment.aspects import AspectConfig

            stored = ws.table_metadata("review_scores").get("aspects")
            inputs["aspects"] = AspectConfig(**stored) if stored else None
    return ws.read_table("reviews", columns=columns), inputs


def train(ws: Workspace, config: ServiceConfig | None = None, version: str = "latest",
          fallback: ServiceConfig | None = None) -> StageResult:
    """Train the recommender on the stored reviews and publish it in the workspace.

    ``fallback``: trained instead (with a note) when ``config``'s model cannot learn from these
    reviews (the hybrid finds no training query in a tiny shop).
    """
    config = config or ServiceConfig()
    res = StageResult("train")
    with _Timer() as t:
        reviews, kw = training_inputs(ws, config)
        try:
            service = RecommendationService(config).fit(reviews, **kw)
        except NothingToLearnError as exc:
            if fallback is None:
                raise
            res.notes.append(f"{config.model} could not train ({exc}); trained {fallback.model} instead")
            log.warning("%s could not train (%s); training %s instead", config.model, exc, fallback.model)
            service = RecommendationService(fallback).fit(reviews, **kw)
        with ws.new_model_version(RECOMMENDER_MODEL, version) as folder:
            service.save_pretrained(folder)
        res.outputs.append(str(ws.model_path(RECOMMENDER_MODEL)))
        res.notes.extend(model_notes(service))
    res.seconds = t.seconds
    res.counts = {"train_users": len(service.users_), "train_items": len(service.items_), "interactions": int(service.seen_.nnz)}
    return res


def model_notes(service: RecommendationService) -> list[str]:
    """What the run summary says about a trained model: generators it left out and why."""
    return [f"{service.model_.name} generator {n} left out: {why}"
            for n, why in getattr(service.model_, "dropped_", {}).items()]


def load_service(ws: Workspace) -> RecommendationService:
    return RecommendationService.from_pretrained(ws.model_path(RECOMMENDER_MODEL))


def recommend(ws: Workspace, n: int = 10, service: RecommendationService | None = None) -> StageResult:
    """Top-``n`` for every user the recommender knows, written to ``recommendations``."""
    res = StageResult("recommend")
    with _Timer() as t:
        service = service or load_service(ws)
        recs = service.recommend(service.users_.ids.tolist(), n=n)
        res.outputs.append(str(ws.write_table("recommendations", recs.astype(RECOMMENDATION_COLUMNS), {"n": n})))
    res.seconds = t.seconds
    res.counts = {"users": int(recs["user_id"].nunique()), "recommendations": len(recs),
                  "from_fallback": int((recs["source"] == service.fallback_.name).sum())}
    if "reason_type" in recs.columns:  # explanations without a reason that clears its evidence threshold
        res.counts["generic_reasons"] = int((recs["reason_type"] == "generic").sum())
    return res
