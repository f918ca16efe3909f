"""The ``emorec`` command line.

Every stage is a sub-command reading and writing one workspace folder; ``run`` chains them.
Run ``emorec <command> --help`` for the options and an example of each.

Exit codes: 0 success; 2 a problem the user can fix (an :class:`~emorec.common.errors.EmorecError`:
bad input, configuration, artifact or workspace; printed as one line naming the record, field,
file or setting); 1 a bug in emorec (any other exception: one line and a hint to rerun with
``-v``, which prints the traceback); 130 interrupted (Ctrl-C).

Only the standard library is imported at start-up, so ``emorec --help`` answers at once; each
command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import traceback
from pathlib import Path

from emorec.common.errors import ConfigError, EmorecError

from . import evaluate_commands, forget_commands, profile_commands
from .arguments import non_negative_int, positive_int, random_seed

log = logging.getLogger("emorec")

DEMO_DIR = "demo"
#: The default workspace folder (also :data:`jobs.store.DEFAULT_WORKSPACE`, kept here so that
#: parsing the command line imports nothing heavy).
DEFAULT_WORKSPACE = Path("emorec-workspace")

#: One line and examples per sub-command, shown by ``emorec <command> --help``.
COMMAND_HELP: dict[str, tuple[str, list[str]]] = {
    "run": ("Run every stage (ingest, score, profile, train, recommend); on a generated demo shop unless --reviews is given.",
            ["emorec run", "emorec run -w shop-ws --reviews reviews.json.gz --items items.csv --scorer lexicon"]),
    "demo": ("Write a generated demo shop (reviews, items, planted ground truth) to disk for inspection.",
             ["emorec demo --users 500 --out demo-shop"]),
    "ingest": ("Load, validate and store review files: new reviews are added to the workspace (deduplicated by review "
               "id); --replace replaces them. Rejected rows go to the quarantine table.",
               ["emorec ingest -w shop-ws --reviews orders.csv --map user=customer_id --map text=body",
                "emorec ingest -w shop-ws --reviews day-2.csv                 # adds day 2 to what is stored",
                "emorec ingest -w shop-ws --reviews all.csv --replace         # replaces every stored review"]),
    "score": ("Score every stored review (polarity, emotions, aspects); unchanged texts are reused, not rescored.",
              ["emorec score -w shop-ws", "emorec score -w shop-ws --scorer lexicon --aspects shop.toml"]),
    "train-sentiment": ("Fine-tune the transformer's polarity on the shop's star ratings (held-out users are the test set).",
                        ["emorec train-sentiment -w shop-ws --max-train 4000"]),
    "train-emotions": ("Reproduce the shipped emotion model from GoEmotions (see sentiment/models/default/MODEL_CARD.md).",
                       ["emorec train-emotions --data ../shared/data/goemotions --out my-model"]),
    "profile": ("Build the user and item profiles from the scored reviews.",
                ["emorec profile -w shop-ws --half-life-days 90"]),
    "train": ("Train the recommender on the stored reviews and publish it in the workspace.",
              ["emorec train -w shop-ws", "emorec train -w shop-ws --model ease --model-params '{\"l2\": 200}'"]),
    "recommend": ("Top-N lists: for every user into the recommendations table, or printed for the users given with --user.",
                  ["emorec recommend -w shop-ws", "emorec recommend -w shop-ws --user A2IBPI20UZIR0U -n 5"]),
    "similar": ("Items similar to an item, by the trained model's item-item similarity (titles when the workspace has "
                "an item table).",
                ["emorec similar -w shop-ws --item B0002E1G5C -n 5", "emorec similar -w shop-ws --item I0042 --json"]),
    "query": ("Run one read-only SQL query (DuckDB) over the workspace tables; nothing can be written.",
              ["emorec query -w shop-ws \"SELECT reason, count(*) FROM quarantine GROUP BY reason\""]),
    "runs": ("List the recorded runs of the workspace, newest first (status, counts, errors).",
             ["emorec runs -w shop-ws"]),
    "segment": ("Assign customer segments (rules from TOML) and k-means clusters; export per-segment files and an HTML report.",
                ["emorec segment -w shop-ws --out crm/ --pseudonymize --salt-file ~/salt --report segments.html"]),
    "care": ("Rank unhappy customers to contact first, with the complaint that put them there.",
             ["emorec care -w shop-ws --top 50 --window-days 30"]),
    "monitor": ("Weekly or monthly complaint time series per item and category, with alerts on bursts.",
                ["emorec monitor -w shop-ws --freq M --z 3"]),
    "evaluate": ("Offline A/B test of recommender variants: metrics, confidence intervals, significance, breakdowns, HTML report.",
                 ["emorec evaluate --init variants.toml            # writes a commented example config",
                  "emorec evaluate -w shop-ws --config variants.toml"]),
    "forget": ("Erase customers from the workspace (right to erasure) and keep them out of later ingests.",
               ["emorec forget -w shop-ws --user A2IBPI20UZIR0U", "emorec forget -w shop-ws --users-file erase.txt"]),
}


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("emorec")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


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
                   help="column mapping, e.g. --map user=customer_id --map text=body (repeatable); fields: review_id, "
                        "user, item, rating, title, text, timestamp, helpful_votes, verified")
    p.add_argument("--replace", action="store_true",
                   help="replace the stored reviews (and quarantine) with these files; by default new reviews are added "
                        "to what is stored, deduplicated by review id")
    p.add_argument("--pseudonymize-ids", action="store_true",
                   help="store user ids as keyed hashes (HMAC-SHA256 with the workspace's key <workspace>/.id_key) "
                        "instead of as given, e.g. when ids are e-mail addresses; use it for every ingest of the workspace")


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="auto", metavar="MODEL",
                   help="primary recommender: hybrid (LightGBM re-ranker over CF and sequential candidates with "
                        "emotional features; reads review_scores), als, popular, itemknn, ease or bpr; auto = the "
                        "hybrid for scored, time-stamped reviews when its estimated training cost fits the budget "
                        "(--budget-gb, --budget-minutes), ALS otherwise (default: %(default)s)")
    p.add_argument("--budget-gb", type=float, default=None,
                   help="--model auto: peak training memory the chosen model may need (default: 8)")
    p.add_argument("--budget-minutes", type=float, default=None,
                   help="--model auto: training time the chosen model may need (default: 60)")
    p.add_argument("--model-params", type=json.loads, default=None, metavar="JSON",
                   help='model parameters, e.g. \'{"l2": 200}\' (ease) or \'{"emotion_features": false}\' (hybrid)')
    p.add_argument("--factors", type=positive_int, help="latent factors of the models that have them (als, bpr; default: the "
                   "model's, 64)")
    p.add_argument("--iterations", type=positive_int, help="training iterations of the models that have them (als: 15, bpr: 100 "
                   "by default)")
    p.add_argument("--seed", type=random_seed, default=42, help="random seed of the models that have one (default: %(default)s)")


def _score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scorer", choices=["auto", "lexicon", "transformer"], default="auto",
                   help="review scorer; auto = transformer (the workspace's fine-tuned model, else the shipped one), lexicon only when no model exists (default: %(default)s)")
    p.add_argument("--sentiment-model", type=Path, metavar="DIR", help="transformer model folder (default: the workspace's fine-tuned one, else the shipped emotion model)")
    p.add_argument("--aspects", type=Path, metavar="TOML", help="aspect config adding or overriding aspects ([aspects] name = [seed words])")
    p.add_argument("--quantize", action="store_true", help="int8 dynamic quantization of the transformer (faster on CPU); "
                   "the same as --precision int8")
    p.add_argument("--precision", choices=["fp32", "bf16", "int8"],
                   help="the transformer's arithmetic: fp32 (default), bf16 (bfloat16 autocast: the fastest on CPUs with AMX "
                        "and on GPUs) or int8 (dynamic quantization: the fastest on CPUs with AVX-512 VNNI and no AMX)")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="CPU threads for scoring: the transformer's torch threads, the lexicon's worker processes "
                        "(default: the cores this process may use, from its CPU affinity and cgroup quota; "
                        "1 per Spark task with --engine spark)")


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
    parser = argparse.ArgumentParser(
        prog="emorec", description="Emotion-aware recommendation and user profiling from product reviews.",
        epilog="Start with `emorec run` (a demo shop) or `emorec run --reviews FILE`; `emorec COMMAND --help` shows the "
               "options and an example of each command. Exit codes: 0 ok, 1 a bug in emorec (rerun with -v), "
               "2 a problem with the input, configuration or workspace, 130 interrupted.")
    parser.add_argument("--version", action="version", version=f"emorec {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", parents=[common], help="all stages: ingest, score, profile, train, recommend (demo shop if no --reviews)")
    _ingest_args(p, required=False)
    p.add_argument("--demo-users", type=positive_int, default=1000, help="size of the generated demo shop when no --reviews (default: %(default)s)")
    p.add_argument("-n", "--top-n", type=positive_int, default=10, help="items per user (default: %(default)s)")
    _score_args(p)
    _profile_args(p)
    _train_args(p)
    _engine_args(p)

    p = sub.add_parser("demo", parents=[common], help="write a generated demo shop to disk")
    p.add_argument("--users", type=positive_int, default=1000, help="number of users (default: %(default)s)")
    p.add_argument("--items", type=positive_int, default=300, help="number of items (default: %(default)s)")
    p.add_argument("--seed", type=random_seed, default=42, help="random seed (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("emorec-demo"), help="output folder (default: %(default)s)")

    p = sub.add_parser("ingest", parents=[common], help="load and validate review files into the workspace")
    _ingest_args(p, required=True)
    _engine_args(p)

    p = sub.add_parser("score", parents=[common], help="score every review (polarity, emotions, aspects)")
    _score_args(p)
    _engine_args(p)

    p = sub.add_parser("train-sentiment", parents=[common], help="fine-tune the transformer on the shop's reviews (stars as labels)")
    p.add_argument("--epochs", type=positive_int, default=2, help="training epochs (default: %(default)s)")
    p.add_argument("--max-train", type=positive_int, help="subsample the training reviews to bound CPU time")
    p.add_argument("--max-length", type=positive_int, default=160, help="tokens per review while training (default: %(default)s)")
    p.add_argument("--seed", type=random_seed, default=13, help="random seed (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, help="torch threads (fix it for bit-identical reruns)")
    p.add_argument("--device", default="auto", help="auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda, cuda:1, ...")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="forward passes in fp32 or under bfloat16 autocast (faster on CPUs with AMX and on GPUs; the "
                        "weights stay fp32; default: %(default)s)")
    p.add_argument("--no-ngram-head", action="store_true",
                   help="the transformer alone: no shop n-gram head blended with its polarity (default: blended when it helps on the dev users)")
    p.add_argument("--augment-long-reviews", type=non_negative_int, default=None, metavar="N",
                   help="train on N synthetic long reviews diluted by story and fact as well (polarity only; default: a "
                        "quarter of the training reviews, at most 1500; 0 for none)")

    # its own options are parsed by jobs.train_emotions (main() hands them over before parsing)
    p = sub.add_parser("train-emotions", help="reproduce the shipped emotion model from GoEmotions (see its MODEL_CARD.md)")
    p.set_defaults(verbose=0, quiet=False, workspace=DEFAULT_WORKSPACE)

    p = sub.add_parser("profile", parents=[common], help="build user and item profiles")
    _profile_args(p)
    _engine_args(p)

    p = sub.add_parser("train", parents=[common], help="train the recommender")
    _train_args(p)
    _engine_args(p)

    p = sub.add_parser("recommend", parents=[common], help="top-N lists: one user (--user) or all users into the workspace")
    p.add_argument("--user", action="append", metavar="ID", help="print the list of this user (repeatable); without it, lists for all users are written")
    p.add_argument("-n", "--top-n", type=positive_int, default=10, help="items per user (default: %(default)s)")
    p.add_argument("--exclude", nargs="+", metavar="ITEM", help="item ids never to recommend")
    p.add_argument("--include-seen", action="store_true", help="allow items the user already reviewed")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    _engine_args(p)

    p = sub.add_parser("similar", parents=[common], help="items similar to an item, by the trained model's item similarity")
    p.add_argument("--item", required=True, metavar="ID", help="the item id")
    p.add_argument("-n", "--top-n", type=positive_int, default=10, help="similar items to list (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")

    p = sub.add_parser("query", parents=[common], help="run SQL (DuckDB) over the workspace tables")
    p.add_argument("sql", help='e.g. "SELECT * FROM recommendations LIMIT 10"')

    sub.add_parser("runs", parents=[common], help="list recorded runs, newest first")
    profile_commands.add_parsers(sub, common)
    evaluate_commands.add_parsers(sub, common)
    forget_commands.add_parsers(sub, common)
    for name, sp in sub.choices.items():  # one line of description and examples for every command
        line, examples = COMMAND_HELP[name]
        sp.description = line
        sp.epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
        sp.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


# --- commands -------------------------------------------------------------------------
def _service_config(args, model: str, params: dict | None = None, strict: bool = True):
    """``model`` with ``params``, plus ``--factors``, ``--iterations`` (when given) and ``--seed``
    for the models whose config has those fields; ``strict``: ``--factors``/``--iterations``
    given for a model without them is an error, not an option silently dropped."""
    from emorec.recommender import ServiceConfig, model_class
    from emorec.recommender.service import MODEL_NAMES

    if model not in MODEL_NAMES:
        raise ConfigError(f"unknown --model {model!r}; valid models: auto, {', '.join(MODEL_NAMES)}")
    params = dict(params or {})
    fields = model_class(model).Config.model_fields
    for name, value in (("factors", args.factors), ("iterations", args.iterations), ("seed", args.seed)):
        if value is not None and name in fields:
            params.setdefault(name, value)
        elif value is not None and strict and name != "seed":
            raise ConfigError(f"--{name} does not apply to the {model} model (its parameters: {', '.join(fields)})")
    return ServiceConfig(model=model, params=params)


def _train(stages, args, ws, version: str):
    """The train stage with ``--model`` resolved (``auto``: :func:`jobs.pipeline.auto_model`, the
    hybrid when its estimated cost fits ``--budget-gb`` / ``--budget-minutes``, on either engine)."""
    from . import pipeline

    if args.model != "auto":
        return stages.train(ws, _service_config(args, args.model, args.model_params), version=version)
    given = {"memory_gb": args.budget_gb, "minutes": args.budget_minutes}
    budget = pipeline.AutoBudget(**{k: v for k, v in given.items() if v is not None})
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


def _scorer(args, ws):
    from . import pipeline

    threads = getattr(args, "threads", None)
    if threads is None and getattr(args, "engine", "embedded") == "spark":
        threads = 1  # Spark runs a task per core: one torch thread each never oversubscribes
    return pipeline.resolve_scorer(ws, args.scorer, args.sentiment_model, args.aspects, args.quantize, threads,
                                   precision=getattr(args, "precision", None))


def _score(stages, args, ws):
    """The score stage; ``--threads`` also sizes the embedded engine's lexicon worker pool."""
    from . import pipeline

    if stages is pipeline:
        return pipeline.score(ws, _scorer(args, ws), threads=getattr(args, "threads", None))
    return stages.score(ws, _scorer(args, ws))


