"""Saved arrays: safetensors files written atomically and read back as memory maps.

``safetensors.numpy.load_file`` copies every tensor into fresh memory, so a model that several
processes on one machine load (Spark's Python workers, serving processes) costs its size once
per process. :func:`load_tensors` maps the file instead, copy-on-write: the page cache holds one
copy that every process shares, a page is read from disk only when it is touched, and an array
that is written to gets private pages (the file never changes). The arrays are plain
``numpy.ndarray`` views that keep the map alive.

A mapped file must never be truncated while it is read, so :func:`save_tensors` never writes in
place: it writes a temporary file and renames it over the target
(:func:`common.atomic.atomic_write`); a process still reading the old file keeps the old data.

The format is safetensors' own (an 8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, then the raw little-endian data), written by the
``safetensors`` package itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from .atomic import atomic_write

__all__ = ["load_tensors", "save_tensors"]

#: safetensors dtype codes and their numpy equivalents (little-endian, as the format stores them).
_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
           "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}


def save_tensors(arrays: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Write ``arrays`` to the safetensors file ``path`` atomically (never in place)."""
    data = {k: np.asarray(v, order="C") for k, v in arrays.items()}
    return atomic_write(path, lambda tmp: save_file(data, str(tmp)))


def load_tensors(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of the safetensors file ``path``, memory-mapped copy-on-write (see the module
    docstring).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the file is not a well-formed safetensors file (its message says what is wrong).
    """
    path = Path(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(8)
        if len(head) < 8:
            raise ValueError(f"{path} is not a safetensors file: {size} bytes, shorter than its header length")
        n = int.from_bytes(head, "little")
        if n > size - 8:
            raise ValueError(f"{path} is not a safetensors file: its header claims {n:,} bytes, the file has {size - 8:,}")
        try:
            header = json.loads(fh.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path} is not a safetensors file: its header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise ValueError(f"{path} is not a safetensors file: its header holds no object")
    header.pop("__metadata__", None)
    start = 8 + n
    buf = np.memmap(path, dtype=np.uint8, mode="c") if size > start else np.zeros(0, np.uint8)
    out: dict[str, np.ndarray] = {}
    for name, spec in header.items():
        try:
            code, shape, (lo, hi) = spec["dtype"], tuple(int(d) for d in spec["shape"]), spec["data_offsets"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: tensor {name!r} has no valid dtype, shape and data_offsets ({exc})") from exc
        if code not in _DTYPES:
            raise ValueError(f"{path}: tensor {name!r} has dtype {code}, which numpy does not hold "
                             f"(known: {', '.join(_DTYPES)})")
        dtype = np.dtype(_DTYPES[code])
        if not 0 <= lo <= hi <= size - start or hi - lo != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise ValueError(f"{path}: tensor {name!r} ({code}, shape {list(shape)}) does not fit its byte range "
                             f"[{lo}, {hi}) of {size - start:,} data bytes")
        out[name] = np.asarray(buf[start + lo:start + hi]).view(dtype).reshape(shape)
    return out
