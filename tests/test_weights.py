"""Safetensors io in numpy: compatible with the reference library, strict with
corrupt or hostile files; atomic writes leave nothing half-written."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest

from unified_nlp.atomic import atomic_dir, check_writable
from unified_nlp.errors import InvalidModelError, NotWritableError
from unified_nlp.weights import load_file, read_header, save_file

from .conftest import require_module


def test_round_trip_matches_the_reference_library(tmp_path):
    safetensors_numpy = require_module("safetensors.numpy")
    tensors = {
        "a": np.arange(12, dtype=np.float32).reshape(3, 4),
        "b": np.array([1, -2], dtype=np.int64),
        "c": np.ones((0, 5), dtype=np.float16),
    }
    save_file(tensors, tmp_path / "ours.safetensors")
    theirs = safetensors_numpy.load_file(str(tmp_path / "ours.safetensors"))
    safetensors_numpy.save_file(tensors, str(tmp_path / "theirs.safetensors"))
    ours = load_file(tmp_path / "theirs.safetensors")
    for name, value in tensors.items():
        np.testing.assert_array_equal(theirs[name], value)
        np.testing.assert_array_equal(ours[name], value)
        assert ours[name].dtype == value.dtype


def _write_raw(path, header: dict, data: bytes = b""):
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


@pytest.mark.parametrize(
    "header, data, fragment",
    [
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "outside the file"),
        ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "needs 12 bytes"),
        ({"w": {"dtype": "OBJ", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8, "dtype"),
        ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "shape"),
        ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}, b"\0" * 4, "outside the file"),
        ([1, 2], b"", "JSON object"),
    ],
)
def test_hostile_headers_are_refused_with_the_file_named(tmp_path, header, data, fragment):
    path = tmp_path / "bad.safetensors"
    _write_raw(path, header, data)
    with pytest.raises(InvalidModelError) as info:
        load_file(path)
    assert fragment in str(info.value) and "bad.safetensors" in str(info.value)


def test_header_size_beyond_the_file_is_refused(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 2**62) + b"{}")
    with pytest.raises(InvalidModelError, match="truncated"):
        read_header(path)


def test_truncated_file(tmp_path):
    save_file({"w": np.ones(1000, np.float32)}, tmp_path / "w.safetensors")
    data = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "w.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidModelError, match="truncated or corrupt"):
        load_file(tmp_path / "w.safetensors")


def test_pickle_bytes_are_not_safetensors(tmp_path):
    import pickle

    path = tmp_path / "model.safetensors"
    path.write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    with pytest.raises(InvalidModelError):
        load_file(path)


def test_atomic_dir_replaces_on_success_and_keeps_the_old_on_failure(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("one")
    assert (target / "a.txt").read_text() == "one"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "a.txt").write_text("two")
            raise RuntimeError("disk full, say")
    assert (target / "a.txt").read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no partial folder left


def test_failed_save_file_leaves_no_partial_file(tmp_path):
    with pytest.raises(ValueError):
        save_file({"ok": np.ones(3, np.float32), "bad": np.array(["x"], dtype=object)}, tmp_path / "w.safetensors")
    assert list(tmp_path.iterdir()) == []


def _unwritable_places(tmp_path):
    """Folders that cannot be written. Under root, permissions do not stop writes, so
    the read-only folder is only checked as another user; a path under a regular file
    fails for everyone."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    places = [blocker / "out", blocker / "deeper" / "out"]
    if os.geteuid() != 0:
        locked = tmp_path / "read-only"
        locked.mkdir()
        locked.chmod(0o555)
        places.append(locked / "out")
    return places


def test_unwritable_targets_are_one_line_errors_and_leave_nothing(tmp_path):
    for place in _unwritable_places(tmp_path):
        before = sorted(p.name for p in tmp_path.rglob("*"))
        with pytest.raises(NotWritableError, match=r"^cannot write .*out") as info:
            with atomic_dir(place) as tmp:
                (tmp / "config.json").write_text("{}")
        assert "\n" not in str(info.value)
        with pytest.raises(NotWritableError):
            save_file({"w": np.ones(2, np.float32)}, place / "w.safetensors")
        with pytest.raises(NotWritableError):
            check_writable(place)
        assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing half-written


def test_a_file_where_a_folder_goes_is_refused(tmp_path):
    target = tmp_path / "model"
    target.write_text("keep me")
    with pytest.raises(NotWritableError, match="a file is there"):
        with atomic_dir(target) as tmp:
            (tmp / "config.json").write_text("{}")
    assert target.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_full_disk_is_a_one_line_error(tmp_path):
    import errno

    with pytest.raises(NotWritableError, match="No space left"):
        with atomic_dir(tmp_path / "model") as tmp:
            (tmp / "a").write_text("x")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert list(tmp_path.iterdir()) == []
