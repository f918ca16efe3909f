"""CLI glue for ``emorec forget``: erase customers from the workspace (right to erasure).

:func:`add_parsers` adds the sub-command and :func:`run_command` runs it under the workspace
lock, recorded in ``runs`` (with the number of users, never their ids), so ``jobs/cli.py``
needs two lines::

    forget_commands.add_parsers(sub, common)                                              # in build_parser()
    if args.command in forget_commands.COMMANDS: return forget_commands.run_command(args, ws, out)   # in main()

See :mod:`jobs.forget` for what is removed and how the users stay out of later runs.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from emorec.common.errors import InputError, WorkspaceError

if TYPE_CHECKING:
    from .store import Workspace

log = logging.getLogger(__name__)

COMMANDS = ("forget",)


def add_parsers(subparsers, common_parent: argparse.ArgumentParser) -> None:
    """Add ``forget`` to the ``emorec`` sub-command parsers."""
    p = subparsers.add_parser(
        "forget", parents=[common_parent],
        help="erase customers: their reviews, scores, profiles, segments, recommendations; later runs keep them out")
    p.add_argument("--user", action="append", default=[], metavar="ID",
                   help="customer id to erase, exactly as ingested (repeatable); without any id, completes an "
                        "interrupted erasure")
    p.add_argument("--users-file", type=Path, metavar="PATH", help="file with one customer id per line (UTF-8)")
    p.add_argument("--no-retrain", action="store_true",
                   help="delete recommender versions that know the users instead of retraining it")


def check_no_pending_erasure(ws: Workspace) -> None:
    """Refuse a workspace whose erasure is under way or was interrupted (see :mod:`jobs.forget`)."""
    from .forget import check_no_pending_erasure as check

    check(ws)


def _user_ids(args, ws: Workspace) -> list[str]:
    from .forget import pending_erasure

    ids = list(args.user)
    if args.users_file is not None:
        try:
            ids.extend(args.users_file.read_text(encoding="utf-8").splitlines())
        except FileNotFoundError:
            raise InputError(f"users file {args.users_file} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read users file {args.users_file}: {exc}") from None
    ids = [i for i in ids if i.strip()]
    if not ids and pending_erasure(ws) is None:
        raise InputError("forget needs --user ID or --users-file PATH")
    return ids


def run_command(args, ws: Workspace, out) -> int:
    """Run ``emorec forget`` under the workspace lock; the run record holds counts, not ids."""
    from .forget import forget_users
    from .runs import recorded_run

    if args.command not in COMMANDS:
        raise WorkspaceError(f"not a forget command: {args.command!r}")
    ids = _user_ids(args, ws)
    config = {"users": len(set(ids)), "retrain": not args.no_retrain}
    with ws.lock("emorec forget"), recorded_run(ws, "forget", config) as run:
        t0 = time.perf_counter()
        res = forget_users(ws, ids, retrain=not args.no_retrain)
        run.counts.update({f"rows.{k}": v for k, v in res.rows.items()})
        run.counts["models_deleted"] = len(res.models_deleted)
        run.counts["rebuilt"] = len(res.rebuilt)
        run.timings["forget"] = round(time.perf_counter() - t0, 3)
    total = sum(res.rows.values())
    out.write(f"forgot {res.users} user(s): {total:,} rows removed"
              + (" (" + ", ".join(f"{k}={v:,}" for k, v in sorted(res.rows.items())) + ")" if res.rows else "") + "\n")
    if res.rebuilt:
        out.write(f"  rebuilt without them: {', '.join(res.rebuilt)}\n")
    if res.models_deleted:
        out.write(f"  recommender versions deleted: {len(res.models_deleted)}"
                  + ("; retrained without them" if res.retrained else "") + "\n")
    for note in res.notes:
        out.write(f"  ! {note}\n")
    out.write("  later ingests drop these users (table forgotten_users holds keyed hashes, not ids)\n")
    return 0


__all__ = ["COMMANDS", "add_parsers", "check_no_pending_erasure", "run_command"]
