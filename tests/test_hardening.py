"""Issue 18, item 8: the smaller findings, each with a test that failed before its fix."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emorec.common.errors import InputError
from emorec.jobs.cli import main
from emorec.jobs.loaders import load_reviews
from emorec.jobs.store import Workspace
from emorec.profiles.monitor import monitor

ROOT = Path(__file__).resolve().parents[1]


def test_monitor_with_single_review_periods_does_not_crash():
    """`monitor --min-reviews 1 --z 0.5` crashed when an alert's period held one review."""
    t0 = pd.Timestamp("2020-01-06", tz="UTC")
    reviews = pd.DataFrame({"review_id": [f"r{i}" for i in range(12)], "item_id": "I1",
                            "timestamp": [t0 + pd.Timedelta(weeks=i) for i in range(12)]})
    scores = pd.DataFrame({"review_id": reviews["review_id"], "valence": [0.8] * 11 + [-0.9],
                           "asp_quality_mentions": [0] * 11 + [1], "asp_quality_sentiment": [np.nan] * 11 + [-0.8]})
    res = monitor(reviews, scores, min_reviews=1, z=0.5)
    assert len(res.alerts) == 1 and res.alerts["aspect"].iloc[0] == "quality"
    assert res.alerts["period"].iloc[0] == pd.Timestamp("2020-03-23", tz="UTC")  # the 12th week, the bad review


def test_truncated_gzip_names_the_line_reached(tmp_path):
    lines = "".join(json.dumps({"user_id": f"u{i}", "item_id": "i", "text": f"review {i}"}) + "\n" for i in range(5000))
    data = gzip.compress(lines.encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError) as err:
        load_reviews(path)
    line = int(str(err.value).split("after line ")[1].split(")")[0].replace(",", ""))
    assert 1000 < line < 5000, str(err.value)  # not "after line 0"


def test_ids_are_kept_exactly_and_control_characters_are_refused(tmp_path):
    path = tmp_path / "r.jsonl"
    recs = [{"user_id": " spaced ", "item_id": "i1", "text": "a"}, {"user_id": "\x00", "item_id": "i1", "text": "b"},
            {"user_id": "u\x00x", "item_id": "i2", "text": "c"}, {"user_id": "u3", "item_id": "\u200b", "text": "d"},
            {"user_id": "   ", "item_id": "i3", "text": "e"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    res = load_reviews(path)
    assert res.reviews["user_id"].tolist() == [" spaced "]
    reasons = dict(zip(res.quarantine["line"], res.quarantine["reason"]))
    assert "user_id contains control or invisible characters" in reasons[2]
    assert "user_id contains control or invisible characters" in reasons[3]
    assert "item_id contains control or invisible characters" in reasons[4]
    assert reasons[5] == "missing user_id"


def test_a_huge_review_is_quarantined_with_its_size(tmp_path):
    from emorec.jobs.contract import MAX_REVIEW_CHARS

    path = tmp_path / "r.csv"
    path.write_text(f"user_id,item_id,text\nu1,i1,{'x' * (MAX_REVIEW_CHARS + 1)}\nu2,i2,fine\n")
    res = load_reviews(path)
    assert res.reviews["user_id"].tolist() == ["u2"]
    assert res.quarantine["reason"].iloc[0] == f"text too long: {MAX_REVIEW_CHARS + 1:,} characters (at most {MAX_REVIEW_CHARS:,} are stored)"
    assert res.quarantine["user_id"].iloc[0] == "u1"


def _descendants(marker: str) -> list[int]:
    """Processes whose environment holds ``marker`` (the test's child and everything it started)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.mark.parametrize("sig", [signal.SIGKILL, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_scoring_workers_exit_with_their_parent(tmp_path, sig):
    marker = f"EMOREC_TEST_MARK={uuid.uuid4().hex}"
    script = textwrap.dedent("""
        import sys
        from emorec.sentiment import LexiconScorer
        from emorec.sentiment.parallel import score_chunks
        texts = ["the strap broke after a week, terrible quality but fast delivery"] * 400
        for i, _ in enumerate(score_chunks(LexiconScorer(), (texts for _ in range(100_000)), workers=2)):
            if i == 2:
                print("scoring", flush=True)
    """)
    env = {**os.environ, marker.split("=")[0]: marker.split("=")[1], "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "scoring"
        workers = [p for p in _descendants(marker) if p != proc.pid]
        assert len(workers) >= 2  # the forkserver and the workers
        proc.send_signal(sig)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() and _running(p) for p in workers):
            time.sleep(0.1)
        assert not [p for p in workers if Path(f"/proc/{p}").exists() and _running(p)]
    finally:
        for p in _descendants(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited


@pytest.mark.slow  # the fast, monkeypatched variant is tests/test_faults.py::test_full_disk_while_saving_a_model
def test_full_disk_while_saving_a_lightgbm_model_is_a_one_line_error(tmp_path):
    """LightGBM reports a failed write with its own error type (not OSError): still exit code 2."""
    ws = tmp_path / "ws"
    assert main(["run", "-w", str(ws), "--demo-users", "60", "--scorer", "lexicon", "--model", "hybrid", "-q"]) == 0
    current = Workspace(ws).model_path("recommender")

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    res = subprocess.run([sys.executable, "-m", "emorec.jobs.cli", "train", "-w", str(ws), "--model", "hybrid", "-q"],
                         capture_output=True, text=True, timeout=300, preexec_fn=limit, cwd=ROOT,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 2, res.stderr
    assert "could not write model 'recommender'" in res.stderr and "previous version is intact" in res.stderr
    assert "Traceback" not in res.stderr
    assert Workspace(ws).model_path("recommender") == current
