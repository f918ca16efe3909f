"""CLI glue for ``emorec evaluate``: offline A/B evaluation of recommender variants.

The variants come from a config file (TOML, YAML or JSON; see
``jobs/evaluation/example_variants.toml``); the data from the workspace (tables ``reviews``,
``review_scores``, ``items``) or from a review file given with ``--reviews`` (scored with the
lexicon scorer). Outputs go to ``<workspace>/evaluations/<run id>/`` (or ``--out DIR``):
``report.json``, ``per_user.parquet``, ``report.html`` and ``verdict.txt``. ``jobs/cli.py``
needs two lines::

    evaluate_commands.add_parsers(sub, common)                       # in build_parser()
    if args.command in evaluate_commands.COMMANDS: return evaluate_commands.run_command(args, ws, out)   # in main()
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emorec.common.errors import ConfigError, InputError, WorkspaceError

from .arguments import positive_int, random_seed

if TYPE_CHECKING:  # imported when the command runs, so that `emorec --help` starts at once
    from .evaluation.config import ExperimentConfig
    from .evaluation.runner import EvaluationInputs
    from .store import Workspace

log = logging.getLogger(__name__)

COMMANDS = ("evaluate",)
EVALUATIONS_DIR = "evaluations"
#: The commented example config shipped with the package (``emorec evaluate --init`` copies it).
EXAMPLE_CONFIG = "example_variants.toml"
DEFAULT_INIT_PATH = Path("variants.toml")


def example_config_text() -> str:
    """The text of the shipped, commented example config (``jobs/evaluation/example_variants.toml``)."""
    return resources.files("emorec.jobs.evaluation").joinpath(EXAMPLE_CONFIG).read_text(encoding="utf-8")


def write_example_config(path: str | Path, out) -> int:
    """``emorec evaluate --init [PATH]``: write the commented example config; never overwrite a file."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise InputError(f"{path} already exists; not overwritten (give another path: emorec evaluate --init PATH)") from None
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(example_config_text())
    out.write(f"wrote an example evaluation config to {path}: three variants (ALS, the hybrid, the hybrid without "
              f"emotional features) with every option commented.\nEdit it, then run: emorec evaluate -w WORKSPACE --config {path}\n")
    return 0


def apply_overrides(config: ExperimentConfig, split: str | None = None, cutoff: str | None = None,
                    fraction: float | None = None, seed: int | None = None, ks: list[int] | None = None,
                    max_users: int | None = None, baseline: str | None = None, primary: str | None = None) -> ExperimentConfig:
    """The config with command-line overrides applied (and validated again)."""
    from .evaluation.config import load_config

    data = config.model_dump(mode="json", by_alias=True)
    if split is not None:
        data["split"]["method"] = split
        if split != "global_cutoff":
            data["split"]["cutoff"] = None
    if cutoff is not None:
        data["split"]["cutoff"] = cutoff
    if fraction is not None:
        data["split"]["fraction"] = fraction
    if max_users is not None:
        data["split"]["max_users"] = max_users
    if seed is not None:
        data["seed"] = seed
    if ks:
        data["ks"] = ks
        if primary is None and data["primary_metric"].split("@")[1] not in {str(k) for k in ks}:
            data["primary_metric"] = f"{data['primary_metric'].split('@')[0]}@{sorted(ks)[len(ks) // 2]}"
    if baseline is not None:
        data["baseline"] = baseline
    if primary is not None:
        data["primary_metric"] = primary
    return load_config(data)


def inputs_from_file(path: str | Path, items: str | Path | None = None) -> EvaluationInputs:
    """Reviews from a file (any format ``emorec ingest`` reads), scored with the lexicon scorer."""
    from emorec import sentiment

    from .evaluation.runner import EvaluationInputs
    from .loaders import load_items, load_reviews
    from .runs import fingerprint

    loaded = load_reviews(path)
    if len(loaded.quarantine):
        log.warning("%d rows of %s were quarantined by the loader and are not evaluated", len(loaded.quarantine), path)
    reviews = loaded.reviews
    scores = sentiment.LexiconScorer().score(sentiment.review_text(reviews["title"], reviews["text"]))
    scores.insert(0, "review_id", reviews["review_id"].to_numpy())
    item_table = load_items(items) if items else None
    cols = [c for c in ("review_id", "user_id", "item_id", "rating", "timestamp") if c in reviews.columns]
    paths = [Path(path)] + ([Path(items)] if items else [])
    return EvaluationInputs(reviews[cols].reset_index(drop=True), scores, item_table, fingerprint(paths), f"file {path}")


