"""Security: no unpickling, tampered artifacts fail clearly, paths stay inside the workspace,
segment rules and ``emorec query`` cannot run arbitrary SQL or touch other files."""

from __future__ import annotations

import ast
import json
import pickle
import shutil
from pathlib import Path

import pandas as pd
import pytest

from emorec.jobs.cli import main
from emorec.jobs.pipeline import load_service
from emorec.jobs.store import Workspace, WorkspaceError
from emorec.recommender import ArtifactError

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["sentiment", "profiles", "recommender", "jobs"]


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("sec") / "ws"
    assert main(["run", "-w", str(root), "--demo-users", "60", "--scorer", "lexicon", "-q"]) == 0
    return Workspace(root)


@pytest.fixture
def ws_copy(ws, tmp_path) -> Workspace:
    shutil.copytree(ws.root, tmp_path / "ws")
    return Workspace(tmp_path / "ws")


# --- no unpickling --------------------------------------------------------------------------------------
def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            base = getattr(f.value, "id", "") if isinstance(f, ast.Attribute) else ""
            yield node, base, name


def test_source_never_unpickles():
    """No pickle/joblib/read_pickle, torch.load only with weights_only=True, np.load never with
    allow_pickle=True, in any module of the four packages."""
    offenders = []
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                    if any(n.split(".")[0] in ("pickle", "cPickle", "dill", "joblib", "cloudpickle") for n in names):
                        offenders.append(f"{path}:{node.lineno} imports a pickle module")
            for node, base, name in _calls(tree):
                kw = {k.arg: k.value for k in node.keywords}
                if name in ("read_pickle", "loads") and base in ("pd", "pandas", "pickle"):
                    offenders.append(f"{path}:{node.lineno} {base}.{name}")
                if name == "load" and base == "torch":
                    ok = isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True
                    if not ok:
                        offenders.append(f"{path}:{node.lineno} torch.load without weights_only=True")
                if name == "load" and base in ("np", "numpy"):
                    v = kw.get("allow_pickle")
                    if v is not None and not (isinstance(v, ast.Constant) and v.value is False):
                        offenders.append(f"{path}:{node.lineno} np.load(allow_pickle=...)")
    assert offenders == []


class _Bomb:
    def __reduce__(self):
        return (Path.write_text, (Path("/tmp/emorec-pwned-marker"), "pwned"))


def test_pickle_payload_in_place_of_weights_is_rejected(ws_copy):
    marker = Path("/tmp/emorec-pwned-marker")
    marker.unlink(missing_ok=True)
    folder = ws_copy.model_path("recommender")
    (folder / "seen.safetensors").write_bytes(pickle.dumps(_Bomb()))
    with pytest.raises(ArtifactError, match=f"{folder}/seen.safetensors was modified"):
        load_service(ws_copy)
    (folder / "MANIFEST.sha256.json").unlink()  # without the manifest: refused as well
    with pytest.raises(ArtifactError, match=f"{folder}.*MANIFEST"):
        load_service(ws_copy)
    assert not marker.exists()  # the payload never ran


@pytest.mark.parametrize("tamper", ["truncate_weights", "garbage_config", "wrong_shape", "missing_file"])
def test_tampered_recommender_fails_with_a_clear_error(ws_copy, tamper, caplog):
    folder = ws_copy.model_path("recommender")
    weights = next((folder / "model").glob("*.safetensors"))
    if tamper == "truncate_weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif tamper == "garbage_config":
        (folder / "service.json").write_text('{"format": 3, "config": {"model": "als", "evil": "__import__(\'os\')"}')
    elif tamper == "wrong_shape":
        vocab = pd.read_parquet(folder / "items.parquet")
        vocab.iloc[:-5].to_parquet(folder / "items.parquet")
    else:
        weights.unlink()
    with pytest.raises(ArtifactError, match=str(folder)):
        load_service(ws_copy)
    user = ws_copy.read_table("reviews").user_id.iloc[0]
    assert main(["recommend", "-w", str(ws_copy.root), "--user", user]) == 2  # a clear error, no traceback
    assert str(folder) in caplog.text


