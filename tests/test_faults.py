"""Faults: SIGKILL at several points of a real `emorec run`, concurrent writers, a full disk,
a read-only workspace, and the run record an operator reads the next morning.

Each killed run is a real subprocess (``python -m jobs.cli``-equivalent) stopped by SIGKILL,
either at an exact point (the test-only hook ``EMOREC_TEST_KILL_AT``, see
``jobs.store.crash_point``) or from outside once the process has visibly reached a stage.
After the kill the workspace must hold only complete tables, and a rerun must resume (scores
already checkpointed are not recomputed) and end with exactly the tables of an uninterrupted
run (compared table by table; only the ``runs`` table and model version names differ).

Every test that runs the pipeline in a subprocess is marked ``slow`` (``python -m pytest -m slow``):
the default run keeps one end-to-end pipeline run (tests/test_pipeline.py); the atomic
publication these tests exercise is also covered in-process (tests/test_store.py,
tests/test_atomic.py).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from emorec.jobs.cli import main
from emorec.jobs.store import KILL_ENV, Workspace

ROOT = Path(__file__).resolve().parents[1]
USERS = "200"  # 1,629 demo reviews
CHUNK = 100  # reviews per checkpointed scoring chunk in these tests (17 chunks)
RUN = ["run", "--demo-users", USERS, "--scorer", "lexicon", "-q", "--replace"]
# The real CLI with a smaller scoring chunk, so a 200-user run has many checkpoints.
_LAUNCH = "import sys, emorec.jobs.pipeline as p; p.SCORE_CHUNK = int(sys.argv[1]); from emorec.jobs.cli import main; sys.exit(main(sys.argv[2:]))"


def _cmd(ws: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", _LAUNCH, str(CHUNK), args[0], "-w", str(ws), *args[1:]]


def _env(kill_at: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != KILL_ENV}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    if kill_at:
        env[KILL_ENV] = kill_at
    return env


def cli(ws: Path, *args: str, kill_at: str | None = None, preexec=None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(ws, *args), env=_env(kill_at), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=preexec)


def snapshot(ws: Path) -> dict[str, pd.DataFrame]:
    """Every table but ``runs`` (run ids and times differ between runs)."""
    w = Workspace(ws)
    return {t: w.read_table(t) for t in w.tables() if t != "runs"}


def assert_same_outputs(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame]) -> None:
    assert sorted(got) == sorted(want)
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], obj=f"table {name}")


def runs(ws: Path) -> pd.DataFrame:
    return Workspace(ws).read_table("runs")


def score_counts(stdout: str) -> dict[str, int]:
    line = next(line for line in stdout.splitlines() if line.strip().startswith("score "))
    return {k: int(v.replace(",", "")) for k, v in (kv.split("=") for kv in line.split("s  ", 1)[1].split(", "))}


def leftovers(ws: Path) -> list[Path]:
    return [p for p in ws.rglob("*.tmp")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """The tables of an uninterrupted run."""
    ws = tmp_path_factory.mktemp("ref") / "ws"
    res = cli(ws, *RUN)
    assert res.returncode == 0, res.stderr
    return snapshot(ws)


# --- SIGKILL --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_kill_mid_scoring_resumes_without_rescoring(tmp_path, reference):
    ws = tmp_path / "ws"
    res = cli(ws, *RUN, kill_at="score:part#3")  # SIGKILL right after the 3rd chunk is checkpointed
    assert res.returncode == -signal.SIGKILL, res.stderr
    w = Workspace(ws)
    assert not w.has_table("review_scores")  # never half a table
    parts = list((ws / "partial" / "review_scores").glob("*/part-*.parquet"))
    assert len(parts) == 3 and all(len(pd.read_parquet(p)) == CHUNK for p in parts)
    assert runs(ws).status.tolist() == ["running"]

    res = cli(ws, *RUN)
    assert res.returncode == 0, res.stderr
    c = score_counts(res.stdout)
    # the 300 checkpointed reviews (and later reviews with the same text) are not rescored
    assert c["reused"] == 0 and c["resumed"] >= 3 * CHUNK and c["scored"] + c["resumed"] == len(reference["reviews"])
    assert_same_outputs(snapshot(ws), reference)
    assert not (ws / "partial").exists() and not leftovers(ws)
    r = runs(ws)
    assert r.status.tolist() == ["killed", "ok"]
    assert "killed" in r.error.iloc[0] and r.error.iloc[1] == ""


@pytest.mark.slow
def test_kill_mid_table_write_keeps_previous_tables(tmp_path, reference):
    ws = tmp_path / "ws"
    assert cli(ws, *RUN).returncode == 0
    before = snapshot(ws)
    # a different shop (150 users), killed after its profile tables' temporary files are
    # written and before they are renamed into place
    res = cli(ws, "run", "--demo-users", "150", "--scorer", "lexicon", "-q", "--replace", kill_at="write:item_profiles")
    assert res.returncode == -signal.SIGKILL
    assert any(p.name.startswith(".user_profiles.parquet") for p in leftovers(ws))  # the half-done write
    w = Workspace(ws)
    assert "user_profiles" in w.tables() and not any(t.startswith(".") for t in w.tables())
    pd.testing.assert_frame_equal(w.read_table("user_profiles"), before["user_profiles"])
    pd.testing.assert_frame_equal(w.read_table("item_profiles"), before["item_profiles"])
    assert w.read_table("reviews").user_id.nunique() == 150  # ingest of the killed run had completed

    res = cli(ws, *RUN)
    assert res.returncode == 0, res.stderr
    c = score_counts(res.stdout)
    assert c["reused"] > 0 and c["scored"] < len(reference["reviews"])  # the 150 users' scores are reused
    assert_same_outputs(snapshot(ws), reference)
    assert not leftovers(ws)  # stale temporary files are removed by the next writer


@pytest.mark.slow
def test_kill_between_the_renames_of_one_stage_is_completed_by_the_next_writer(tmp_path, reference):
    ws = tmp_path / "ws"
    assert cli(ws, *RUN).returncode == 0
    before = snapshot(ws)
    # a 150-user shop, killed after user_profiles is renamed into place and before item_profiles is
    res = cli(ws, "run", "--demo-users", "150", "--scorer", "lexicon", "-q", "--replace", kill_at="rename:user_profiles")
    assert res.returncode == -signal.SIGKILL
    w = Workspace(ws)
    assert (w.tables_dir / ".publish.json").exists()
    assert w.read_table("user_profiles").user_id.nunique() == 150  # new
    pd.testing.assert_frame_equal(w.read_table("item_profiles"), before["item_profiles"])  # still old
    with w.lock("the next writer"):  # any command that writes: it first completes the publication
        pass
    users, items, reviews = w.read_table("user_profiles"), w.read_table("item_profiles"), w.read_table("reviews")
    assert set(items.item_id) == set(reviews.item_id) and users.user_id.nunique() == 150  # both new, consistent
    assert not (w.tables_dir / ".publish.json").exists() and not leftovers(ws)
    res = cli(ws, *RUN)
    assert res.returncode == 0, res.stderr
    assert_same_outputs(snapshot(ws), reference)


@pytest.mark.slow
def test_kill_while_publishing_a_model_keeps_the_current_one(tmp_path, reference):
    ws = tmp_path / "ws"
    assert cli(ws, *RUN).returncode == 0
    w = Workspace(ws)
    current = w.model_path("recommender")
    res = cli(ws, "train", "--seed", "7", kill_at="model:recommender")  # trained and saved, not yet published
    assert res.returncode == -signal.SIGKILL
    assert w.model_path("recommender") == current
    assert any(p.name.endswith(".tmp") for p in (ws / "models" / "recommender").iterdir())
    user = reference["reviews"].user_id.iloc[0]
    assert main(["recommend", "-w", str(ws), "--user", user, "-n", "3"]) == 0  # the old model still serves

    res = cli(ws, *RUN)
    assert res.returncode == 0, res.stderr
    assert_same_outputs(snapshot(ws), reference)
    assert not leftovers(ws)
    assert runs(ws).status.tolist() == ["ok", "killed", "ok"]


def _kill_when(ws: Path, ready, timeout: float = 60) -> int:
    proc = subprocess.Popen(_cmd(ws, *RUN), env=_env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while not ready() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
    finally:
        proc.send_signal(signal.SIGKILL)  # also when waiting failed: never leave the run behind
        rc = proc.wait()
    return rc


@pytest.mark.slow
@pytest.mark.parametrize("point", ["scoring", "training"])
def test_sigkill_from_outside_at_an_observed_stage(tmp_path, reference, point):
    """No hook: the test watches the workspace and kills the process once it is scoring
    (2 chunks checkpointed) or past the profile stage (profile tables written)."""
    ws = tmp_path / "ws"
    if point == "scoring":
        def ready():
            return len(list((ws / "partial" / "review_scores").glob("*/part-*.parquet"))) >= 2
    else:
        def ready():
            return (ws / "tables" / "item_profiles.parquet").exists()
    rc = _kill_when(ws, ready)
    assert rc in (-signal.SIGKILL, 0)  # 0 only if the run won the race and finished first
    w = Workspace(ws)
    for t in w.tables():  # whatever is there is complete and readable
        w.read_table(t)
    res = cli(ws, *RUN)
    assert res.returncode == 0, res.stderr
    if point == "scoring" and rc == -signal.SIGKILL:
        assert score_counts(res.stdout)["resumed"] >= 2 * CHUNK
    assert_same_outputs(snapshot(ws), reference)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.3, 0.8, 1.3, 1.8, 2.5, 3.5])
def test_sigkill_at_arbitrary_times(tmp_path, reference, delay):
    ws = tmp_path / "ws"
    t0 = time.monotonic()
    _kill_when(ws, lambda: time.monotonic() - t0 > delay)
    res = cli(ws, *RUN)
    assert res.returncode == 0, res.stderr
    assert_same_outputs(snapshot(ws), reference)
    assert not leftovers(ws)


# --- concurrent writers ---------------------------------------------------------------------------------
WRITERS = [
    ["run", "--demo-users", "50", "--scorer", "lexicon"], ["ingest", "--reviews", "x.jsonl"], ["score", "--scorer", "lexicon"],
    ["profile"], ["train"], ["recommend"], ["segment"], ["care"], ["monitor"],
]


@pytest.mark.slow
def test_second_writer_fails_at_once_naming_the_holder(tmp_path, reference, caplog):
    ws = tmp_path / "ws"
    assert cli(ws, *RUN).returncode == 0
    mtimes = {p: p.stat().st_mtime_ns for p in (ws / "tables").iterdir()}
    script = textwrap.dedent(f"""
        import time
        from emorec.jobs.store import Workspace
        with Workspace({str(ws)!r}).lock("emorec run"):
            print("locked", flush=True)
            time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT, env=_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        for argv in WRITERS:
            caplog.clear()
            t0 = time.perf_counter()
            assert main([argv[0], "-w", str(ws), *argv[1:]]) == 2, argv
            assert time.perf_counter() - t0 < 5  # fails at once, does not hang
            assert f"in use by pid {holder.pid} (emorec run)" in caplog.text, argv
        import argparse

        from emorec.jobs import forget_commands
        from emorec.jobs.cli import _common

        parser = argparse.ArgumentParser()
        forget_commands.add_parsers(parser.add_subparsers(dest="command"), _common())
        with pytest.raises(Exception, match=f"in use by pid {holder.pid}"):
            forget_commands.run_command(parser.parse_args(["forget", "-w", str(ws), "--user", "U00001"]), Workspace(ws), None)
    finally:
        holder.kill()
        holder.wait()
    assert {p: p.stat().st_mtime_ns for p in (ws / "tables").iterdir()} == mtimes  # nothing was written
    assert main(["profile", "-w", str(ws)]) == 0  # the lock is free again after the holder died


