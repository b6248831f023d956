"""Ingest sources: a folder lists relative paths (hidden files and links skipped) and reads only
what it listed."""

from __future__ import annotations

import os

import pytest

from castkeep.errors import NotFoundError
from castkeep.tasks.ingest_sources import FolderSource


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_folder_source_lists_relative_paths_skipping_hidden_and_links(tmp_path):
    touch(tmp_path / "a.jpg")
    touch(tmp_path / "sub dir" / "b é.png", b"bb")
    touch(tmp_path / ".hidden.jpg")
    touch(tmp_path / ".git" / "c.jpg")
    outside = touch(tmp_path.parent / f"{tmp_path.name}-outside.jpg")
    os.symlink(outside, tmp_path / "link.jpg")
    src = FolderSource(tmp_path)
    assert src.list() == ["a.jpg", "sub dir/b é.png"]
    assert src.read("sub dir/b é.png") == b"bb"
    with pytest.raises(NotFoundError):
        src.read("link.jpg")
    with pytest.raises(NotFoundError):
        src.read("../" + outside.name)


def test_folder_source_requires_a_folder(tmp_path):
    with pytest.raises(NotFoundError, match="no such folder"):
        FolderSource(tmp_path / "missing")