def _sentiment_training(args):
    from dataclasses import replace

    from emorec.sentiment.finetune import SHOP_TRAINING

    return replace(SHOP_TRAINING, epochs=args.epochs, max_length=args.max_length, seed=args.seed, threads=args.threads, device=args.device,
                   precision=args.precision)


def _stages(args):
    """The stage functions of the chosen engine: :mod:`jobs.pipeline` or a Spark pipeline."""
    from . import pipeline

    if getattr(args, "engine", "embedded") != "spark":
        if getattr(args, "master", None) or getattr(args, "conf", None):
            raise ConfigError("--master and --conf are Spark options: add --engine spark")
        return pipeline
    from .spark.pipeline import SparkPipeline

    return SparkPipeline.from_options(args.master, args.conf)


def _report(results, out) -> None:
    """Stage lines: counts, then ``- note`` (information) and ``! warning`` (look at this) lines."""
    for r in results:
        counts = ", ".join(f"{k}={v:,}" for k, v in r.counts.items())
        out.write(f"  {r.stage:<10} {r.seconds:7.2f}s  {counts}\n")
        for note in r.notes:
            out.write(f"             - {note}\n")
        for warning in getattr(r, "warnings", []):
            out.write(f"             ! {warning}\n")


def _demo_sources(ws, users: int, seed: int) -> tuple[list[Path], Path]:
    from .demo_shop import generate_demo_shop

    folder = ws.root / DEMO_DIR
    shop = generate_demo_shop(n_users=users, seed=seed)
    paths = shop.write(folder)
    log.info("demo shop with %d users, %d reviews written to %s", users, len(shop.reviews), folder)
    return [Path(paths["reviews"])], Path(paths["items"])


