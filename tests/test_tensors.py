"""common/tensors.py: safetensors written atomically, read back as copy-on-write memory maps."""

from __future__ import annotations

import mmap
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from emorec.common import tensors
from emorec.common.tensors import file_system_type, load_tensors, save_tensors


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"f32": rng.random((7, 5)).astype(np.float32), "f64": rng.random(11), "i64": np.arange(-3, 10, dtype=np.int64),
            "i32": np.array([5, -1, 7], np.int32), "u8": np.arange(9, dtype=np.uint8), "flags": np.array([True, False, True]),
            "empty": np.zeros((0, 4), np.float32), "scalar": np.array(2.5, np.float64)}


def _backed_by_mmap(a: np.ndarray) -> bool:
    base = a
    while base is not None:
        if isinstance(base, mmap.mmap):
            return True
        base = getattr(base, "base", None)
    return False


def test_round_trip_equals_what_safetensors_reads(tmp_path):
    arrays = _arrays()
    path = save_tensors(arrays, tmp_path / "a.safetensors")
    got, ref = load_tensors(path), load_file(str(path))
    assert sorted(got) == sorted(arrays) == sorted(ref)
    for k, v in arrays.items():
        assert type(got[k]) is np.ndarray and got[k].dtype == v.dtype and got[k].shape == v.shape, k
        np.testing.assert_array_equal(got[k], v)
        np.testing.assert_array_equal(got[k], ref[k])
    assert _backed_by_mmap(got["f32"]) and not got["f32"].flags.owndata


def test_reads_files_the_safetensors_package_wrote(tmp_path):
    arrays = _arrays()
    save_file(arrays, str(tmp_path / "b.safetensors"), metadata={"by": "safetensors"})
    got = load_tensors(tmp_path / "b.safetensors")
    assert sorted(got) == sorted(arrays)  # the __metadata__ entry is not a tensor
    np.testing.assert_array_equal(got["i64"], arrays["i64"])


def test_writing_to_a_loaded_array_never_changes_the_file(tmp_path):
    path = save_tensors({"x": np.arange(6, dtype=np.float32)}, tmp_path / "c.safetensors")
    a = load_tensors(path)["x"]
    a[:] = -1  # copy-on-write: private pages
    np.testing.assert_array_equal(load_tensors(path)["x"], np.arange(6, dtype=np.float32))


def test_saving_over_a_file_that_is_read_keeps_the_old_arrays_intact(tmp_path):
    path = tmp_path / "d.safetensors"
    save_tensors({"x": np.arange(100_000, dtype=np.float64)}, path)
    old = load_tensors(path)["x"]
    save_tensors({"x": np.zeros(3)}, path)  # in place it would truncate the mapped file (SIGBUS on the next read)
    assert float(old.sum()) == float(np.arange(100_000).sum())
    np.testing.assert_array_equal(load_tensors(path)["x"], np.zeros(3))
    assert [p.name for p in tmp_path.iterdir()] == ["d.safetensors"]  # no temporary file left


@pytest.mark.parametrize(("content", "match"), [
    (b"", "shorter than its header length"),
    ((10**9).to_bytes(8, "little") + b"{}", "header claims 1,000,000,000 bytes"),
    ((4).to_bytes(8, "little") + b"\xff\xfe{}", "header is not JSON"),
    ((2).to_bytes(8, "little") + b"[]", "holds no object"),
])
def test_a_file_that_is_not_safetensors_fails_naming_it(tmp_path, content, match):
    (tmp_path / "bad.safetensors").write_bytes(content)
    with pytest.raises(ValueError, match=match) as err:
        load_tensors(tmp_path / "bad.safetensors")
    assert "bad.safetensors" in str(err.value)


def test_a_truncated_file_fails_naming_the_tensor(tmp_path):
    path = save_tensors({"weights": np.ones(1000, np.float32)}, tmp_path / "t.safetensors")
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ValueError, match=r"tensor 'weights' \(F32, shape \[1000\]\) does not fit its byte range"):
        load_tensors(path)


def test_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_tensors(tmp_path / "none.safetensors")


@pytest.mark.parametrize("fs", ["nfs4", "cifs", "fuse.sshfs", "fuse"])
def test_files_on_network_or_fuse_file_systems_are_read_not_mapped(tmp_path, monkeypatch, fs):
    # another machine may delete a file there under a mapping: the arrays are read into memory
    path = save_tensors(_arrays(), tmp_path / "n.safetensors")
    monkeypatch.setattr(tensors, "file_system_type", lambda p: fs)
    got = load_tensors(path)
    assert not _backed_by_mmap(got["f32"])
    for k, v in _arrays().items():
        np.testing.assert_array_equal(got[k], v)
    monkeypatch.setattr(tensors, "file_system_type", lambda p: "ext4")
    assert _backed_by_mmap(load_tensors(path)["f32"])
    assert not _backed_by_mmap(load_tensors(path, mmap=False)["f32"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/mounts")
def test_file_system_type_names_the_mount_that_holds_the_path(tmp_path):
    assert file_system_type("/proc/self") == "proc"  # the longest mount point that holds the path wins over "/"
    assert file_system_type(tmp_path) not in (None, "", "proc")
