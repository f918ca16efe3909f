"""Scoring chunks of texts in worker processes (for scorers that are pure Python, like VADER).

The transformer scorer already uses the cores through torch's threads and is scored in the
calling process; the lexicon scorer is single-threaded Python, so a process per core multiplies
its throughput (size the pool with :func:`emorec.common.cpus.available_cpus`, never more
processes than cores).

Workers never outlive the process that started them: each one watches it and exits at once
when it is gone (killed with SIGKILL or SIGTERM, or out of memory), instead of finishing its
queue of chunks for nobody.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

import pandas as pd

from .base import ProgressCallback, Scorer

_worker_scorer: Scorer | None = None


#: Seconds between two checks that the parent process is still alive.
PARENT_POLL = 0.5


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (cannot be ours, but be safe)
        return True
    return True


def _watch_parent(pid: int) -> None:
    """Exit this worker as soon as process ``pid`` (the one that started the pool) is gone."""
    while True:
        time.sleep(PARENT_POLL)
        if not _alive(pid) or os.getppid() == 1:
            os._exit(1)


def _init(scorer: Scorer, parent: int | None = None) -> None:
    global _worker_scorer
    _worker_scorer = scorer
    if parent is not None:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="emorec-parent-watch").start()


def _score(texts: list[str]) -> pd.DataFrame:
    return _worker_scorer.score(texts)


def score_chunks(scorer: Scorer, chunks: Iterable[list[str]], workers: int = 1,
                 progress: ProgressCallback | None = None) -> Iterator[pd.DataFrame]:
    """Score each chunk of texts, in order, with ``workers`` processes (1 = in this process).

    ``progress(n)`` is called per internal batch of the scorer in this process, per finished
    chunk with worker processes.
    """
    if workers <= 1 or not scorer.parallel:
        for chunk in chunks:
            yield scorer.score(chunk, progress=progress)
        return
    ctx = mp.get_context("forkserver")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=(scorer, os.getpid())) as pool:
        for part in pool.map(_score, chunks):
            if progress is not None:
                progress(len(part))
            yield part