def cmd_run(args, ws, out) -> int:
    from emorec.profiles import ProfileConfig

    from .loaders import parse_mapping
    from .runs import fingerprint, recorded_run

    mapping = parse_mapping(args.map)
    t0 = time.perf_counter()
    with recorded_run(ws, "run", vars_config(args)) as run:
        if args.reviews:
            sources, items = args.reviews, args.items
        else:
            sources, items = _demo_sources(ws, args.demo_users, args.seed)
        run.data_fingerprint = fingerprint(sources + ([items] if items else []))
        stages = _stages(args)
        results = [stages.ingest(ws, sources, mapping, items, **_ingest_options(args))]
        results.append(_score(stages, args, ws))
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


def _ingest_options(args) -> dict:
    """``replace`` and ``pseudonymize_ids`` for the ingest stage."""
    return {k: bool(getattr(args, k, False)) for k in ("replace", "pseudonymize_ids")}


def cmd_stage(args, ws, out) -> int:
    from emorec.profiles import ProfileConfig

    from . import pipeline
    from .loaders import parse_mapping
    from .runs import fingerprint, recorded_run

    with recorded_run(ws, args.command, vars_config(args)) as run:
        stages = pipeline if args.command == "train-sentiment" else _stages(args)
        if args.command == "ingest":
            run.data_fingerprint = fingerprint(args.reviews)
            result = stages.ingest(ws, args.reviews, parse_mapping(args.map), args.items, **_ingest_options(args))
        elif args.command == "score":
            result = _score(stages, args, ws)
        elif args.command == "train-sentiment":
            result = pipeline.train_sentiment(ws, _sentiment_training(args), args.max_train, version=run.run_id,
                                              ngram_head=not args.no_ngram_head, long_reviews=args.augment_long_reviews)
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