@pytest.mark.parametrize("tamper", ["truncate_adapter", "edit_config", "pickle_adapter"])
def test_tampered_sentiment_model_fails_with_a_clear_error(tmp_path, tamper):
    from emorec.sentiment.encoder import EmotionEncoder
    from emorec.sentiment.transformer import SHIPPED_MODEL

    folder = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, folder)
    adapter = folder / "adapter.safetensors"
    if tamper == "truncate_adapter":
        adapter.write_bytes(adapter.read_bytes()[:1000])
    elif tamper == "edit_config":
        cfg = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps(cfg)[:-10])
    else:
        adapter.write_bytes(pickle.dumps(_Bomb()))
    from emorec.common.errors import ArtifactError

    with pytest.raises(ArtifactError, match=f"{folder}.*corrupt"):
        EmotionEncoder.from_pretrained(folder)
    assert not Path("/tmp/emorec-pwned-marker").exists()


# --- paths ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "a/b", "..", "Reviews", "x;y", ""])
def test_table_and_model_names_cannot_leave_the_workspace(tmp_path, name):
    w = Workspace(tmp_path / "ws")
    with pytest.raises(ValueError, match="invalid"):
        w.write_table(name, pd.DataFrame({"a": [1]}))
    with pytest.raises(ValueError, match="invalid"), w.new_model_version(name, "v1"):
        pass
    assert not any((tmp_path / "ws").rglob("*.parquet"))


@pytest.mark.parametrize("version", ["../../evil", "/tmp/evil", "a/../../b", "..", ".hidden", "v1/../../x", ""])
def test_model_versions_cannot_leave_the_models_folder(tmp_path, version):
    w = Workspace(tmp_path / "ws")
    with pytest.raises(ValueError, match="invalid model version"), w.new_model_version("recommender", version) as folder:
        (folder / "f").write_text("x")
    assert not (tmp_path / "evil").exists() and not list(tmp_path.rglob("f"))


@pytest.mark.parametrize("pointer", ["../../../../etc", "/etc", "v1/../../x", "missing-version"])
def test_tampered_current_pointer_is_refused(ws_copy, pointer):
    (ws_copy.models_dir / "recommender" / "CURRENT").write_text(pointer)
    with pytest.raises(WorkspaceError, match="CURRENT"):
        ws_copy.model_path("recommender")


def test_segment_export_names_from_config_cannot_escape(ws_copy, tmp_path, caplog):
    evil = tmp_path / "evil.toml"
    evil.write_text('[[segment]]\nname = "../../escaped"\nrules = [["n_reviews", ">", 0]]\n')
    assert main(["segment", "-w", str(ws_copy.root), "--config", str(evil), "--out", str(tmp_path / "out")]) == 2
    assert "not an identifier" in caplog.text
    assert not list(tmp_path.rglob("escaped*")) and not (tmp_path / "out").exists()


# --- SQL ------------------------------------------------------------------------------------------------
INJECTIONS = [
    ("n_reviews; DROP TABLE profiles_input; --", ">", 0),
    ('n_reviews" > 0 OR "1"="1', ">", 0),
    ("top_aspect", "=", "x' OR '1'='1"),
    ("top_aspect", "=", "'; COPY (SELECT 1) TO '/tmp/emorec-sql-pwn.csv'; --"),
    ("top_aspect", "in", ["a", "b') OR 1=1 --"]),
    ("n_reviews", "> 0 OR 1=1 --", 0),
    ("n_reviews", ">", "0 OR 1=1"),
]


