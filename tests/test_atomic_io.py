"""Atomic writes (core/io/atomic.py): a writer that fails half-way leaves the previous file byte-identical and no
temporary file behind; a successful write replaces the target in one rename."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tristudio.core.io import atomic
from tristudio.core.io.atomic import atomic_path, atomic_write_bytes, atomic_write_text, replace_path

OLD = bytes(range(256)) * 40  # 10 KiB of known content


class Boom(RuntimeError):
    pass


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def target(tmp_path) -> Path:
    t = tmp_path / "model.safetensors"
    t.write_bytes(OLD)
    return t


def test_failure_mid_write_through_atomic_path_keeps_the_old_file(target):
    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            assert Path(tmp) != target and Path(tmp).parent == target.parent
            with open(tmp, "wb") as f:
                f.write(b"half of the new")
                f.flush()
                raise Boom("disk full")
    assert target.read_bytes() == OLD
    assert _listing(target.parent) == [target.name]  # no temporary file left


def test_failure_inside_atomic_write_bytes_keeps_the_old_file(target, monkeypatch):
    """Inject the failure in the middle of the library's own write: the first bytes reach the disk, then it fails."""
    real_write_bytes = Path.write_bytes

    def half_then_fail(self, data):
        real_write_bytes(self, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_fail)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(target, b"N" * 5000)
    monkeypatch.undo()
    assert target.read_bytes() == OLD
    assert _listing(target.parent) == [target.name]
    with pytest.raises(OSError):
        monkeypatch.setattr(Path, "write_bytes", half_then_fail)
        atomic_write_text(target, "new text " * 100)
    monkeypatch.undo()
    assert target.read_bytes() == OLD
    assert _listing(target.parent) == [target.name]


def test_failure_before_the_rename_keeps_the_old_file(target, monkeypatch):
    """The new bytes are complete on disk but the final rename fails (e.g. killed at that instant)."""

    def no_replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(atomic.os, "replace", no_replace)
    with pytest.raises(OSError, match="rename failed"):
        atomic_write_bytes(target, b"complete new content")
    monkeypatch.undo()
    assert target.read_bytes() == OLD
    assert _listing(target.parent) == [target.name]


def test_target_is_never_opened_for_writing_in_place(target, monkeypatch):
    """While the new bytes are being written the target still holds the old ones (a reader never sees a mix)."""
    seen = []
    real_write_bytes = Path.write_bytes

    def spy(self, data):
        seen.append((Path(self) == target, target.read_bytes() == OLD))
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", spy)
    atomic_write_bytes(target, b"fresh")
    monkeypatch.undo()
    assert seen == [(False, True)]
    assert target.read_bytes() == b"fresh"
    assert _listing(target.parent) == [target.name]


def test_success_replaces_with_one_rename_and_keeps_the_inode_new(target):
    old_inode = os.stat(target).st_ino
    atomic_write_text(target, "héllo")
    assert target.read_bytes() == "héllo".encode()
    assert os.stat(target).st_ino != old_inode  # a new file renamed over, not the old one rewritten
    assert _listing(target.parent) == [target.name]


def test_new_file_in_a_new_folder_and_failed_first_write_leaves_nothing(tmp_path):
    t = tmp_path / "deep" / "er" / "x.json"
    atomic_write_text(t, "{}")
    assert t.read_text() == "{}"
    u = tmp_path / "fresh" / "y.bin"
    with pytest.raises(Boom):
        with atomic_path(u) as tmp:
            Path(tmp).write_bytes(b"partial")
            raise Boom()
    assert not u.exists() and _listing(u.parent) == []


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "rename-aside"])
def test_folder_target_failure_keeps_the_old_folder_and_success_swaps_it(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a.txt").write_bytes(OLD)
    with pytest.raises(Boom):
        with atomic_path(folder, is_dir=True) as tmp:
            (Path(tmp) / "a.txt").write_bytes(b"new")
            raise Boom()
    assert _listing(folder) == ["a.txt"] and (folder / "a.txt").read_bytes() == OLD
    assert _listing(tmp_path) == ["model"]
    with atomic_path(folder, is_dir=True) as tmp:
        (Path(tmp) / "b.txt").write_bytes(b"new")
    assert _listing(folder) == ["b.txt"] and (folder / "b.txt").read_bytes() == b"new"
    assert _listing(tmp_path) == ["model"]  # the old folder, renamed aside, is gone


def test_replace_path_moves_a_file_over_the_target(tmp_path):
    src, dst = tmp_path / "s", tmp_path / "d"
    src.write_bytes(b"1")
    dst.write_bytes(b"2")
    replace_path(src, dst)
    assert dst.read_bytes() == b"1" and not src.exists()


def test_folder_swap_interrupted_between_its_two_renames_loses_no_bytes(tmp_path, monkeypatch):
    """A folder target is renamed aside, then the new folder renamed in: a failure between the two must not have
    deleted the previous folder (its bytes are still on disk, next to the target), and the new folder is cleaned up."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "a.txt").write_bytes(OLD)
    real_replace = os.replace
    calls = []

    def second_fails(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:
            raise OSError("killed between the renames")
        return real_replace(src, dst)

    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)  # the rename-aside path (no renameat2 exchange)
    monkeypatch.setattr(atomic.os, "replace", second_fails)
    with pytest.raises(OSError, match="between the renames"):
        with atomic_path(folder, is_dir=True) as tmp:
            (Path(tmp) / "b.txt").write_bytes(b"new")
    monkeypatch.undo()
    assert len(calls) == 3 and calls[2] == (calls[0][1], "model")  # aside, in (fails), and the old one back
    kept = [p for p in tmp_path.rglob("a.txt") if p.read_bytes() == OLD]
    assert kept, f"the previous folder's content is gone: {sorted(p.name for p in tmp_path.iterdir())}"
    assert not list(tmp_path.rglob("b.txt"))  # the unfinished new folder was removed
    # ... and the previous folder is back under its own name, nothing left beside it
    assert _listing(folder) == ["a.txt"] and (folder / "a.txt").read_bytes() == OLD
    assert _listing(tmp_path) == ["model"]


def test_without_nan_nulls_every_non_finite_number_and_names_it():
    import json
    import math

    from tristudio.core.io.atomic import without_nan

    report = {"fid": 4.5, "consistency": {"depth_error": math.nan, "n": 3}, "rows": [1.0, math.inf, "x"], "ok": True}
    clean, undefined = without_nan(report)
    assert clean == {"fid": 4.5, "consistency": {"depth_error": None, "n": 3}, "rows": [1.0, None, "x"], "ok": True}
    assert undefined == ["consistency.depth_error", "rows[1]"]
    assert json.loads(json.dumps(clean, allow_nan=False)) == clean and report["rows"][1] == math.inf  # a copy
