"""Packaging: one installed namespace (``emorec``), and every import declared in pyproject.toml."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("common", "sentiment", "profiles", "recommender", "jobs")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _python_files(*folders: str) -> list[Path]:
    return [p for f in folders for p in sorted((ROOT / f).rglob("*.py")) if "__pycache__" not in p.parts]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement in ``path`` (relative ones skipped)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def test_no_code_imports_a_stage_by_its_bare_folder_name():
    """``import sentiment`` works from a checkout by accident (the folder is on sys.path) and
    breaks in an installed wheel: the stages are only ever ``emorec.<stage>``."""
    bad = [f"{p.relative_to(ROOT)}:{line}: {mod}" for p in _python_files(*STAGES, "tests", "benchmarks")
           for line, mod in _imports(p) if mod.split(".")[0] in STAGES]
    assert not bad, "bare stage imports:\n" + "\n".join(bad)


def test_lower_stages_never_import_higher_ones():
    order = {s: i for i, s in enumerate(STAGES)}
    bad = []
    for stage in STAGES:
        for p in _python_files(stage):
            for line, mod in _imports(p):
                parts = mod.split(".")
                if parts[0] == "emorec" and len(parts) > 1 and parts[1] in order and order[parts[1]] > order[stage]:
                    bad.append(f"{p.relative_to(ROOT)}:{line}: {mod}")
    assert not bad, "a lower stage imports a higher one:\n" + "\n".join(bad)


def _declared(extra: str | None = None) -> set[str]:
    reqs = PYPROJECT["project"]["dependencies"] if extra is None else PYPROJECT["project"]["optional-dependencies"][extra]
    names = set()
    for r in reqs:
        name = r.split(";")[0]
        for sep in "<>=!~[ ":
            name = name.split(sep)[0]
        names.add(name.lower().replace("_", "-"))
    return names


def test_every_third_party_import_is_declared():
    """Each module the package imports comes from a distribution listed in ``dependencies``
    (``pyspark`` in the ``spark`` extra), not by accident through another package."""
    dist_of = metadata.packages_distributions()
    stdlib = sys.stdlib_module_names
    core, spark = _declared(), _declared("spark")
    missing = []
    for p in _python_files(*STAGES):
        for line, mod in _imports(p):
            top = mod.split(".")[0]
            if top in stdlib or top in ("emorec", "__future__"):
                continue
            dists = {d.lower().replace("_", "-") for d in dist_of.get(top, [])}
            allowed = core | spark if "spark" in p.relative_to(ROOT).parts else core
            if not dists & allowed:
                missing.append(f"{p.relative_to(ROOT)}:{line}: {top} (from {sorted(dists) or 'no installed distribution'})")
    assert not missing, "imports not declared in pyproject.toml:\n" + "\n".join(missing)


def test_lightgbm_ranker_needs_scikit_learn_which_is_declared():
    assert "scikit-learn" in _declared()


def test_wheel_installs_only_the_emorec_namespace(tmp_path):
    """Builds the wheel and checks what it would put into site-packages."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
                    str(ROOT)], check=True, capture_output=True, text=True)
    (wheel,) = tmp_path.glob("emorec-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"emorec", next(t for t in tops if t.endswith(".dist-info"))}, sorted(tops)
    assert "emorec/__init__.py" not in names  # an implicit namespace: nothing else can claim emorec/
    for stage in STAGES:
        assert f"emorec/{stage}/__init__.py" in names
    for data in ("emorec/sentiment/models/default/adapter.safetensors", "emorec/sentiment/models/default/config.json",
                 "emorec/sentiment/default_aspects.toml", "emorec/sentiment/augment_templates.toml",
                 "emorec/profiles/default_segments.toml",
                 "emorec/jobs/evaluation/example_variants.toml", "emorec/jobs/demo_shop_vocabulary.toml",
                 "emorec/profiles/templates/base.html.j2", "emorec/profiles/templates/macros.html.j2",
                 "emorec/profiles/templates/report.css", "emorec/profiles/templates/segment_report.html.j2",
                 "emorec/jobs/evaluation/templates/evaluation_report.html.j2"):
        assert data in names, f"{data} is missing from the wheel"
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "emorec = emorec.jobs.cli:main" in entry


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_stage_uses_another_stages_private_names():
    """What one stage shares with another is public (or lives in ``common/``): no module imports
    a ``_name`` (or a ``_module``) of another top-level stage, nor reads ``module._name`` of one."""
    bad = []
    for stage in STAGES:
        for p in _python_files(stage):
            other_modules = set()  # local names bound to another stage's modules
            for node in ast.walk(ast.parse(p.read_text(), str(p))):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    parts = node.module.split(".")
                    if parts[0] != "emorec" or len(parts) < 2 or parts[1] == stage:
                        continue
                    for a in node.names:
                        if _private(a.name) or any(_private(x) for x in parts[2:]):
                            bad.append(f"{p.relative_to(ROOT)}:{node.lineno}: from {node.module} import {a.name}")
                        other_modules.add(a.asname or a.name)
                elif isinstance(node, ast.Import):
                    for a in node.names:
                        parts = a.name.split(".")
                        if parts[0] == "emorec" and len(parts) > 1 and parts[1] != stage:
                            if any(_private(x) for x in parts[2:]):
                                bad.append(f"{p.relative_to(ROOT)}:{node.lineno}: import {a.name}")
                            if a.asname:
                                other_modules.add(a.asname)
            for node in ast.walk(ast.parse(p.read_text(), str(p))):
                if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                        and node.value.id in other_modules and _private(node.attr)):
                    bad.append(f"{p.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
    assert not bad, "private names used across stages:\n" + "\n".join(bad)
