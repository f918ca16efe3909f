"""Scoring chunks of texts in worker processes (for scorers that are pure Python, like VADER).

The transformer scorer already uses the cores through torch's threads and is scored in the
calling process; the lexicon scorer is single-threaded Python, so a process per core multiplies
its throughput (size the pool with :func:`emorec.common.cpus.available_cpus`, never more
processes than cores).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

import pandas as pd

from .base import ProgressCallback, Scorer

_worker_scorer: Scorer | None = None


def _init(scorer: Scorer) -> None:
    global _worker_scorer
    _worker_scorer = scorer


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
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=(scorer,)) as pool:
        for part in pool.map(_score, chunks):
            if progress is not None:
                progress(len(part))
            yield part