@pytest.mark.parametrize("field,op,value", INJECTIONS)
def test_segment_rules_cannot_run_sql(ws_copy, tmp_path, field, op, value):
    cfg = tmp_path / "seg.toml"
    cfg.write_text(f"[[segment]]\nname = \"target\"\nrules = [[{json.dumps(field)}, {json.dumps(op)}, {json.dumps(value)}]]\n")
    before = {t: ws_copy.read_table(t) for t in ws_copy.tables() if t != "runs"}
    rc = main(["segment", "-w", str(ws_copy.root), "--config", str(cfg)])
    if rc == 0:  # accepted only as a literal value of a text column: it matches nobody
        assert set(ws_copy.read_table("segments").segment) == {"unassigned"}
    else:
        assert rc == 2
    assert not Path("/tmp/emorec-sql-pwn.csv").exists()
    for t, df in before.items():
        pd.testing.assert_frame_equal(ws_copy.read_table(t), df)


#: Statements that try to leave the read-only sandbox of `emorec query`. ``{ws}`` is the workspace,
#: ``{out}`` a path outside it. Each must be refused (exit 2) or harmless (it changes nothing).
QUERY_ESCAPES = [
    "EXPLAIN ANALYZE COPY (SELECT * FROM reviews LIMIT 5) TO '{ws}/tables/reviews.parquet' (FORMAT parquet)",
    "EXPLAIN ANALYZE COPY (SELECT * FROM reviews LIMIT 0) TO '{ws}/tables/forgotten_users.parquet' (FORMAT parquet)",
    "EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{ws}/tables/planted.parquet' (FORMAT parquet)",
    "EXPLAIN COPY (SELECT * FROM reviews) TO '{out}.csv'",
    "COPY (SELECT * FROM reviews) TO '{out}.csv'",
    "COPY reviews TO '{ws}/tables/reviews.parquet' (FORMAT parquet)",
    "COPY (SELECT 1) TO '{cwd}/.tmp/emorec-query-pwn.csv'",
    "SELECT 1; COPY (SELECT 1) TO '{out}.csv'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/hostname')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_blob('/etc/hostname')",
    "SELECT * FROM read_json('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM glob('{ws}/*')",
    "SELECT * FROM read_parquet('{ws}/models/recommender/*/users.parquet')",
    "SELECT * FROM read_parquet('{ws}/tables/reviews.parquet')",
    "SELECT * FROM '{ws}/tables/reviews.parquet'",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM read_text('{ws}/.forget_key')",
    "ATTACH '{out}.db' AS x",
    "ATTACH '{ws}/tables/x.db' AS x",
    "ATTACH ':memory:' AS m",
    "INSTALL httpfs",
    "LOAD httpfs",
    "FORCE INSTALL parquet",
    "SET enable_external_access = true",
    "RESET enable_external_access",
    "SET lock_configuration = false",
    "SET allowed_directories = ['/']",
    "SET python_enable_replacements = true",
    "PRAGMA enable_profiling",
    "SET profiling_output = '{out}.prof'",
    "PRAGMA database_list",
    "CREATE TABLE t AS SELECT * FROM reviews",
    "CREATE VIEW v AS SELECT 1",
    "INSERT INTO reviews SELECT * FROM reviews",
    "DELETE FROM reviews",
    "DROP VIEW reviews",
    "EXPORT DATABASE '{out}_db'",
    "CALL duckdb_settings()",
    "SELECT * FROM duckdb_extensions()",
    "SELECT current_setting('enable_external_access')",
    "CHECKPOINT",
    "VACUUM",
    "DETACH memory",
]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_query_escapes_are_refused_or_harmless(ws_copy, caplog, monkeypatch, tmp_path):
    """At least 30 ways out of `emorec query` (writes through EXPLAIN ANALYZE, COPY, ATTACH, extensions,
    settings, PRAGMA, table functions reading files): every one is refused or changes nothing, and the
    workspace is byte-identical afterwards."""
    assert len(QUERY_ESCAPES) >= 30
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".tmp").mkdir()
    out = tmp_path / "outside" / "emorec-query-pwn"
    out.parent.mkdir()
    before = _tree(ws_copy.root)
    results = {}
    for template in QUERY_ESCAPES:
        sql = template.format(ws=ws_copy.root.resolve(), out=out, cwd=tmp_path)
        caplog.clear()
        rc = main(["query", "-w", str(ws_copy.root), sql])
        results[template] = rc
        assert rc in (0, 2), (sql, rc, caplog.text)  # refused (2) or a harmless read (0); never a crash (1)
        if rc == 2:
            assert caplog.text.strip()
    assert _tree(ws_copy.root) == before  # nothing written, planted or emptied
    assert not list(out.parent.iterdir()) and not list((tmp_path / ".tmp").iterdir())
    refused = [t for t, rc in results.items() if rc == 2]
    assert len(refused) >= 30, results
    for reader in ("read_text('/etc/hostname')", "glob('/etc/*')", "'/etc/passwd'", "read_csv('/etc/passwd')"):
        assert results[next(t for t in QUERY_ESCAPES if reader in t)] == 2, reader
    assert main(["query", "-w", str(ws_copy.root), "SELECT count(*) AS n FROM reviews"]) == 0