def evaluate(ws: Workspace, config_path: str | Path, out: str | Path | None = None, reviews: str | Path | None = None,
             items: str | Path | None = None, run_id: str = "evaluation", show_progress: bool | None = None,
             **overrides: Any) -> tuple[str, dict[str, Path], dict]:
    """Run an evaluation; return ``(summary text, output paths, report)``.

    ``out`` is the output folder (default ``<workspace>/evaluations/<run_id>``); the files are
    written under fixed names inside it and never outside it.
    """
    from emorec.profiles.export import is_inside

    from .evaluation.config import load_config
    from .evaluation.runner import OUTPUT_FILES, inputs_from_workspace, run_evaluation, write_outputs

    t0 = time.perf_counter()
    config = apply_overrides(load_config(config_path), **overrides)
    inputs = inputs_from_file(reviews, items) if reviews else inputs_from_workspace(ws)
    result = run_evaluation(inputs, config, show_progress=show_progress)
    folder = Path(out) if out is not None else ws.root / EVALUATIONS_DIR / run_id
    for name in OUTPUT_FILES.values():
        if not is_inside(folder / name, folder):
            raise WorkspaceError(f"refusing to write {folder / name}: it is outside the output folder {folder}")
    paths = write_outputs(result, folder, run_id=run_id)
    lines = [result.verdict.rstrip("\n"), "", f"outputs in {folder}:"]
    lines += [f"  {p.name:<18} {p}" for p in paths.values()]
    lines.append(f"done in {time.perf_counter() - t0:.1f}s")
    return "\n".join(lines), paths, result.report


def add_parsers(subparsers, common_parent: argparse.ArgumentParser) -> None:
    """Add ``evaluate`` to the ``emorec`` sub-command parsers."""
    p = subparsers.add_parser("evaluate", parents=[common_parent],
                              help="offline A/B evaluation of recommender variants: metrics, significance, breakdowns, HTML report")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="variants and protocol (TOML, YAML or JSON); `emorec evaluate --init` writes a commented example")
    p.add_argument("--init", type=Path, nargs="?", const=DEFAULT_INIT_PATH, metavar="PATH",
                   help=f"write a commented example config to PATH (default: {DEFAULT_INIT_PATH}) and exit")
    p.add_argument("--reviews", type=Path, metavar="PATH",
                   help="evaluate this review file (scored with the lexicon scorer) instead of the workspace's tables")
    p.add_argument("--items", type=Path, metavar="PATH", help="item table for --reviews (item_id, title, category, price)")
    p.add_argument("--split", choices=["leave_last_out", "global_cutoff", "random_holdout"],
                   help="override the config's split (default in the config: leave_last_out)")
    p.add_argument("--cutoff", metavar="DATE", help="global_cutoff: reviews after DATE are the test set (train: at or before it)")
    p.add_argument("--fraction", type=float, help="random_holdout: share of each user's reviews held out")
    p.add_argument("--seed", type=random_seed, help="override the config's seed (split, sampling, bootstrap, tuning)")
    p.add_argument("--k", type=positive_int, nargs="+", dest="ks", metavar="K", help="cut-offs, e.g. --k 5 10 20")
    p.add_argument("--metric", dest="primary", metavar="NAME@K", help="primary metric, e.g. ndcg@10")
    p.add_argument("--baseline", metavar="VARIANT", help="the variant the others are compared with (default: the first)")
    p.add_argument("--max-users", type=positive_int, metavar="N", help="evaluate a seeded sample of N test users")
    p.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: <workspace>/evaluations/<run id>)")


def _config(args) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("verbose", "quiet")}


def run_command(args, ws: Workspace, out) -> int:
    """Run ``emorec evaluate`` under the workspace lock, recorded in ``runs``."""
    from .runs import recorded_run

    if args.command not in COMMANDS:
        raise ConfigError(f"not an evaluate command: {args.command!r}")
    if args.config is None:
        raise ConfigError("emorec evaluate needs --config FILE (the variants to compare); "
                          "`emorec evaluate --init variants.toml` writes a commented example to start from")
    overrides = {k: getattr(args, k) for k in ("split", "cutoff", "fraction", "seed", "ks", "max_users", "baseline", "primary")}
    with ws.lock(f"emorec {args.command}"), recorded_run(ws, args.command, _config(args)) as run:
        text, _paths, report = evaluate(ws, args.config, out=args.out, reviews=args.reviews, items=args.items,
                                       run_id=run.run_id, show_progress=None if not getattr(args, "quiet", False) else False,
                                       **overrides)
        run.data_fingerprint = report["reproducibility"]["data_fingerprint"]
        run.counts.update({"test_users": report["split"]["evaluated_users"],
                           "variants_ok": sum(v["status"] == "ok" for v in report["variants"]),
                           "variants_failed": sum(v["status"] != "ok" for v in report["variants"])})
        run.timings.update(report["timings"])
    out.write(text + "\n")
    return 0


__all__ = ["COMMANDS", "add_parsers", "apply_overrides", "evaluate", "example_config_text", "inputs_from_file",
           "run_command", "write_example_config"]
