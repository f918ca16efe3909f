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
    with pytest.raises(ArtifactError, match=f"{folder}.*corrupt"):
        load_service(ws_copy)
    assert not marker.exists()  # the payload never ran


@pytest.mark.parametrize("tamper", ["truncate_weights", "garbage_config", "wrong_shape", "missing_file"])
def test_tampered_recommender_fails_with_a_clear_error(ws_copy, tamper, caplog):
    folder = ws_copy.model_path("recommender")
    weights = next((folder / "model").glob("*.safetensors"))
    if tamper == "truncate_weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif tamper == "garbage_config":
        (folder / "service.json").write_text('{"format": 1, "config": {"model": "als", "evil": "__import__(\'os\')"}')
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
    with pytest.raises(ValueError, match="invalid"):
        with w.new_model_version(name, "v1"):
            pass
    assert not any((tmp_path / "ws").rglob("*.parquet"))


@pytest.mark.parametrize("version", ["../../evil", "/tmp/evil", "a/../../b", "..", ".hidden", "v1/../../x", ""])
def test_model_versions_cannot_leave_the_models_folder(tmp_path, version):
    w = Workspace(tmp_path / "ws")
    with pytest.raises(ValueError, match="invalid model version"):
        with w.new_model_version("recommender", version) as folder:
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


@pytest.mark.parametrize("sql", [
    "COPY (SELECT * FROM reviews) TO '/tmp/emorec-query-pwn.csv'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM glob('/etc/*')",
    "ATTACH '/tmp/emorec-query-pwn.db' AS x",
    "SELECT 1; COPY (SELECT 1) TO '/tmp/emorec-query-pwn.csv'",
    "SET enable_external_access = true",
    "INSTALL httpfs",
    "CREATE TABLE t AS SELECT 1",
    "DROP VIEW reviews",
    "SELECT * FROM read_parquet('../models/recommender/*/users.parquet')",
])
def test_query_command_is_read_only_and_confined(ws, sql, caplog):
    assert main(["query", "-w", str(ws.root), sql]) == 2
    assert caplog.text  # the reason is logged
    assert not list(Path("/tmp").glob("emorec-query-pwn*"))
    assert main(["query", "-w", str(ws.root), "SELECT count(*) AS n FROM reviews"]) == 0


def test_tampered_lightgbm_ranker_fails_with_a_clear_error(tmp_path):
    """The hybrid ranker is LightGBM's text format (no pickle); an edited file is an ArtifactError."""
    hybrid = pytest.importorskip("emorec.recommender.hybrid")
    folder = tmp_path / "hybrid"
    folder.mkdir()
    (folder / "hybrid.json").write_text(json.dumps({"config": {}}))
    (folder / "ranker.txt").write_text("tree\nversion=v4\nnum_class=1\nTree=0\nnum_leaves=")
    with pytest.raises(ArtifactError, match=f"{folder}.*corrupt"):
        hybrid.HybridRanker.from_pretrained(folder)
    (folder / "ranker.txt").write_bytes(pickle.dumps(_Bomb()))
    with pytest.raises(ArtifactError, match=str(folder)):
        hybrid.HybridRanker.from_pretrained(folder)
    assert not Path("/tmp/emorec-pwned-marker").exists()
