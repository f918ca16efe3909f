"""CLI glue for the marketing commands: ``emorec segment``, ``emorec care``, ``emorec monitor``.

Each command is a plain function of a :class:`~jobs.store.Workspace` and options that reads
the workspace tables, writes its own table and returns a short text summary:

* :func:`segment` - rule-based segments and k-means clusters -> table ``segments``
  (``user_id``, ``segment``, ``cluster``), optional per-segment exports and HTML report;
* :func:`care` - the care queue -> table ``care_queue``;
* :func:`monitor` - complaint-burst alerts -> table ``alerts``.

:func:`add_parsers` adds the sub-commands to the ``emorec`` parser and :func:`run_command`
runs one (taking the workspace lock and recording the run), so ``jobs/cli.py`` needs two lines::

    profile_commands.add_parsers(sub, common)                       # in build_parser()
    if args.command in profile_commands.COMMANDS: return profile_commands.run_command(args, ws, out)   # in main()
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emorec.common.errors import ConfigError

from .arguments import positive_int, random_seed

if TYPE_CHECKING:  # imported when a command runs, so that `emorec --help` starts at once
    import pandas as pd

    from .store import Workspace

log = logging.getLogger(__name__)

COMMANDS = ("segment", "care", "monitor")
REVIEW_COLUMNS_NEEDED = ["review_id", "user_id", "item_id", "rating", "title", "text", "timestamp"]


def _read_optional(ws: Workspace, name: str, columns: list[str] | None = None) -> pd.DataFrame | None:
    if not ws.has_table(name):
        return None
    if columns is not None:
        import pyarrow.parquet as pq

        have = set(pq.read_schema(ws.table_path(name)).names)
        columns = [c for c in columns if c in have]
    return ws.read_table(name, columns=columns)


def _reviews(ws: Workspace) -> pd.DataFrame:
    if not ws.has_table("reviews"):
        return ws.read_table("reviews")  # raises, naming the command that makes the table
    return _read_optional(ws, "reviews", REVIEW_COLUMNS_NEEDED)


def _table_text(df: pd.DataFrame, max_rows: int = 20) -> str:
    import pandas as pd

    with pd.option_context("display.max_rows", max_rows, "display.max_columns", 20, "display.width", 200,
                           "display.max_colwidth", 80):
        return df.head(max_rows).to_string(index=False)


# --------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------


def segment(
    ws: Workspace,
    config_path: str | Path | None = None,
    out: str | Path | None = None,
    fmt: str = "csv",
    pseudonymize: bool = False,
    salt_file: str | Path | None = None,
    report: str | Path | None = None,
    as_of: Any = None,
    k: int | None = None,
    seed: int = 0,
) -> str:
    """Assign segments and clusters; write table ``segments``, optional exports and report.

    Parameters
    ----------
    config_path
        Segment TOML (default: ``profiles/default_segments.toml``).
    out, fmt, pseudonymize, salt_file
        Export folder (one ``csv``/``parquet`` file per segment) and pseudonymization of ids
        (salt from ``salt_file`` outside ``out``, or ``$EMOREC_PSEUDONYM_SALT``).
    report
        Path of the HTML report (also runs the monitor and the care queue for it).
    as_of, k, seed
        Reference date of ``days_since_last_review``; fixed number of clusters (default:
        chosen by silhouette); clustering seed.
    """
    from emorec.profiles.care import care_queue
    from emorec.profiles.clusters import cluster_users
    from emorec.profiles.export import export_segments, load_salt, pseudonymize_ids
    from emorec.profiles.monitor import monitor as run_monitor
    from emorec.profiles.report import write_report
    from emorec.profiles.segments import SegmentConfig, assign_segments, resolve_as_of, segment_summary

    t0 = time.perf_counter()
    if pseudonymize and out is None:
        raise ConfigError("--pseudonymize applies to exports: give an output folder with --out")
    config = SegmentConfig.from_toml(config_path) if config_path else SegmentConfig.default()
    users = ws.read_table("user_profiles")
    ref = resolve_as_of(users, as_of)
    assignments = assign_segments(users, config, as_of=ref)
    clusters = cluster_users(users, k=k, seed=seed)
    table = assignments.merge(clusters.assignments[["user_id", "cluster"]], on="user_id", how="left")
    table["cluster"] = table["cluster"].astype("int64")
    summary = segment_summary(users, assignments, config, as_of=ref)
    meta = {
        "config": str(config_path) if config_path else "default",
        "as_of": str(ref),
        "segments": summary[["segment", "users", "description"]].to_dict(orient="records"),
        "clusters": {"k": clusters.k, "silhouette": {str(kk): v for kk, v in clusters.silhouette.items()},
                     "features": clusters.features,
                     "labels": clusters.descriptions[["cluster", "label", "users", "description"]].astype(
                         {"label": str, "description": str}).to_dict(orient="records")},
    }
    ws.write_table("segments", table, meta)
    lines = [f"segments for {len(table):,} users (as of {ref.date() if ref is not None else 'n/a'}):"]
    for _, r in summary.iterrows():
        lines.append(f"  {r['segment']:<24} {int(r['users']):>8,}  {r['share']:6.1%}")
    lines.append(f"clusters: k={clusters.k} (silhouette {clusters.score:.3f}; chosen by the highest silhouette in 2..8)"
                 if k is None else f"clusters: k={clusters.k} (fixed; silhouette {clusters.score:.3f})")
    for _, r in clusters.descriptions.iterrows():
        lines.append(f"  {int(r['cluster']):>2} {r['label']:<48} {int(r['users']):>8,}")
    lines.append(f"table: {ws.table_path('segments')}")
    if out is not None:
        files = export_segments(table, users, out, fmt=fmt, segments=config.names, pseudonymize=pseudonymize,
                                salt_file=salt_file, as_of=ref, recommendations=_read_optional(ws, "recommendations"),
                                items=_read_optional(ws, "items"))
        lines.append(f"exports: {len(files)} {fmt} files in {out}" + (" (user ids pseudonymized)" if pseudonymize else ""))
    if report is not None:
        reviews = _reviews(ws)
        scores = ws.read_table("review_scores")
        items = _read_optional(ws, "items")
        mon = run_monitor(reviews, scores, items)
        queue = care_queue(reviews, scores, users, top=50)
        display = None
        if pseudonymize:  # the report names customers only in its care table: same pseudonyms as the exports
            key = load_salt(salt_file, out)
            display = lambda ids: pseudonymize_ids(ids, key)  # noqa: E731
        path = write_report(report, users, table, config, reviews, scores, clusters, mon, queue, as_of=ref,
                            display_ids=display)
        lines.append(f"report: {path}")
    lines.append(f"done in {time.perf_counter() - t0:.1f}s")
    return "\n".join(lines)


def care(ws: Workspace, top: int = 50, window_days: float = 30, as_of: Any = None) -> str:
    """Build the care queue; write table ``care_queue``; return it as a printable table."""
    import pandas as pd

    from emorec.profiles.care import CareConfig, care_queue

    reviews = _reviews(ws)
    scores = ws.read_table("review_scores")
    users = _read_optional(ws, "user_profiles")
    config = CareConfig(top=top, window_days=window_days)
    queue = care_queue(reviews, scores, users, as_of=as_of, config=config)
    ws.write_table("care_queue", queue, {**config.model_dump(), "as_of": str(as_of) if as_of else "newest review"})
    if queue.empty:
        return f"care queue: no complaints in the last {window_days:g} days (table {ws.table_path('care_queue')})"
    show = pd.DataFrame({
        "rank": queue["rank"], "user_id": queue["user_id"], "priority": queue["priority"],
        "stars": queue["rating"].map(lambda r: "-" if pd.isna(r) else f"{r:.0f}"),
        "aspect": queue["aspect"].fillna("-"),
        "valence": queue["clause_valence"].map("{:+.2f}".format),
        "clause": queue["clause"],
    })
    return (f"care queue: {len(queue)} users with complaints in the last {window_days:g} days "
            f"(table {ws.table_path('care_queue')}; valence: the clause's own, -1..+1):\n" + _table_text(show, 30))


def monitor(ws: Workspace, freq: str = "W", window: int = 8, z: float = 3.0, min_reviews: int = 5) -> str:
    """Run the complaint monitor; write table ``alerts``; return a summary of the top alerts."""
    from emorec.profiles.monitor import monitor as run_monitor

    reviews = _reviews(ws)
    scores = ws.read_table("review_scores")
    items = _read_optional(ws, "items")
    res = run_monitor(reviews, scores, items, freq=freq, window=window, z=z, min_reviews=min_reviews)
    ws.write_table("alerts", res.alerts, {"rule": res.rule, "params": res.params})
    unit = "weeks" if freq == "W" else "months"
    head = f"monitor ({unit}): {len(res.alerts)} alerts (table {ws.table_path('alerts')})\nrule: {res.rule}"
    if res.alerts.empty:
        return head
    cols = ["rank", "level", "key", "period", "n_reviews", "share_negative", "z", "aspect"]
    if "title" in res.alerts.columns and res.alerts["title"].notna().any():  # what the item is, for a person
        cols.insert(3, "title")
    show = res.alerts[cols].copy()
    if "title" in show.columns:
        show["title"] = show["title"].fillna("-").map(lambda t: t if len(t) <= 40 else t[:39] + "…")
    show["period"] = show["period"].dt.strftime("%Y-%m-%d")
    show["share_negative"] = show["share_negative"].map("{:.0%}".format)
    show["z"] = show["z"].map("{:.1f}".format)
    show["aspect"] = show["aspect"].fillna("-")
    return head + "\n" + _table_text(show, 15)


# --------------------------------------------------------------------------------------
# argument parsing
# --------------------------------------------------------------------------------------


def add_parsers(subparsers, common_parent: argparse.ArgumentParser) -> None:
    """Add ``segment``, ``care`` and ``monitor`` to the ``emorec`` sub-command parsers."""
    p = subparsers.add_parser("segment", parents=[common_parent],
                              help="customer segments (rules from TOML) and clusters; exports and an HTML report")
    p.add_argument("--config", type=Path, metavar="TOML", help="segment rules (default: the shipped profiles/default_segments.toml)")
    p.add_argument("--out", type=Path, metavar="DIR", help="write one file per segment into DIR")
    p.add_argument("--format", dest="fmt", choices=["csv", "parquet"], default="csv", help="export format (default: %(default)s)")
    p.add_argument("--pseudonymize", action="store_true",
                   help="replace user ids in exports and in the report's care table by HMAC-SHA256(salt, id); salt from --salt-file or $EMOREC_PSEUDONYM_SALT")
    p.add_argument("--salt-file", type=Path, metavar="PATH", help="file holding the secret salt (must be outside --out)")
    p.add_argument("--report", type=Path, metavar="HTML", help="write the self-contained HTML segment report here")
    p.add_argument("--as-of", metavar="DATE", help="reference date for days_since_last_review (default: the newest review)")
    p.add_argument("--clusters", type=positive_int, metavar="K", help="fixed number of clusters (default: chosen by silhouette in 2..8)")
    p.add_argument("--seed", type=random_seed, default=0, help="clustering seed (default: %(default)s)")

    p = subparsers.add_parser("care", parents=[common_parent], help="care queue: customers to contact first, with their complaint")
    p.add_argument("--top", type=positive_int, default=50, help="number of customers (default: %(default)s)")
    p.add_argument("--window-days", type=float, default=30, help="only reviews from the last N days count (default: %(default)s)")
    p.add_argument("--as-of", metavar="DATE", help="end of the window (default: the newest review)")

    p = subparsers.add_parser("monitor", parents=[common_parent], help="complaint monitor: alerts on bursts of negative reviews")
    p.add_argument("--freq", choices=["W", "M"], default="W", help="W = weeks, M = months (default: %(default)s)")
    p.add_argument("--window", type=positive_int, default=8, help="baseline periods (default: %(default)s)")
    p.add_argument("--z", type=float, default=3.0, help="alert threshold in rolling standard deviations (default: %(default)s)")
    p.add_argument("--min-reviews", type=positive_int, default=5, help="minimum reviews in a period to alert (default: %(default)s)")


def _config(args) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("verbose", "quiet")}


def run_command(args, ws: Workspace, out) -> int:
    """Run ``args.command`` (one of :data:`COMMANDS`) under the workspace lock, recorded in ``runs``.

    Errors propagate to the CLI's handler: an :class:`~emorec.common.errors.EmorecError`
    becomes a one-line message and exit code 2.
    """
    from .runs import recorded_run

    if args.command not in COMMANDS:
        raise ConfigError(f"not a profile command: {args.command!r}")
    with ws.lock(f"emorec {args.command}"), recorded_run(ws, args.command, _config(args)) as run:
        t0 = time.perf_counter()
        if args.command == "segment":
            text = segment(ws, config_path=args.config, out=args.out, fmt=args.fmt, pseudonymize=args.pseudonymize,
                           salt_file=args.salt_file, report=args.report, as_of=args.as_of, k=args.clusters, seed=args.seed)
        elif args.command == "care":
            text = care(ws, top=args.top, window_days=args.window_days, as_of=args.as_of)
        else:
            text = monitor(ws, freq=args.freq, window=args.window, z=args.z, min_reviews=args.min_reviews)
        run.timings[args.command] = round(time.perf_counter() - t0, 3)
    out.write(text + "\n")
    return 0


__all__ = ["COMMANDS", "add_parsers", "care", "monitor", "run_command", "segment"]