def cmd_recommend_users(args, ws, out) -> int:
    from . import pipeline
    from .ids import as_stored

    service = pipeline.load_service(ws)
    args.user = as_stored(ws, args.user)  # the original id also works in a workspace with pseudonymized ids
    recs = service.recommend(args.user, n=args.top_n, filter_already_liked_items=not args.include_seen, exclude_items=args.exclude)
    if ws.has_table("items"):
        titles = ws.read_table("items", columns=["item_id", "title", "category"])
        recs = recs.merge(titles, on="item_id", how="left")
    for user in args.user:
        if user not in service.users_:
            log.warning("user %s is unknown to the trained model: showing the most popular items", user)
    if args.json:
        out.write(recs.to_json(orient="records", lines=True, force_ascii=False))
    elif "explanation" in recs.columns:
        out.write(format_explained(recs))
    else:
        out.write(recs.to_string(index=False) + "\n")
    return 0


def _evidence_line(row) -> str:
    """The evidence columns of one explained recommendation, in words."""
    import pandas as pd

    def num(x) -> str:
        return "?" if pd.isna(x) else f"{int(x):,}"

    t = row["reason_type"]
    if t == "aspect":
        return (f"{row['reason_aspect']}: {num(row['evidence_count'])} of {num(row['evidence_total'])} reviews praise it; "
                f"quote from review {row['evidence_review_id']}")
    if t in ("sequential", "also_bought"):
        named = row["evidence_item_id"] + (f" ({row['evidence_title']})" if not pd.isna(row["evidence_title"]) else "")
        how = "went on to it" if t == "sequential" else "also bought it"
        return f"{num(row['evidence_count'])} of the {num(row['evidence_total'])} customers of {named} {how}"
    if t == "popular":
        return (f"{num(row['evidence_count'])} reviews in the window, #{num(row['evidence_rank'])} of "
                f"{num(row['evidence_total'])} items")
    if t == "review_count":
        return f"{num(row['evidence_count'])} customers, #{num(row['evidence_rank'])} of {num(row['evidence_total'])} items"
    return "no reason with enough evidence; the item's own reviews only"