@pytest.mark.parametrize("template", [t for t in QUERY_ESCAPES if "COPY" in t or "ATTACH '{" in t or "EXPORT" in t
                                      or "read_" in t or "glob" in t or "INSTALL" in t or "LOAD" in t or "SET " in t])
def test_the_query_connection_itself_cannot_write_or_read_files(ws_copy, tmp_path, template):
    """Without emorec query's statement check: the connection alone refuses every file access and
    every change of its settings (the sandbox does not rely on filtering statements)."""
    import duckdb

    sql = template.format(ws=ws_copy.root.resolve(), out=tmp_path / "pwn", cwd=tmp_path)
    before = _tree(ws_copy.root)
    with ws_copy.connect() as con:
        with pytest.raises(duckdb.Error):
            con.execute(sql).fetchall()
        assert con.execute("SELECT count(*) FROM reviews").fetchone()[0] > 0
    assert _tree(ws_copy.root) == before and not list(tmp_path.glob("pwn*"))


def test_query_command_is_read_only_and_confined(ws, caplog):
    for sql in ["CREATE TABLE t AS SELECT 1", "COPY (SELECT * FROM reviews) TO '/tmp/emorec-query-pwn.csv'"]:
        assert main(["query", "-w", str(ws.root), sql]) == 2
        assert caplog.text  # the reason is logged
    assert not list(Path("/tmp").glob("emorec-query-pwn*"))
    assert main(["query", "-w", str(ws.root), "SELECT count(*) AS n FROM reviews"]) == 0


# --- symbolic links ---------------------------------------------------------------------------------------
def _target(tmp_path: Path) -> tuple[Path, dict]:
    """A folder outside the workspace with content that must survive."""
    target = tmp_path / "elsewhere"
    for sub in ("a", "b"):
        (target / sub).mkdir(parents=True)
        (target / sub / "keep.txt").write_text("precious")
    (target / "file.txt").write_text("precious")
    return target, _tree(target)


def test_symlinked_checkpoint_folder_is_refused(ws_copy, tmp_path, caplog):
    target, before = _target(tmp_path)
    (ws_copy.root / "partial").mkdir(exist_ok=True)
    (ws_copy.root / "partial" / "review_scores").symlink_to(target, target_is_directory=True)
    assert main(["score", "-w", str(ws_copy.root), "--scorer", "lexicon"]) == 2
    assert "symbolic link" in caplog.text and "partial/review_scores" in caplog.text
    assert _tree(target) == before  # nothing deleted or written there


def test_symlinked_lock_file_is_refused(ws_copy, tmp_path, caplog):
    target, before = _target(tmp_path)
    (ws_copy.root / ".lock").unlink(missing_ok=True)
    (ws_copy.root / ".lock").symlink_to(target / "file.txt")
    assert main(["profile", "-w", str(ws_copy.root)]) == 2
    assert "symbolic link" in caplog.text
    assert _tree(target) == before


