"""Random seeds: the one range every emorec component accepts.

numpy's generators take seeds from 0 to 2**32 - 1, and so do torch, LightGBM and implicit as
emorec passes them on. A seed outside it is refused where it enters (a config field typed
:data:`emorec.common.config.Seed`, :func:`check_seed`, or the command line's ``random_seed``),
with a message naming the setting, instead of failing deep inside a library.
"""

from __future__ import annotations

import numbers

from .errors import ConfigError

__all__ = ["MAX_SEED", "check_seed", "is_whole_number"]

#: The largest random seed.
MAX_SEED = 2**32 - 1


def is_whole_number(value, least: int, most: int | None = None) -> bool:
    """Whether ``value`` is an integer (Python or numpy, not a bool) from ``least`` (to ``most``)."""
    return (isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= least
            and (most is None or int(value) <= most))


def check_seed(seed: int, where: str = "seed") -> int:
    """``seed`` as an int when it is a whole number in ``0 .. MAX_SEED``, else :class:`ConfigError` naming ``where``."""
    if not is_whole_number(seed, 0, MAX_SEED):
        raise ConfigError(f"{where}: a random seed must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    return int(seed)
