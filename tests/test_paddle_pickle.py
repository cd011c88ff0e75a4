"""The restricted reader of paddle.save pickles (model_state.pdparams): numpy arrays and
plain containers only, everything else refused before it can run. Needs numpy only:
numpy pickles its arrays exactly as paddle.save's files hold them (measured with
paddlepaddle 3.3.1); PaddleNLP's own files are read in test_paddlenlp_native.py."""

from __future__ import annotations

import os
import pickle
import struct

import numpy as np
import pytest

from unified_nlp.errors import InvalidModelError
from unified_nlp.safe_pickle import read_paddle_state

NAME_MAP = "StructuredToParameterName@@"


def _write(tmp_path, obj, protocol: int = 4):
    path = tmp_path / "model_state.pdparams"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


@pytest.mark.parametrize("protocol", [3, 4])  # paddle.save writes 4; 2 has no bytes opcode
def test_arrays_of_every_numeric_dtype_and_layout_read_back(tmp_path, protocol):
    rng = np.random.default_rng(0)
    state = {
        f"w.{code}": rng.normal(0, 50, (3, 4)).astype(code)
        for code in ("<f2", "<f4", "<f8", "i1", "<i2", "<i4", "<i8", "u1", "<u2", "<u4", "<u8")
    }
    state |= {
        "bool": np.array([True, False, True]),
        "fortran": np.asfortranarray(rng.normal(size=(3, 5)).astype(np.float32)),
        "big_endian": np.arange(6, dtype=">f4").reshape(2, 3),
        "empty": np.zeros((0, 3), np.float32),
        "scalar": np.array(2.5, np.float32),
        NAME_MAP: {"linear_0.w_0": "classifier.weight"},  # what paddle.save adds
    }
    ours = read_paddle_state(_write(tmp_path, state, protocol))
    assert set(ours) == set(state) - {NAME_MAP}
    for name, ours_array in ours.items():
        expected = state[name]
        assert ours_array.shape == expected.shape and ours_array.dtype == expected.dtype.newbyteorder("="), name
        np.testing.assert_array_equal(ours_array, expected)
        assert ours_array.flags.c_contiguous and ours_array.flags.writeable


def _payload_pickles(marker) -> dict[str, bytes]:
    command = f"touch {marker}"

    class Runs:
        def __reduce__(self):
            return (os.system, (command,))

    class Evals:
        def __reduce__(self):
            return (eval, (f"open({str(marker)!r}, 'w').close()",))

    weights = np.ones((2, 2), np.float32)
    code = f"open({str(marker)!r}, 'w').close()".encode()
    return {
        "os.system": pickle.dumps({"w": weights, "x": Runs()}, protocol=4),
        "eval": pickle.dumps({"w": weights, "x": Evals()}, protocol=4),
        # protocol 0 text, as a hand-written exploit would be: import os, call system
        "import os": b"cos\nsystem\n(V" + command.encode() + b"\ntR.",
        # a global inside numpy but outside the allow-list (numpy.testing's runstring executes code)
        "numpy outside the allow-list": (
            b"\x80\x02cnumpy.testing._private.utils\nrunstring\nX" + struct.pack("<I", len(code)) + code + b"}\x86R."
        ),
    }


@pytest.mark.parametrize("kind", ["os.system", "eval", "import os", "numpy outside the allow-list"])
def test_a_pickle_that_would_run_code_is_refused_before_it_runs(tmp_path, kind):
    marker = tmp_path / "pwned"
    path = tmp_path / "model_state.pdparams"
    path.write_bytes(_payload_pickles(marker)[kind])
    with pytest.raises(InvalidModelError, match=r"refused global [\w.]+: only numpy arrays and plain containers"):
        read_paddle_state(path)
    assert not marker.exists()


def test_an_object_array_is_refused(tmp_path):
    path = _write(tmp_path, {"w": np.array([1, "text", None], dtype=object)})
    with pytest.raises(InvalidModelError, match="not a numeric dtype"):
        read_paddle_state(path)


def test_anything_but_named_arrays_is_refused(tmp_path):
    for obj in ([np.zeros(2, np.float32)], {"w": [1.0, 2.0]}, {3: np.zeros(2, np.float32)}, {"w": "text"}):
        with pytest.raises(InvalidModelError, match="not a state dict of named arrays"):
            read_paddle_state(_write(tmp_path, obj))


def test_a_truncated_file_is_refused(tmp_path):
    data = pickle.dumps({"w": np.arange(1000, dtype=np.float32)}, protocol=4)
    path = tmp_path / "model_state.pdparams"
    for cut in (len(data) // 2, len(data) - 1, 3):
        path.write_bytes(data[:cut])
        with pytest.raises(InvalidModelError, match="truncated"):
            read_paddle_state(path)


def test_an_oversized_length_field_is_refused(tmp_path):
    """The length of an array's raw bytes set far past the end of the file: refused as
    truncated, without allocating what it claims."""
    raw = np.arange(16, dtype=np.float32).tobytes()
    data = pickle.dumps({"w": np.arange(16, dtype=np.float32)}, protocol=3)  # no frames: offsets stay put
    short = b"C" + bytes([len(raw)]) + raw  # SHORT_BINBYTES: the array's data
    assert data.count(short) == 1
    path = tmp_path / "model_state.pdparams"
    for opcode in (b"\x8e" + struct.pack("<Q", 1 << 60), b"B" + struct.pack("<I", 0x7FFFFFFF)):  # BINBYTES8, BINBYTES
        path.write_bytes(data.replace(short, opcode + raw))
        with pytest.raises(InvalidModelError, match="truncated"):
            read_paddle_state(path)


def test_data_shorter_than_its_shape_is_refused(tmp_path):
    data = pickle.dumps({"w": np.arange(16, dtype=np.float32)}, protocol=3)
    raw = np.arange(16, dtype=np.float32).tobytes()
    cut = data.replace(b"C" + bytes([len(raw)]) + raw, b"C" + bytes([8]) + raw[:8])
    assert cut != data
    path = tmp_path / "model_state.pdparams"
    path.write_bytes(cut)
    with pytest.raises(InvalidModelError, match="needs 64 bytes, the pickle holds 8"):
        read_paddle_state(path)


def test_files_that_are_not_pickles(tmp_path):
    path = tmp_path / "model_state.pdparams"
    path.write_bytes(b"PK\x03\x04 a zip")
    with pytest.raises(InvalidModelError, match="not a paddle.save pickle, or a truncated one"):
        read_paddle_state(path)
    with pytest.raises(InvalidModelError, match="missing weight file"):
        read_paddle_state(tmp_path / "absent.pdparams")
