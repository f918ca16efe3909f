"""The ``emorec`` command line.

Every stage is a sub-command reading and writing one workspace folder; ``run`` chains them.
Run ``emorec <command> --help`` for the options of each.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import pandas as pd

from emorec.profiles import ProfileConfig
from emorec.common.errors import ConfigError
from emorec.recommender import ArtifactError, ServiceConfig, model_class
from emorec.recommender.service import MODEL_NAMES

from . import evaluate_commands, forget_commands, pipeline, profile_commands
from .pipeline import AutoBudget
from .loaders import SchemaError, parse_mapping
from .runs import fingerprint, recorded_run
from .store import DEFAULT_WORKSPACE, Workspace, WorkspaceError

log = logging.getLogger("emorec")

DEMO_DIR = "demo"


# --- argument parsing -----------------------------------------------------------------
def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-w", "--workspace", type=Path, default=DEFAULT_WORKSPACE, help="workspace folder (default: %(default)s)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    return p


def _ingest_args(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--reviews", type=Path, nargs="+", required=required, metavar="PATH",
                   help="review files: Amazon JSON lines (.json/.jsonl, optionally .gz), CSV/TSV or Parquet")
    p.add_argument("--items", type=Path, metavar="PATH", help="optional item table (item_id, title, category, price)")
    p.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                   help="column mapping, e.g. --map user=customer_id --map text=body (repeatable)")


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=["auto", *MODEL_NAMES], default="auto",
                   help="primary recommender: hybrid (LightGBM re-ranker over CF and sequential candidates with "
                        "emotional features; reads review_scores), als, popular, itemknn, ease or bpr; auto = the "
                        "hybrid for scored, time-stamped reviews when its estimated training cost fits the budget "
                        "(--budget-gb, --budget-minutes), ALS otherwise (default: %(default)s)")
    p.add_argument("--budget-gb", type=float, default=AutoBudget().memory_gb,
                   help="--model auto: peak training memory the chosen model may need (default: %(default)s)")
    p.add_argument("--budget-minutes", type=float, default=AutoBudget().minutes,
                   help="--model auto: training time the chosen model may need (default: %(default)s)")
    p.add_argument("--model-params", type=json.loads, default=None, metavar="JSON",
                   help='model parameters, e.g. \'{"l2": 200}\' (ease) or \'{"emotion_features": false}\' (hybrid)')
    p.add_argument("--factors", type=int, help="latent factors of the models that have them (als, bpr; default: the "
                   "model's, 64)")
    p.add_argument("--iterations", type=int, help="training iterations of the models that have them (als: 15, bpr: 100 "
                   "by default)")
    p.add_argument("--seed", type=int, default=42, help="random seed of the models that have one (default: %(default)s)")


def _score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scorer", choices=["auto", "lexicon", "transformer"], default="auto",
                   help="review scorer; auto = transformer (the workspace's fine-tuned model, else the shipped one), lexicon only when no model exists (default: %(default)s)")
    p.add_argument("--sentiment-model", type=Path, metavar="DIR", help="transformer model folder (default: the workspace's fine-tuned one, else the shipped emotion model)")
    p.add_argument("--aspects", type=Path, metavar="TOML", help="aspect config adding or overriding aspects ([aspects] name = [seed words])")
    p.add_argument("--quantize", action="store_true", help="int8 dynamic quantization of the transformer (faster on CPU)")


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=["embedded", "spark"], default="embedded",
                   help="embedded: this process (default); spark: Apache Spark (pip install 'emorec[spark]', Java 17)")
    p.add_argument("--master", metavar="URL", help="Spark master, e.g. local[4], yarn, k8s://... (default: $SPARK_MASTER, "
                   "spark-submit's, else local[*]); only with --engine spark")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                   help="Spark option, e.g. --conf spark.executor.memory=4g (repeatable); only with --engine spark")


def _profile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--half-life-days", type=float, default=180.0, help="recency half-life of profiles (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(prog="emorec", description="Emotion-aware recommendation and user profiling from product reviews.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", parents=[common], help="all stages: ingest, score, profile, train, recommend (demo shop if no --reviews)")
    _ingest_args(p, required=False)
    p.add_argument("--demo-users", type=int, default=1000, help="size of the generated demo shop when no --reviews (default: %(default)s)")
    p.add_argument("-n", "--top-n", type=int, default=10, help="items per user (default: %(default)s)")
    _score_args(p)
    _profile_args(p)
    _train_args(p)
    _engine_args(p)

    p = sub.add_parser("demo", parents=[common], help="write a generated demo shop to disk")
    p.add_argument("--users", type=int, default=1000, help="number of users (default: %(default)s)")
    p.add_argument("--items", type=int, default=300, help="number of items (default: %(default)s)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("emorec-demo"), help="output folder (default: %(default)s)")

    p = sub.add_parser("ingest", parents=[common], help="load and validate review files into the workspace")
    _ingest_args(p, required=True)
    _engine_args(p)

    p = sub.add_parser("score", parents=[common], help="score every review (polarity, emotions, aspects)")
    _score_args(p)
    _engine_args(p)

    p = sub.add_parser("train-sentiment", parents=[common], help="fine-tune the transformer on the shop's reviews (stars as labels)")
    p.add_argument("--epochs", type=int, default=2, help="training epochs (default: %(default)s)")
    p.add_argument("--max-train", type=int, help="subsample the training reviews to bound CPU time")
    p.add_argument("--max-length", type=int, default=160, help="tokens per review while training (default: %(default)s)")
    p.add_argument("--seed", type=int, default=13, help="random seed (default: %(default)s)")
    p.add_argument("--threads", type=int, help="torch threads (fix it for bit-identical reruns)")
    p.add_argument("--device", default="auto", help="auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda, cuda:1, ...")

    p = sub.add_parser("train-emotions", help="reproduce the shipped emotion model from GoEmotions (see its MODEL_CARD.md)", add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments of python -m emorec.jobs.train_emotions (--help for them)")
    p.set_defaults(verbose=0, quiet=False, workspace=DEFAULT_WORKSPACE)

    p = sub.add_parser("profile", parents=[common], help="build user and item profiles")
    _profile_args(p)
    _engine_args(p)

    p = sub.add_parser("train", parents=[common], help="train the recommender")
    _train_args(p)
    _engine_args(p)

    p = sub.add_parser("recommend", parents=[common], help="top-N lists: one user (--user) or all users into the workspace")
    p.add_argument("--user", action="append", metavar="ID", help="print the list of this user (repeatable); without it, lists for all users are written")
    p.add_argument("-n", "--top-n", type=int, default=10, help="items per user (default: %(default)s)")
    p.add_argument("--exclude", nargs="+", metavar="ITEM", help="item ids never to recommend")
    p.add_argument("--include-seen", action="store_true", help="allow items the user already reviewed")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    _engine_args(p)

    p = sub.add_parser("similar", parents=[common], help="items similar to an item, by the trained model's item similarity")
    p.add_argument("--item", required=True, metavar="ID", help="the item id")
    p.add_argument("-n", "--top-n", type=int, default=10, help="similar items to list (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")

    p = sub.add_parser("query", parents=[common], help="run SQL (DuckDB) over the workspace tables")
    p.add_argument("sql", help='e.g. "SELECT * FROM recommendations LIMIT 10"')

    sub.add_parser("runs", parents=[common], help="list recorded runs, newest first")
    profile_commands.add_parsers(sub, common)
    evaluate_commands.add_parsers(sub, common)
    forget_commands.add_parsers(sub, common)
    return parser


# --- commands -------------------------------------------------------------------------
def _service_config(args, model: str, params: dict | None = None, strict: bool = True) -> ServiceConfig:
    """``model`` with ``params``, plus ``--factors``, ``--iterations`` (when given) and ``--seed``
    for the models whose config has those fields; ``strict``: ``--factors``/``--iterations``
    given for a model without them is an error, not an option silently dropped."""
    params = dict(params or {})
    fields = model_class(model).Config.model_fields
    for name, value in (("factors", args.factors), ("iterations", args.iterations), ("seed", args.seed)):
        if value is not None and name in fields:
            params.setdefault(name, value)
        elif value is not None and strict and name != "seed":
            raise ConfigError(f"--{name} does not apply to the {model} model (its parameters: {', '.join(fields)})")
    return ServiceConfig(model=model, params=params)


def _train(stages, args, ws: Workspace, version: str) -> pipeline.StageResult:
    """The train stage with ``--model`` resolved (``auto``: :func:`jobs.pipeline.auto_model`, the
    hybrid when its estimated cost fits ``--budget-gb`` / ``--budget-minutes``, on either engine)."""
    if args.model != "auto":
        return stages.train(ws, _service_config(args, args.model, args.model_params), version=version)
    budget = AutoBudget(memory_gb=args.budget_gb, minutes=args.budget_minutes)
    model, reason = pipeline.auto_model(ws, budget, args.model_params)
    try:
        config = _service_config(args, model, args.model_params, strict=False)
    except ConfigError as exc:
        raise ConfigError(f"--model auto chose {model} ({reason}), which does not take --model-params ({exc}); "
                          "give an explicit --model") from None
    log.info("--model auto: %s (%s)", model, reason)
    fallback = None
    if model != pipeline.AUTO_FALLBACK:  # a shop too small for the preferred model still gets one
        fallback = _service_config(args, pipeline.AUTO_FALLBACK, strict=False)
    result = stages.train(ws, config, version=version, **({"fallback": fallback} if fallback else {}))
    result.notes.append(f"--model auto chose {model}: {reason}")
    return result


def _scorer(args, ws: Workspace):
    return pipeline.resolve_scorer(ws, args.scorer, args.sentiment_model, args.aspects, args.quantize)


def _sentiment_training(args):
    from dataclasses import replace

    from emorec.sentiment.finetune import SHOP_TRAINING

    return replace(SHOP_TRAINING, epochs=args.epochs, max_length=args.max_length, seed=args.seed, threads=args.threads, device=args.device)


def _stages(args):
    """The stage functions of the chosen engine: :mod:`jobs.pipeline` or a Spark pipeline."""
    if getattr(args, "engine", "embedded") != "spark":
        if getattr(args, "master", None) or getattr(args, "conf", None):
            raise ValueError("--master and --conf are Spark options: add --engine spark")
        return pipeline
    from .spark.pipeline import SparkPipeline

    return SparkPipeline.from_options(args.master, args.conf)


def _report(results: list[pipeline.StageResult], out) -> None:
    for r in results:
        counts = ", ".join(f"{k}={v:,}" for k, v in r.counts.items())
        out.write(f"  {r.stage:<10} {r.seconds:7.2f}s  {counts}\n")
        for note in r.notes:
            out.write(f"             ! {note}\n")


def _demo_sources(ws: Workspace, users: int, seed: int) -> tuple[list[Path], Path]:
    from .demo_shop import generate_demo_shop

    folder = ws.root / DEMO_DIR
    shop = generate_demo_shop(n_users=users, seed=seed)
    paths = shop.write(folder)
    log.info("demo shop with %d users, %d reviews written to %s", users, len(shop.reviews), folder)
    return [Path(paths["reviews"])], Path(paths["items"])


def cmd_run(args, ws: Workspace, out) -> int:
    mapping = parse_mapping(args.map)
    t0 = time.perf_counter()
    with recorded_run(ws, "run", vars_config(args)) as run:
        if args.reviews:
            sources, items = args.reviews, args.items
        else:
            sources, items = _demo_sources(ws, args.demo_users, args.seed)
        run.data_fingerprint = fingerprint(sources + ([items] if items else []))
        stages = _stages(args)
        results = [stages.ingest(ws, sources, mapping, items)]
        results.append(stages.score(ws, _scorer(args, ws)))
        results.append(stages.profile(ws, ProfileConfig(half_life_days=args.half_life_days)))
        results.append(_train(stages, args, ws, run.run_id))
        results.append(stages.recommend(ws, args.top_n))
        for r in results:
            run.counts.update({f"{r.stage}.{k}": v for k, v in r.counts.items()})
            run.timings[r.stage] = round(r.seconds, 3)
    out.write(f"emorec run {run.run_id} finished in {time.perf_counter() - t0:.1f}s ({'demo shop' if not args.reviews else ', '.join(map(str, sources))})\n")
    _report(results, out)
    example = ws.read_table("recommendations").iloc[0]["user_id"]
    out.write(
        f"\nOutputs in {ws.root}/tables/: {', '.join(ws.tables())}\n"
        f"  one user's list:  emorec recommend -w {ws.root} --user {example}\n"
        f"  query with SQL:   emorec query -w {ws.root} \"SELECT * FROM recommendations WHERE user_id = '{example}'\"\n"
        f"  or with DuckDB:   SELECT * FROM '{ws.table_path('recommendations')}'\n"
    )
    return 0


def vars_config(args) -> dict:
    return {k: (str(v) if isinstance(v, Path) else [str(x) for x in v] if isinstance(v, list) else v)
            for k, v in vars(args).items() if k not in ("verbose", "quiet")}


def cmd_stage(args, ws: Workspace, out) -> int:
    with recorded_run(ws, args.command, vars_config(args)) as run:
        stages = pipeline if args.command == "train-sentiment" else _stages(args)
        if args.command == "ingest":
            run.data_fingerprint = fingerprint(args.reviews)
            result = stages.ingest(ws, args.reviews, parse_mapping(args.map), args.items)
        elif args.command == "score":
            result = stages.score(ws, _scorer(args, ws))
        elif args.command == "train-sentiment":
            result = pipeline.train_sentiment(ws, _sentiment_training(args), args.max_train, version=run.run_id)
        elif args.command == "profile":
            result = stages.profile(ws, ProfileConfig(half_life_days=args.half_life_days))
        elif args.command == "train":
            result = _train(stages, args, ws, run.run_id)
        else:
            result = stages.recommend(ws, args.top_n)
        run.counts.update(result.counts)
        run.timings[result.stage] = round(result.seconds, 3)
    _report([result], out)
    return 0


def cmd_recommend_users(args, ws: Workspace, out) -> int:
    service = pipeline.load_service(ws)
    recs = service.recommend(args.user, n=args.top_n, filter_already_liked_items=not args.include_seen, exclude_items=args.exclude)
    if ws.has_table("items"):
        titles = ws.read_table("items", columns=["item_id", "title", "category"])
        recs = recs.merge(titles, on="item_id", how="left")
    for user in args.user:
        if user not in service.users_:
            log.warning("user %s is unknown to the trained model: showing the most popular items", user)
    if args.json:
        out.write(recs.to_json(orient="records", lines=True, force_ascii=False))
    else:
        out.write(recs.to_string(index=False) + "\n")
    return 0


def cmd_similar(args, ws: Workspace, out) -> int:
    service = pipeline.load_service(ws)
    similar = service.similar_items([args.item], n=args.top_n)
    if ws.has_table("items"):
        titles = ws.read_table("items", columns=["item_id", "title", "category"])
        similar = similar.merge(titles.rename(columns={"item_id": "similar_item_id"}), on="similar_item_id", how="left")
    if args.json:
        out.write(similar.to_json(orient="records", lines=True, force_ascii=False))
    else:
        out.write(f"items similar to {args.item} ({service.model_.describe_similarity()}):\n")
        out.write(similar.drop(columns="item_id").to_string(index=False) + "\n")
    return 0


def cmd_demo(args, out) -> int:
    from .demo_shop import generate_demo_shop

    shop = generate_demo_shop(n_users=args.users, n_items=args.items, seed=args.seed)
    paths = shop.write(args.out)
    out.write(f"demo shop: {len(shop.reviews):,} reviews by {args.users:,} users on {args.items:,} items\n")
    for name, path in paths.items():
        out.write(f"  {name:<16} {path}\n")
    return 0


def cmd_query(args, ws: Workspace, out) -> int:
    if not ws.tables():
        raise WorkspaceError(f"no tables in {ws.root}; run `emorec run` first")
    with pd.option_context("display.max_rows", 200, "display.max_columns", 50, "display.width", 200):
        out.write(ws.query(args.sql).to_string(index=False) + "\n")
    return 0


def cmd_runs(args, ws: Workspace, out) -> int:
    runs = ws.read_table("runs").sort_values("started_at", ascending=False)
    cols = ["run_id", "command", "status", "seconds", "data_fingerprint", "error"]
    out.write(runs[cols].to_string(index=False) + "\n")
    return 0


def _setup_logging(args) -> None:
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if args.verbose < 2:
        for noisy in ("implicit", "urllib3", "filelock"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``emorec`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    _setup_logging(args)
    out = sys.stdout
    try:
        if args.command == "demo":
            return cmd_demo(args, out)
        if args.command == "train-emotions":
            from .train_emotions import main as train_emotions_main

            return train_emotions_main(args.args)
        ws = Workspace(args.workspace)
        if args.command == "query":
            return cmd_query(args, ws, out)
        if args.command == "runs":
            return cmd_runs(args, ws, out)
        if args.command == "recommend" and args.user:
            return cmd_recommend_users(args, ws, out)
        if args.command == "similar":
            return cmd_similar(args, ws, out)
        if args.command in profile_commands.COMMANDS:
            return profile_commands.run_command(args, ws, out)
        if args.command in evaluate_commands.COMMANDS:
            return evaluate_commands.run_command(args, ws, out)
        if args.command in forget_commands.COMMANDS:
            return forget_commands.run_command(args, ws, out)
        with ws.lock(f"emorec {args.command}"):
            if args.command == "run":
                return cmd_run(args, ws, out)
            return cmd_stage(args, ws, out)
    except (WorkspaceError, SchemaError, ArtifactError, ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
