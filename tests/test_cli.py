"""The command line a new user meets: exit codes, help that teaches, --version, evaluate --init."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from emorec.common.errors import InputError
from emorec.jobs import cli
from emorec.jobs.cli import COMMAND_HELP, build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def emorec(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emorec.jobs.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


# --- exit codes -----------------------------------------------------------------------------------------
def test_a_user_error_exits_2_with_one_line(tmp_path):
    res = emorec("ingest", "-w", str(tmp_path / "ws"), "--reviews", str(tmp_path / "missing.csv"))
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if "ERROR" in line]
    assert len(lines) == 1 and "missing.csv does not exist" in lines[0]
    assert "Traceback" not in res.stderr


def test_an_internal_bug_exits_1_with_a_hint_and_the_traceback_at_v(tmp_path, monkeypatch, caplog):
    def bug(args, out):
        raise KeyError("some_internal_column")  # not an EmorecError: a bug

    monkeypatch.setattr(cli, "cmd_demo", bug)
    assert main(["demo", "--out", str(tmp_path / "d")]) == 1
    text = caplog.text
    assert "internal error in `emorec demo`" in text and "KeyError" in text and "rerun with -v" in text
    assert "Traceback" not in text
    caplog.clear()
    assert main(["demo", "-v", "--out", str(tmp_path / "d")]) == 1
    assert "Traceback (most recent call last)" in caplog.text and "some_internal_column" in caplog.text


def test_an_emorec_error_exits_2_even_from_deep_inside(tmp_path, monkeypatch, caplog):
    def user_error(args, out):
        raise InputError("reviews.csv line 7: rating\nnot a number")

    monkeypatch.setattr(cli, "cmd_demo", user_error)
    assert main(["demo", "--out", str(tmp_path / "d")]) == 2
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].getMessage() == "reviews.csv line 7: rating not a number"  # one line


def test_keyboard_interrupt_exits_130(monkeypatch, tmp_path):
    def interrupted(args, out):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_demo", interrupted)
    assert main(["demo", "--out", str(tmp_path / "d")]) == 130


def test_a_bad_model_parameter_is_a_one_line_config_error(tmp_path, caplog):
    ws = tmp_path / "ws"
    assert main(["run", "-w", str(ws), "--demo-users", "40", "--scorer", "lexicon", "--model", "als", "-q"]) == 0
    caplog.clear()
    assert main(["train", "-w", str(ws), "--model", "ease", "--model-params", '{"l2": -5}']) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "\n" not in errors[0] and "l2" in errors[0], errors
    caplog.clear()
    assert main(["train", "-w", str(ws), "--model", "nosuchmodel"]) == 2
    assert "valid models" in caplog.text


# --- help -----------------------------------------------------------------------------------------------
COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)


def test_every_command_is_documented():
    assert set(COMMANDS) == set(COMMAND_HELP)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_has_a_description_and_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    if command == "train-emotions":  # its own parser
        assert "--data" in text and "--out" in text
        return
    line, examples = COMMAND_HELP[command]
    assert line in " ".join(text.split()) and "examples:" in text
    assert all(e.split("#")[0].strip() in text for e in examples) and all(e.startswith("emorec ") for e in examples)


def test_version_and_top_level_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("emorec ")
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "Exit codes" in out and all(c in out for c in ("ingest", "evaluate", "forget"))


def test_help_imports_nothing_heavy():
    """`emorec --help` answers at once: parsing the command line imports no data or ML library."""
    code = ("import sys; from emorec.jobs.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('pandas', 'numpy', 'torch', 'duckdb', 'pyarrow', 'scipy', 'lightgbm', 'implicit') "
            "if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


# --- evaluate --init ------------------------------------------------------------------------------------
def test_evaluate_init_writes_a_commented_config_that_loads(tmp_path, capsys):
    from emorec.jobs.evaluation.config import load_config

    target = tmp_path / "variants.toml"
    assert main(["evaluate", "--init", str(target)]) == 0
    text = target.read_text()
    assert text.count("#") > 10 and "[[variant]]" in text
    assert len(load_config(target).variants) >= 2
    assert f"--config {target}" in capsys.readouterr().out
    assert main(["evaluate", "--init", str(target)]) == 2  # never overwrites
    assert target.read_text() == text


def test_evaluate_without_config_says_how_to_start(tmp_path, caplog):
    assert main(["evaluate", "-w", str(tmp_path / "ws")]) == 2
    assert "--init" in caplog.text


def test_every_example_in_the_readme_command_table_parses():
    """The README's examples use options the command line has (e.g. `monitor --freq M`)."""
    import re
    import shlex

    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Command line"):text.index("## Outputs")]
    rows = [line for line in table.splitlines() if line.startswith("| `emorec ")]
    examples = [e for row in rows for e in re.findall(r"`(emorec [^`]+)`", row.rstrip(" |").rsplit(" | ", 1)[1])]
    assert len(rows) >= 16 and len(examples) >= len(rows)
    parser = build_parser()
    for example in examples:
        argv = shlex.split(example)[1:]
        if argv[0] in ("train-emotions", "COMMAND") or argv[0].startswith("-"):  # its own parser; placeholders
            continue
        parser.parse_args(argv)  # exits (SystemExit) on an unknown option or a bad value
