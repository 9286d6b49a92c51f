"""code_hash: content (not mtime) of scripts and packages decides a rule's `code` param."""

from __future__ import annotations

import os

import pytest

from rmselect.cluster.rerun import code_files, code_hash


def test_hash_follows_content_not_mtime(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "run.py").write_text("print(1)\n")
    h = code_hash("run.py", "pkg", root=tmp_path)
    assert len(h) == 12
    os.utime(tmp_path / "run.py", (1, 1))  # a checkout touching the file
    assert code_hash("run.py", "pkg", root=tmp_path) == h
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")  # an edit in the package
    h2 = code_hash("run.py", "pkg", root=tmp_path)
    assert h2 != h
    (tmp_path / "pkg" / "b.py").write_text("")  # a new module
    assert code_hash("run.py", "pkg", root=tmp_path) not in (h, h2)
    assert [f.name for f in code_files("pkg", root=tmp_path)] == ["a.py", "b.py"]


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.py"):
        code_hash("nope.py", root=tmp_path)
