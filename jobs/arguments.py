"""Argument types of the command-line parsers (``emorec`` and ``emorec train-emotions``).

A number no run can use (``--epochs 0``, ``--seed -1``, ``--top-n -5``) is refused while the
command line is parsed, with argparse's usage line and a message naming the flag, before any
data is read. The configs behind the flags check the same bounds for callers of the Python API.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from emorec.common.seeds import MAX_SEED

__all__ = ["non_negative_int", "positive_int", "random_seed", "whole_number"]


def whole_number(least: int, most: int | None = None) -> Callable[[str], int]:
    """An argparse ``type`` accepting whole numbers from ``least`` (to ``most``, when given)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if most is not None and not least <= value <= most:
            raise argparse.ArgumentTypeError(f"must be from {least} to {most}, got {value}")
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value

    parse.__name__ = f"whole_number({least}, {most})"
    return parse


#: Counts that must be at least 1 (epochs, threads, list lengths, ...).
positive_int = whole_number(1)
#: Counts that may be 0 (synthetic examples, evaluation intervals, ...).
non_negative_int = whole_number(0)
#: Random seeds: 0 to 2**32 - 1, what numpy's generators take.
random_seed = whole_number(0, MAX_SEED)
