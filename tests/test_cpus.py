"""emorec.common.cpus (usable cores from affinity and cgroup quotas) and common.progress."""

from __future__ import annotations

import logging
import os

import pytest

from emorec.common import cpus
from emorec.common.errors import ConfigError
from emorec.common.progress import Progress


def _cgroup(tmp_path, proc: str, files: dict[str, str]):
    (tmp_path / "proc").write_text(proc)
    root = tmp_path / "cg"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root, tmp_path / "proc"


@pytest.mark.parametrize("proc, files, expected", [
    ("0::/job\n", {"job/cpu.max": "150000 100000\n"}, 1.5),                       # cgroup v2, own group
    ("0::/\n", {"cpu.max": "max 100000\n"}, None),                                 # v2, unlimited
    ("0::/a\n", {"a/cpu.max": "400000 100000", "cpu.max": "200000 100000"}, 2.0),  # the tightest limit wins
    ("4:cpu,cpuacct:/k\n", {"cpu,cpuacct/k/cpu.cfs_quota_us": "50000", "cpu,cpuacct/k/cpu.cfs_period_us": "100000"}, 0.5),  # v1
    ("4:cpu:/\n", {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),  # v1 unlimited
    ("garbage\n", {"cpu.max": "nonsense"}, None),
])
def test_cgroup_cpu_limit(tmp_path, proc, files, expected):
    root, proc_file = _cgroup(tmp_path, proc, files)
    assert cpus.cgroup_cpu_limit(root, proc_file) == expected


def test_available_cpus_is_the_tighter_of_affinity_and_quota(monkeypatch):
    monkeypatch.setattr(cpus, "affinity_cpus", lambda: 8)
    monkeypatch.setattr(cpus, "cgroup_cpu_limit", lambda: 1.5)
    assert cpus.available_cpus() == 2
    monkeypatch.setattr(cpus, "cgroup_cpu_limit", lambda: None)
    assert cpus.available_cpus() == 8
    monkeypatch.setattr(cpus, "cgroup_cpu_limit", lambda: 0.2)
    assert cpus.available_cpus() == 1
    assert cpus.split_threads(None, workers=3) == 1 and cpus.split_threads(8, workers=3) == 2
    with pytest.raises(ConfigError, match="threads"):
        cpus.split_threads(0)


def test_affinity_matches_the_os():
    if hasattr(os, "sched_getaffinity"):
        assert cpus.affinity_cpus() == len(os.sched_getaffinity(0))
    assert 1 <= cpus.available_cpus() <= (os.cpu_count() or 1)


def test_progress_logs_without_a_terminal(caplog, monkeypatch):
    clock = iter([0.0, 4.0, 10.5, 15.0, 22.0])  # start, then one reading per update
    monkeypatch.setattr("emorec.common.progress.time.monotonic", lambda: next(clock))
    log = logging.getLogger("test.progress")
    with caplog.at_level(logging.INFO, logger="test.progress"), Progress(100, "score", unit="review", logger=log, every=10) as bar:
        assert bar.bar.disable  # pytest's stderr is not a terminal
        for _ in range(4):
            bar.update(10)
    lines = [r.getMessage() for r in caplog.records]
    # a line once 10 s have passed since the last one: at 10.5 s (20 done) and 22 s (40 done)
    assert lines == ["score: 20 / 100 reviews (20%), 1.9 reviews/s, about 42s left",
                     "score: 40 / 100 reviews (40%), 1.8 reviews/s, about 33s left"]
