"""Progress of long loops: a tqdm bar on a terminal, a log line every few seconds without one.

tqdm hides its bar when stderr is not a terminal (a cron job, a CI log, ``> log.txt``), which
leaves a long stage silent; :class:`Progress` then writes ``score: 1,200 / 10,261 reviews (12%),
48.0 reviews/s, about 3m 8s left`` to the log every ``every`` seconds instead.
"""

from __future__ import annotations

import logging
import time

from tqdm.auto import tqdm


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60}m"


class Progress:
    """A progress counter: ``update(n)`` after each batch.

    Parameters
    ----------
    total
        Units of work expected.
    desc, unit
        Shown on the bar and in the log lines ("score", "review").
    logger
        Where the log lines go when there is no terminal.
    every
        Seconds between two log lines.
    disable
        None (default): a bar only on a terminal; True: neither bar nor log lines.
    """

    def __init__(self, total: int, desc: str, unit: str = "it", logger: logging.Logger | None = None,
                 every: float = 10.0, disable: bool | None = None) -> None:
        self.total, self.desc, self.unit, self.every = int(total), desc, unit, float(every)
        self.log = logger or logging.getLogger("emorec.progress")
        self.quiet = disable is True
        self.bar = tqdm(total=self.total, desc=desc, unit=unit, disable=True if self.quiet else None)
        self.done = 0
        self.started = self.last = time.monotonic()

    def update(self, n: int) -> None:
        """Count ``n`` more units done."""
        self.done += int(n)
        self.bar.update(int(n))
        if self.quiet or not self.bar.disable:
            return
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self.log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """The log line: done / total, share, rate and time left."""
        elapsed = max((now or time.monotonic()) - self.started, 1e-9)
        rate = self.done / elapsed
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        left = f", about {_duration((self.total - self.done) / rate)} left" if rate > 0 and self.total > self.done else ""
        return f"{self.desc}: {self.done:,} / {self.total:,} {self.unit}s{share}, {rate:.1f} {self.unit}s/s{left}"

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["Progress"]
