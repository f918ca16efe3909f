"""SHA-256 manifests of saved model folders: written at save time, verified at load time.

A saved model is a folder of files (JSON configs, safetensors, Parquet vocabularies, LightGBM's
text format). Their own loaders catch a truncated or garbled file, but not a same-length edit
(a changed threshold in a text model, a flipped byte in a tensor's data section), which would be
served silently. :func:`write_manifest` records the SHA-256 digest of every file in the folder in
``MANIFEST.sha256.json``; :func:`verify_manifest` recomputes them and raises
:class:`~emorec.common.errors.ArtifactError` naming the first file that is missing, changed,
added or a symbolic link, before any loader reads a byte of it.

The manifest protects against accidents and casual tampering; someone who can rewrite the model
files can also rewrite the manifest (it is not signed).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .atomic import atomic_write_text
from .errors import ArtifactError

MANIFEST_NAME = "MANIFEST.sha256.json"
_BLOCK = 1 << 20

__all__ = ["MANIFEST_NAME", "file_digests", "verify_manifest", "write_manifest"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def file_digests(folder: str | Path) -> dict[str, str]:
    """``relative path -> SHA-256 hex`` of every file under ``folder`` (the manifest excluded).

    Raises
    ------
    ArtifactError
        When an entry is a symbolic link or neither a file nor a folder (a model folder holds
        only plain files, so a link can only lead somewhere else).
    """
    folder = Path(folder)
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        for name in sorted(dirnames + filenames):
            path = here / name
            if path.is_symlink():
                raise ArtifactError(f"model folder {folder} contains a symbolic link {path}: refused "
                                    "(a saved model holds only plain files)")
        for name in sorted(filenames):
            path = here / name
            rel = path.relative_to(folder).as_posix()
            if rel == MANIFEST_NAME:
                continue
            if not path.is_file():
                raise ArtifactError(f"model folder {folder} contains {path}, which is not a plain file")
            out[rel] = _sha256(path)
    return dict(sorted(out.items()))


def write_manifest(folder: str | Path) -> Path:
    """Write ``MANIFEST.sha256.json`` listing the SHA-256 of every file in ``folder`` (atomically)."""
    folder = Path(folder)
    manifest = {"algorithm": "sha256", "files": file_digests(folder)}
    return atomic_write_text(folder / MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=True))


def verify_manifest(folder: str | Path) -> None:
    """Check every file of ``folder`` against its ``MANIFEST.sha256.json``.

    Raises
    ------
    ArtifactError
        Naming the folder and the file: no (or an unreadable) manifest, a file listed but
        missing, a file whose digest differs (edited, truncated, replaced), a file that is not
        listed (planted), or a symbolic link.
    """
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if path.is_symlink():
        raise ArtifactError(f"model manifest {path} is a symbolic link: refused")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        expected = dict(manifest["files"])
        if manifest.get("algorithm") != "sha256" or not all(isinstance(v, str) for v in expected.values()):
            raise ValueError("unknown algorithm or malformed digests")
    except FileNotFoundError:
        raise ArtifactError(f"model folder {folder} has no {MANIFEST_NAME} (it was not saved by this version of "
                            "emorec, or the manifest was deleted): retrain the model (`emorec train`)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"model manifest {path} is unreadable or corrupt ({exc}): retrain the model") from None
    actual = file_digests(folder)
    for rel, digest in expected.items():
        if rel not in actual:
            raise ArtifactError(f"model file {folder / rel} is missing (listed in {MANIFEST_NAME}): the model folder "
                                f"{folder} is incomplete or was tampered with; retrain the model")
        if actual[rel] != digest:
            raise ArtifactError(f"model file {folder / rel} was modified after it was saved (SHA-256 differs from "
                                f"{MANIFEST_NAME}): refusing to load {folder}; retrain the model")
    extra = sorted(set(actual) - set(expected))
    if extra:
        raise ArtifactError(f"model folder {folder} holds file(s) not in its {MANIFEST_NAME}: "
                            f"{', '.join(extra[:5])}; refusing to load it")
