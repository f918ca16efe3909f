"""common.atomic: the one way emorec publishes a file."""

import os
import stat

import pytest

from emorec.common.atomic import atomic_write, atomic_write_bytes, atomic_write_text


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    atomic_write_text(path, "old")

    def half(p):
        p.write_text("ne")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, half)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_new_content_mode_and_no_symlink_following(tmp_path):
    path = tmp_path / "key"
    atomic_write_bytes(path, b"\x00\x01", mode=0o600)
    assert path.read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    # the target may be replaced even when it is a link: the link itself is replaced, its target untouched
    victim = tmp_path / "victim"
    victim.write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(victim)
    atomic_write_text(link, "new")
    assert victim.read_text() == "keep" and not link.is_symlink() and link.read_text() == "new"
