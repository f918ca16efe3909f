import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from emorec.jobs.runs import recorded_run
from emorec.jobs.store import Workspace, WorkspaceBusy, WorkspaceError


def test_write_read_metadata_and_query(tmp_path):
    ws = Workspace(tmp_path / "ws")
    df = pd.DataFrame({"user_id": ["a", "b"], "x": [1.5, 2.5]})
    ws.write_table("user_profiles", df, {"version": "1"})
    pd.testing.assert_frame_equal(ws.read_table("user_profiles"), df, check_dtype=False)
    assert ws.table_metadata("user_profiles") == {"version": "1"}
    assert ws.query("SELECT sum(x) AS s FROM user_profiles").s.iloc[0] == 4.0
    assert ws.tables() == ["user_profiles"]
    assert not list(ws.tables_dir.glob(".*tmp"))  # no temporary files left behind


def test_missing_table_names_the_command(tmp_path):
    with pytest.raises(WorkspaceError, match="emorec score"):
        Workspace(tmp_path).read_table("review_scores")
    with pytest.raises(ValueError, match="invalid table"):
        Workspace(tmp_path).table_path("../../etc/passwd")


def test_failed_write_keeps_previous_table(tmp_path, monkeypatch):
    ws = Workspace(tmp_path)
    ws.write_table("reviews", pd.DataFrame({"a": [1]}))

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("emorec.jobs.store.os.replace", boom)
    with pytest.raises(WorkspaceError, match=r"No space left.*previous version is intact"):
        ws.write_table("reviews", pd.DataFrame({"a": [2]}))
    monkeypatch.undo()
    assert ws.read_table("reviews").a.tolist() == [1]
    assert not list(ws.tables_dir.glob(".*tmp"))


def test_model_versions_publish_only_on_success(tmp_path):
    ws = Workspace(tmp_path)
    with ws.new_model_version("recommender", "v1") as folder:
        (folder / "f").write_text("one")
    with pytest.raises(RuntimeError), ws.new_model_version("recommender", "v2") as folder:
        (folder / "f").write_text("half")
        raise RuntimeError("crash while training")
    assert (ws.model_path("recommender") / "f").read_text() == "one"
    for v in ("v2", "v3", "v4"):
        with ws.new_model_version("recommender", v) as folder:
            (folder / "f").write_text(v)
    assert (ws.model_path("recommender") / "f").read_text() == "v4"
    kept = sorted(p.name for p in (ws.models_dir / "recommender").iterdir() if p.is_dir())
    assert kept == ["v3", "v4"]


def test_second_writer_fails_naming_holder(tmp_path):
    ws = Workspace(tmp_path)
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {os.getcwd()!r})
        from emorec.jobs.store import Workspace
        with Workspace({str(tmp_path)!r}).lock("emorec run"):
            print("locked", flush=True)
            time.sleep(30)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(WorkspaceBusy, match=rf"pid {holder.pid} \(emorec run\)"), ws.lock("emorec score"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with ws.lock("emorec score"):  # free again once the holder is gone
        pass


def test_runs_are_recorded_with_status(tmp_path):
    ws = Workspace(tmp_path)
    with recorded_run(ws, "ingest", {"x": 1}) as run:
        run.counts["reviews"] = 3
    with pytest.raises(ValueError), recorded_run(ws, "score"):
        raise ValueError("bad scorer")
    runs = ws.read_table("runs")
    assert runs.command.tolist() == ["ingest", "score"]
    assert runs.status.tolist() == ["ok", "failed"]
    assert '"reviews": 3' in runs.counts.iloc[0] and "bad scorer" in runs.error.iloc[1]
    assert "pandas" in runs.versions.iloc[0]


def test_multi_table_write_is_completed_after_a_failed_rename(tmp_path, monkeypatch):
    import emorec.jobs.store as store

    ws = Workspace(tmp_path / "ws")
    old = pd.DataFrame({"x": [1]})
    ws.write_tables({"a": (old, None), "b": (old, None)})
    new_a, new_b = pd.DataFrame({"x": [2]}), pd.DataFrame({"x": [3]})
    real_replace = os.replace
    calls = []

    def flaky(src, dst):  # the rename of b fails once
        calls.append(str(dst))
        if str(dst).endswith("/b.parquet") and calls.count(str(dst)) == 1:
            raise OSError(5, "Input/output error")
        return real_replace(src, dst)

    monkeypatch.setattr(store.os, "replace", flaky)
    with pytest.raises(WorkspaceError, match=r"table 'b'.*completes the others from the publish journal"):
        ws.write_tables({"a": (new_a, None), "b": (new_b, None)})
    monkeypatch.setattr(store.os, "replace", real_replace)
    # half published: a is new, b still old, and the journal says how to finish
    assert ws.read_table("a").x.tolist() == [2] and ws.read_table("b").x.tolist() == [1]
    assert (ws.tables_dir / store.PUBLISH_JOURNAL).exists()
    with ws.lock("next run"):  # the next writer completes the write before anything else
        pass
    assert ws.read_table("a").x.tolist() == [2] and ws.read_table("b").x.tolist() == [3]
    assert not (ws.tables_dir / store.PUBLISH_JOURNAL).exists() and not list(ws.tables_dir.glob(".*.tmp"))


def test_a_single_table_write_needs_no_journal(tmp_path, monkeypatch):
    import emorec.jobs.store as store

    ws = Workspace(tmp_path / "ws")
    monkeypatch.setattr(store.Workspace, "_write_journal", lambda *a: pytest.fail("journal for one table"))
    ws.write_table("a", pd.DataFrame({"x": [1]}))
    assert ws.read_table("a").x.tolist() == [1]