# --- disk full, read-only workspace ---------------------------------------------------------------------
def _file_size_limit(limit: int):
    def pre():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


@pytest.mark.slow
def test_full_disk_is_a_clear_error_and_keeps_outputs(tmp_path, reference):
    """RLIMIT_FSIZE makes the kernel refuse writes past 40 kB, as a full disk would."""
    ws = tmp_path / "ws"
    assert cli(ws, *RUN).returncode == 0
    before = snapshot(ws)
    res = cli(ws, "profile", preexec=_file_size_limit(40_000))  # user_profiles.parquet is ~100 kB
    assert res.returncode == 2, res.stderr
    assert "could not write table 'user_profiles'" in res.stderr and "previous version is intact" in res.stderr
    assert "Traceback" not in res.stderr
    assert_same_outputs(snapshot(ws), before)
    assert not leftovers(ws)
    r = runs(ws)
    assert r.status.iloc[-1] == "failed" and "user_profiles" in r.error.iloc[-1]


class _LibraryWriteError(Exception):
    """What safetensors or LightGBM raise for a failed write: not an OSError."""


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"),
                                   _LibraryWriteError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                                                      'message: "No space left on device" })')])
def test_full_disk_while_saving_a_model(tmp_path, monkeypatch, error, caplog):
    ws = Workspace(tmp_path / "ws")
    assert main(["run", "-w", str(ws.root), "--demo-users", "50", "--scorer", "lexicon", "-q"]) == 0
    current = ws.model_path("recommender")

    def full(*a, **k):
        raise error

    monkeypatch.setattr("emorec.common.tensors.save_file", full)
    caplog.clear()
    assert main(["train", "-w", str(ws.root), "--seed", "3"]) == 2  # a one-line error, not a crash (exit 1)
    assert "could not write model 'recommender'" in caplog.text and "Traceback" not in caplog.text
    assert ws.model_path("recommender") == current
    assert not [p for p in (ws.models_dir / "recommender").iterdir() if p.name.startswith(".")]
    assert "No space left" in ws.read_table("runs").error.iloc[-1]


