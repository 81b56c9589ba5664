"""Folder layout, target folders, permissions, atomic writes and moves."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hstlc.config import load_settings
from hstlc.fs import (
    MAX_DIRNAME,
    Layout,
    Permissions,
    atomic_path,
    content_digest,
    move_file,
    refused_destination,
    safe_dirname,
    sha256_file,
    target_dir,
)

HOSTILE_NAMES = [
    "../../etc",
    "..",
    ".",
    "",
    "A/B",
    "/etc/passwd",
    "name with spaces",
    "x" * 300,
    "Ñandú-β Pic",
    "天狼星",
    "NUL\x00BYTE",
    "tab\tand\nnewline",
    "\x7f",
    ".hidden",
    "C:\\windows",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_target_names_map_inside_filesystem(tmp_path, name):
    root = tmp_path / "filesystem"
    root.mkdir()
    path = target_dir(root, name)
    assert path.parent == root
    assert path.resolve().parent == root.resolve()
    assert 0 < len(path.name) <= MAX_DIRNAME
    assert path.name not in {".", ".."}
    path.mkdir()  # the name is a valid, creatable folder
    assert path.is_dir()
    assert safe_dirname(name) == path.name  # deterministic


def test_ordinary_names_are_kept_and_different_names_never_collide():
    assert safe_dirname("GJ-436") == "GJ-436"
    assert safe_dirname("HD189733") == "HD189733"
    names = HOSTILE_NAMES + ["A_B", "A B", "A-B", "a/b", "x" * 299]
    mapped = [safe_dirname(name) for name in names]
    assert len(set(mapped)) == len(set(names))


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=400))
def test_any_name_is_one_safe_component(name):
    result = safe_dirname(name)
    assert result == safe_dirname(name)
    assert "/" not in result and "\x00" not in result
    assert result not in {"", ".", ".."} and not result.startswith(".")
    assert len(result) <= MAX_DIRNAME
    assert result.isascii() and result.isprintable()


def test_layout_created_on_demand(home):
    layout = Layout.from_settings(load_settings())
    assert not home.exists()
    layout.ensure("ingest", "bad_data")
    assert layout.ingest.is_dir() and layout.bad_data.is_dir()
    assert not layout.outputs.exists()
    layout.ensure()
    assert all(path.is_dir() for path in layout.folders().values())
    assert layout.composite == home / "outputs" / "composite"


def test_permissions_mode_and_missing_group_warns(tmp_path, caplog):
    folder = tmp_path / "d"
    folder.mkdir()
    data = folder / "f.fits"
    data.write_bytes(b"x")
    permissions = Permissions(mode=0o750, group="no-such-group-hstlc")
    with caplog.at_level(logging.WARNING, logger="hstlc.fs"):
        permissions.apply(folder)
        permissions.apply(data)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750
    assert stat.S_IMODE(data.stat().st_mode) == 0o640  # files never executable
    assert "no-such-group-hstlc" in caplog.text and "does not exist" in caplog.text


def test_permissions_existing_group(tmp_path):
    import grp

    group = grp.getgrgid(os.getgid()).gr_name
    path = tmp_path / "f"
    path.write_bytes(b"")
    Permissions(mode=0o770, group=group).apply(path)
    assert path.stat().st_gid == os.getgid()


def test_atomic_path_renames_on_success_and_cleans_on_failure(tmp_path):
    final = tmp_path / "out" / "x_curve.fits"
    with atomic_path(final) as temporary:
        assert not temporary.exists() and temporary.parent == final.parent
        temporary.write_bytes(b"new")
    assert final.read_bytes() == b"new"
    with pytest.raises(RuntimeError), atomic_path(final) as temporary:
        temporary.write_bytes(b"half")
        raise RuntimeError("crash")
    assert final.read_bytes() == b"new"
    assert sorted(p.name for p in final.parent.iterdir()) == ["x_curve.fits"]


def test_move_file_never_overwrites_silently(tmp_path):
    source = tmp_path / "a.fits"
    source.write_bytes(b"a")
    target = tmp_path / "sub" / "a.fits"
    digest = sha256_file(source)
    move_file(source, target)
    assert not source.exists() and sha256_file(target) == digest
    other = tmp_path / "b.fits"
    other.write_bytes(b"b")
    with pytest.raises(FileExistsError):
        move_file(other, target)
    assert other.read_bytes() == b"b" and target.read_bytes() == b"a"


def test_links_move_as_links_and_keep_their_targets_mode(tmp_path, monkeypatch):
    """A link is moved (even across file systems) and never chmod-ed: its target is untouched."""
    outside = tmp_path / "outside.fits"
    outside.write_bytes(b"outside")
    os.chmod(outside, 0o604)
    link = tmp_path / "in" / "x_corrtag.fits"
    link.parent.mkdir()
    os.symlink(outside, link)
    Permissions(mode=0o770).apply(link)
    assert stat.S_IMODE(outside.stat().st_mode) == 0o604
    moved = move_file(link, tmp_path / "bad" / "x_corrtag.fits")
    assert moved.is_symlink() and os.readlink(moved) == str(outside) and not os.path.lexists(link)
    real_replace = os.replace

    def cross_device(source, destination):
        if Path(source) == moved:
            raise OSError(errno.EXDEV, "cross-device link")
        return real_replace(source, destination)

    monkeypatch.setattr(os, "replace", cross_device)
    again = move_file(moved, tmp_path / "other" / "x_corrtag.fits")
    assert again.is_symlink() and os.readlink(again) == str(outside)
    assert outside.read_bytes() == b"outside" and stat.S_IMODE(outside.stat().st_mode) == 0o604
    assert content_digest(again) != sha256_file(outside)  # the link's text, never its target


def test_refused_destination_never_replaces_other_content(tmp_path):
    (tmp_path / "x.fits").write_bytes(b"one")
    one, two = sha256_file(tmp_path / "x.fits"), hashlib.sha256(b"two").hexdigest()
    assert refused_destination(tmp_path, "x.fits", one) == tmp_path / "x.fits"
    assert refused_destination(tmp_path, "x.fits", two) == tmp_path / f"x.fits.{two[:8]}"
    assert refused_destination(tmp_path, "y.fits", two) == tmp_path / "y.fits"


def test_a_full_disk_is_recognised_through_a_library_error_and_named(tmp_path):
    """astropy raises its own OSError (no errno) while handling ENOSPC: still a full disk,
    and the atomic writer names the file it was writing."""
    from hstlc.fs import atomic_path, disk_full

    final = tmp_path / "x_curve.fits"
    with pytest.raises(OSError) as caught, atomic_path(final):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as error:
            raise OSError("Not enough space on disk: " + str(error))  # noqa: B904 (as astropy)
    full = disk_full(caught.value)
    assert full is not None and str(final) in str(full) and "MB free" in str(full)
    assert disk_full(OSError("Not enough space on disk, but no cause")) is None
    assert disk_full(PermissionError(errno.EACCES, "Permission denied")) is None


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096 + 17])
def test_sha256_file_is_the_sha256_of_the_bytes(tmp_path, size):
    data = os.urandom(size)
    path = tmp_path / "x.fits"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(path) == expected
    assert sha256_file(path, block=4096) == expected
    assert sha256_file(path, block=1000) == expected
