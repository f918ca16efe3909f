"""README.md keeps exactly two set-up commands, and .ci/run runs the test one."""

import re
import subprocess

from conftest import ROOT

COMMAND = re.compile(r"^    (pip install .*)$", re.MULTILINE)


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    commands = COMMAND.findall((ROOT / "README.md").read_text())
    assert len(commands) == 2, commands
    demo, tests = commands
    assert demo.startswith("pip install torch==2.13.0") and demo.endswith("emorec run")
    assert tests.startswith("pip install torch==2.13.0") and "pytest" in tests
    ci = (ROOT / ".ci" / "run").read_text()
    extracted = subprocess.run(
        ["bash", "-c", re.search(r"^cmd=\$\((.*)\)$", ci, re.MULTILINE).group(1)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.strip()
    assert extracted == tests
