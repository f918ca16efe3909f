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
That holds on a local file system. On a network or FUSE file system (NFS, SMB, ``/dbfs``, ...)
another machine may delete the file under a mapping, and reading an unread page would then
fail, so there the arrays are read into memory instead (:data:`COPY_FILE_SYSTEMS`).

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

__all__ = ["COPY_FILE_SYSTEMS", "file_system_type", "load_tensors", "save_tensors"]

#: File system types (the part before a ``.``, as in ``fuse.sshfs``) whose files are read into
#: memory rather than mapped: network and FUSE mounts, where another machine may remove a file.
COPY_FILE_SYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse", "fuseblk", "ceph", "glusterfs",
                               "lustre", "gpfs", "afs", "beegfs", "virtiofs"})

#: safetensors dtype codes and their numpy equivalents (little-endian, as the format stores them).
_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
           "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}


def save_tensors(arrays: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Write ``arrays`` to the safetensors file ``path`` atomically (never in place)."""
    data = {k: np.asarray(v, order="C") for k, v in arrays.items()}
    return atomic_write(path, lambda tmp: save_file(data, str(tmp)))


def file_system_type(path: str | Path) -> str | None:
    """The type of the file system that holds ``path`` (from ``/proc/self/mounts``: ``ext4``,
    ``nfs4``, ``fuse.sshfs``, ...); ``None`` where the system does not say (not Linux)."""
    try:
        with open("/proc/self/mounts") as fh:
            mounts = [line.split() for line in fh]
    except OSError:
        return None
    target = str(Path(path).resolve())
    best, kind = "", None
    for fields in mounts:
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def load_tensors(path: str | Path, *, mmap: bool | None = None) -> dict[str, np.ndarray]:
    """The tensors of the safetensors file ``path``, memory-mapped copy-on-write (see the module
    docstring).

    Parameters
    ----------
    path
        A safetensors file.
    mmap
        Map the file (``True``) or read it into memory (``False``); ``None`` (default) maps it
        unless it lies on a network or FUSE file system (:data:`COPY_FILE_SYSTEMS`).

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
    if mmap is None:
        mmap = (file_system_type(path) or "").split(".")[0] not in COPY_FILE_SYSTEMS
    if size <= start:
        buf = np.zeros(0, np.uint8)
    else:
        buf = np.memmap(path, dtype=np.uint8, mode="c") if mmap else np.fromfile(path, dtype=np.uint8)
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
