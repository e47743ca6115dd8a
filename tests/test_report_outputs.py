"""Result files are readable by colleagues: written with the user's umask, still atomically."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from nbdid.outputs import atomic_path, new_temp_file, write_csv, write_text


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    a = write_text("x\n", tmp_path / "a.txt")
    b = write_csv(pd.DataFrame({"x": [1]}), tmp_path / "sub" / "b.csv")
    assert mode(a) == expected and mode(b) == expected
    # overwriting keeps the new mode too (the file is replaced, not edited)
    a.chmod(0o600)
    write_text("y\n", a)
    assert mode(a) == expected and a.read_text() == "y\n"


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "r.csv"
    write_text("old\n", target)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        assert mode(tmp) == 0o644
        raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]


def test_temp_files_are_new_and_unique(tmp_path, umask):
    umask(0o022)
    names = {new_temp_file(tmp_path, prefix=".t.", suffix=".tmp").name for _ in range(50)}
    assert len(names) == 50
    assert all(n.startswith(".t.") and n.endswith(".tmp") for n in names)
    assert all((tmp_path / n).stat().st_size == 0 for n in names)