def format_explained(recs) -> str:
    """A list with explanations, readably: one block per item (rank, id, title, score), its
    explanation and its evidence (reason type and the counts behind it)."""
    import pandas as pd

    lines = []
    for user, rows in recs.groupby("user_id", sort=False):
        lines.append(f"{user}: {len(rows)} items")
        for _, r in rows.iterrows():
            title = r.get("title")
            head = f"{r['rank']:>3}. {r['item_id']}" + ("" if title is None or pd.isna(title) else f"  {title}")
            lines.append(f"{head}  (score {r['score']:.3f}, {r['source']})")
            lines.append(f"     {r['explanation']}")
            lines.append(f"     evidence [{r['reason_type']}]: {_evidence_line(r)}")
    return "\n".join(lines) + "\n"


def cmd_similar(args, ws, out) -> int:
    from . import pipeline

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


def cmd_query(args, ws, out) -> int:
    import pandas as pd

    from emorec.common.errors import WorkspaceError

    if not ws.tables():
        raise WorkspaceError(f"no tables in {ws.root}; run `emorec run` first")
    with pd.option_context("display.max_rows", 200, "display.max_columns", 50, "display.width", 200):
        out.write(ws.query(args.sql).to_string(index=False) + "\n")
    return 0


def cmd_runs(args, ws, out) -> int:
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


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _dispatch(args, out) -> int:
    from .store import Workspace

    if args.command == "demo":
        return cmd_demo(args, out)
    if args.command == "evaluate" and getattr(args, "init", None):
        return evaluate_commands.write_example_config(args.init, out)
    ws = Workspace(args.workspace)
    if args.command not in forget_commands.COMMANDS:
        forget_commands.check_no_pending_erasure(ws)
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``emorec`` console script; returns the exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train-emotions"]:  # its own parser (and its own --help)
        from .train_emotions import main as train_emotions_main

        return train_emotions_main(argv[1:])
    args = build_parser().parse_args(argv)
    _setup_logging(args)
    try:
        try:
            return _dispatch(args, sys.stdout)
        except ValueError as exc:  # pydantic's ValidationError from a user's configuration
            from pydantic import ValidationError

            from emorec.common.config import explain_validation

            if isinstance(exc, ValidationError):
                raise ConfigError(f"invalid {exc.title} configuration: {explain_validation(exc)}") from exc
            raise
    except EmorecError as exc:
        if args.verbose:
            log.debug("traceback:\n%s", traceback.format_exc())
        log.error("%s", _one_line(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception as exc:  # a bug in emorec: never hidden, never mistaken for a user error
        if args.verbose:
            log.error("internal error in `emorec %s` (a bug in emorec; please report it with this traceback):\n%s",
                      args.command, traceback.format_exc().rstrip())
        else:
            log.error("internal error in `emorec %s` (a bug in emorec): %s: %s -- rerun with -v for the traceback",
                      args.command, type(exc).__name__, _one_line(exc)[:300])
        return 1


if __name__ == "__main__":
    sys.exit(main())