def _drop_root_file_powers():
    """As root, drop CAP_DAC_OVERRIDE/READ_SEARCH/FOWNER so file permissions apply (like any user)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2, 3):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.slow
def test_read_only_workspace_is_a_clear_error(tmp_path, reference):
    ws = tmp_path / "ws"
    assert cli(ws, *RUN).returncode == 0
    before = snapshot(ws)
    dirs = [ws, *[p for p in ws.rglob("*") if p.is_dir()]]
    files = [p for p in ws.rglob("*") if p.is_file()]
    for p in files:
        p.chmod(0o444)
    for d in dirs:
        d.chmod(0o555)
    try:
        pre = _drop_root_file_powers if os.geteuid() == 0 else None
        for argv in (["profile"], RUN):
            res = cli(ws, *argv, preexec=pre)
            assert res.returncode == 2, (argv, res.stderr)
            assert "cannot lock workspace" in res.stderr and "Permission denied" in res.stderr, res.stderr
            assert "Traceback" not in res.stderr
        res = cli(ws, "query", "SELECT count(*) AS n FROM reviews", preexec=pre)  # reading still works
        assert res.returncode == 0 and str(len(reference["reviews"])) in res.stdout
    finally:
        for d in dirs:
            d.chmod(0o755)
        for p in files:
            p.chmod(0o644)
    assert_same_outputs(snapshot(ws), before)


# --- the run record -------------------------------------------------------------------------------------
def test_every_run_is_recorded(tmp_path):
    ws = Workspace(tmp_path / "ws")
    assert main(["run", "-w", str(ws.root), "--demo-users", "50", "--scorer", "lexicon", "-q"]) == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"reviewerID": "u1", "reviewText": "no item"}\n')
    assert main(["ingest", "-w", str(ws.root), "--reviews", str(bad)]) == 2
    r = ws.read_table("runs")
    assert r.command.tolist() == ["run", "ingest"] and r.status.tolist() == ["ok", "failed"]
    ok, failed = r.iloc[0], r.iloc[1]
    assert ok.run_id and len(ok.data_fingerprint) == 16 and ok.seconds > 0 and pd.notna(ok.finished_at)
    assert json.loads(ok.config)["demo_users"] == 50
    counts = json.loads(ok.counts)
    assert counts["ingest.reviews"] > 0 and counts["recommend.users"] == 50
    assert {"python", "pandas", "duckdb", "emorec"} <= set(json.loads(ok.versions))
    assert "SchemaError" in failed.error and "item_id" in failed.error and str(bad) in failed.error
    assert len(failed.data_fingerprint) == 16