def test_symlinked_model_version_is_not_loaded(ws_copy, tmp_path, caplog):
    folder = ws_copy.model_path("recommender")
    moved = tmp_path / "outside-model"
    shutil.move(str(folder), moved)
    folder.symlink_to(moved, target_is_directory=True)
    with pytest.raises(ArtifactError, match="symbolic link"):
        load_service(ws_copy)
    user = ws_copy.read_table("reviews").user_id.iloc[0]
    assert main(["recommend", "-w", str(ws_copy.root), "--user", user]) == 2
    assert main(["query", "-w", str(ws_copy.root), "SELECT 1"]) == 2  # the workspace as a whole is refused
    assert moved.is_dir() and (moved / "service.json").exists()


def test_the_workspace_folder_itself_may_be_a_link(ws_copy, tmp_path):
    link = tmp_path / "ws-link"
    link.symlink_to(ws_copy.root, target_is_directory=True)
    assert main(["profile", "-w", str(link), "-q"]) == 0


# --- model manifests ------------------------------------------------------------------------------------
def test_same_length_edit_of_the_lightgbm_model_is_detected(ws_copy, caplog):
    folder = ws_copy.model_path("recommender")
    ranker = next(folder.rglob("*.txt"))
    text = ranker.read_bytes()
    i = text.index(b"threshold=") + len(b"threshold=")
    digit = next(j for j in range(i, i + 40) if text[j:j + 1].isdigit())
    edited = text[:digit] + (b"7" if text[digit:digit + 1] != b"7" else b"3") + text[digit + 1:]
    assert len(edited) == len(text)
    ranker.write_bytes(edited)
    with pytest.raises(ArtifactError, match=f"{ranker.name} was modified"):
        load_service(ws_copy)
    user = ws_copy.read_table("reviews").user_id.iloc[0]
    assert main(["recommend", "-w", str(ws_copy.root), "--user", user]) == 2
    assert str(ranker) in caplog.text


def test_length_changing_edit_is_a_clear_error_not_an_abort(ws_copy):
    """Before manifests, LightGBM aborted the process (exit 134) and the run stayed `running`."""
    import subprocess
    import sys

    folder = ws_copy.model_path("recommender")
    ranker = next(folder.rglob("*.txt"))
    ranker.write_bytes(ranker.read_bytes().replace(b"Tree=1", b"Tree=1\nnum_leaves=zz", 1))
    res = subprocess.run([sys.executable, "-m", "emorec.jobs.cli", "recommend", "-w", str(ws_copy.root)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert f"{ranker.name} was modified" in res.stderr and "Traceback" not in res.stderr
    assert ws_copy.read_table("runs").status.iloc[-1] == "failed"


def test_changed_byte_in_a_safetensors_data_section_is_detected(ws_copy):
    folder = ws_copy.model_path("recommender")
    weights = folder / "seen.safetensors"
    data = bytearray(weights.read_bytes())
    header = int.from_bytes(data[:8], "little")
    data[8 + header + 3] ^= 0x01  # one bit of the tensor data, after the JSON header
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"seen\.safetensors was modified"):
        load_service(ws_copy)


def test_a_file_planted_in_a_model_folder_is_refused(ws_copy):
    folder = ws_copy.model_path("recommender")
    (folder / "extra.json").write_text("{}")
    with pytest.raises(ArtifactError, match=r"extra\.json"):
        load_service(ws_copy)


def test_tampered_lightgbm_ranker_fails_with_a_clear_error(tmp_path):
    """The hybrid ranker is LightGBM's text format (no pickle); an edited file is an ArtifactError."""
    from emorec.recommender import hybrid
    folder = tmp_path / "hybrid"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"format": 2, "model": "hybrid", "config": {}}))
    (folder / "ranker.txt").write_text("tree\nversion=v4\nnum_class=1\nTree=0\nnum_leaves=")
    with pytest.raises(ArtifactError, match=f"{folder}.*corrupt"):
        hybrid.HybridRanker.from_pretrained(folder)
    (folder / "ranker.txt").write_bytes(pickle.dumps(_Bomb()))
    with pytest.raises(ArtifactError, match=str(folder)):
        hybrid.HybridRanker.from_pretrained(folder)
    assert not Path("/tmp/emorec-pwned-marker").exists()
