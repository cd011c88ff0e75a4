"""The restricted reader of torch.save checkpoints (pytorch_model.bin), against torch itself."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest

from unified_nlp.errors import InvalidModelError
from unified_nlp.safe_pickle import read_torch_checkpoint

from .conftest import require_module

torch = require_module("torch")


def test_tensors_of_every_dtype_and_layout_read_as_torch_has_them(tmp_path):
    state = {
        "float": torch.randn(3, 4),
        "transposed": torch.randn(4, 3).t(),  # a strided view
        "offset": torch.randn(10)[3:7],  # a view into a larger storage
        "half": torch.randn(2, 2).half(),
        "bfloat16": torch.randn(5).bfloat16(),
        "long": torch.arange(6),
        "bool": torch.tensor([True, False]),
        "empty": torch.zeros(0, 3),
        "scalar": torch.tensor(2.5),
        "parameter": torch.nn.Parameter(torch.ones(2)),
    }
    torch.save(state, tmp_path / "m.bin")
    ours = read_torch_checkpoint(tmp_path / "m.bin")
    assert set(ours) == set(state)
    for name, tensor in state.items():
        expected = tensor.detach().float().numpy() if tensor.dtype == torch.bfloat16 else tensor.detach().numpy()
        assert ours[name].shape == expected.shape and ours[name].dtype == expected.dtype, name
        np.testing.assert_array_equal(ours[name], expected)


def test_a_plain_pickle_is_refused_with_the_reason(tmp_path):
    (tmp_path / "old.bin").write_bytes(pickle.dumps({"a": [1, 2]}))
    with pytest.raises(InvalidModelError, match="not a PyTorch zip checkpoint"):
        read_torch_checkpoint(tmp_path / "old.bin")


def test_a_truncated_archive_is_refused(tmp_path):
    torch.save({"a": torch.randn(100)}, tmp_path / "m.bin")
    data = (tmp_path / "m.bin").read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidModelError):
        read_torch_checkpoint(tmp_path / "cut.bin")


def test_a_storage_smaller_than_its_tensor_is_refused(tmp_path):
    torch.save({"a": torch.randn(8)}, tmp_path / "m.bin")
    with zipfile.ZipFile(tmp_path / "m.bin") as src, zipfile.ZipFile(tmp_path / "bad.bin", "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data[:8] if info.filename.endswith("/data/0") else data)
    with pytest.raises(InvalidModelError, match="holds 8 bytes"):
        read_torch_checkpoint(tmp_path / "bad.bin")


@pytest.mark.parametrize("payload", ["os.system", "builtins.eval", "torch.load"])
def test_any_other_global_is_refused_before_it_runs(tmp_path, payload):
    module, name = payload.rsplit(".", 1)

    class Payload:
        def __reduce__(self):
            return (getattr(__import__(module), name), ("touch " + str(tmp_path / "pwned"),))

    if payload == "torch.load":
        Payload.__reduce__ = lambda self: (torch.load, (str(tmp_path / "x"),))
    torch.save({"a": torch.zeros(1), "b": Payload()}, tmp_path / "evil.bin")
    with pytest.raises(InvalidModelError, match=rf"refused global [\w.]+\.{name}"):
        read_torch_checkpoint(tmp_path / "evil.bin")
    assert not (tmp_path / "pwned").exists()
