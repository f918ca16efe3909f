"""How many CPU cores this process may use, and how to split them without oversubscribing.

``os.cpu_count()`` counts the machine's cores, not the ones this process is allowed: a container
limited to 2 CPUs on a 64-core host, or a job pinned to 4 cores with ``taskset``, would start 64
threads that fight over 2 or 4 cores (on a busy 2-core machine, torch's default threading
scored 3x slower than one thread). Every stage sizes its thread pools and worker processes
with :func:`available_cpus` and :func:`split_threads`.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

#: Where the cgroup file systems are mounted (a parameter of the readers below, for tests).
CGROUP_ROOT = Path("/sys/fs/cgroup")


def affinity_cpus() -> int:
    """Cores in this process's affinity mask (``taskset``, cpusets); ``os.cpu_count()`` where the
    platform has no affinity call."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _own_cgroup_paths(proc_cgroup: Path = Path("/proc/self/cgroup")) -> dict[str, str]:
    """``{controller: path}`` of this process from ``/proc/self/cgroup`` (``""`` is cgroup v2)."""
    out: dict[str, str] = {}
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            out[controller] = parts[2]
    return out


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """CPU quota of this process's cgroup in cores (e.g. 1.5), or None when unlimited.

    Reads cgroup v2 ``cpu.max`` (``"max 100000"`` or ``"150000 100000"``) or cgroup v1
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1 = unlimited), in this process's own
    cgroup and, as containers mount it, at the root of the hierarchy. The tightest limit wins.
    """
    own = _own_cgroup_paths(proc_cgroup)
    limits: list[float] = []
    v2_dirs = [root / own[""].lstrip("/")] if "" in own else []
    for folder in [*v2_dirs, root]:
        text = _read(folder / "cpu.max")
        if text:
            quota, _, period = text.partition(" ")
            if quota != "max" and period:
                with contextlib.suppress(ValueError, ZeroDivisionError):
                    limits.append(int(quota) / int(period))
    v1_dirs = []
    for name in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        base = root / name
        if "cpu" in own:
            v1_dirs.append(base / own["cpu"].lstrip("/"))
        v1_dirs.append(base)
    for folder in v1_dirs:
        quota_us, period_us = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
        if quota_us and period_us:
            try:
                q, p = int(quota_us), int(period_us)
            except ValueError:
                continue
            if q > 0 and p > 0:
                limits.append(q / p)
    return min(limits) if limits else None


def available_cpus() -> int:
    """Cores this process may use: its affinity mask, capped by its cgroup CPU quota (rounded
    up: a 1.5-CPU quota allows 2 threads), at least 1."""
    n = affinity_cpus()
    limit = cgroup_cpu_limit()
    if limit is not None:
        n = min(n, max(1, math.ceil(limit)))
    return max(1, n)


def split_threads(threads: int | None = None, workers: int = 1) -> int:
    """Threads per worker so that ``workers x threads <= cores``.

    Parameters
    ----------
    threads
        Total threads the user allows (``--threads``); default :func:`available_cpus`.
    workers
        Processes that will each run a thread pool.
    """
    total = available_cpus() if threads is None else int(threads)
    if total < 1:
        from .errors import ConfigError

        raise ConfigError(f"--threads must be at least 1, got {threads}")
    return max(1, total // max(1, int(workers)))


__all__ = ["affinity_cpus", "available_cpus", "cgroup_cpu_limit", "split_threads"]
