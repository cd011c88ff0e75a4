"""Bad and hostile model folders, on every backend: a clear error naming the file,
nothing unpickled, nothing outside the folder read or written, and atomic saves."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import unified_nlp as un
from unified_nlp.resolve import default_model_dir
from unified_nlp.weights import load_file, save_file

from .conftest import default_classifier


@pytest.fixture
def model_copy(tmp_path, default_dir):
    target = tmp_path / "model"
    shutil.copytree(default_dir, target)
    return target


class Boom:
    """Unpickling this writes a marker file: proof that something unpickled."""

    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _pickle_bomb(path, marker):
    Boom.marker = str(marker)
    path.write_bytes(pickle.dumps(Boom()))


def _expect(backend, folder, *fragments):
    with pytest.raises(un.InvalidModelError) as info:
        un.load_classifier(folder, backend=backend)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_missing_config(backend, model_copy):
    (model_copy / "config.json").unlink()
    _expect(backend, model_copy, "config.json", "missing")


def test_config_that_is_not_json(backend, model_copy):
    (model_copy / "config.json").write_text("{not json")
    _expect(backend, model_copy, "config.json", "not valid JSON")


@pytest.mark.parametrize("content", ["[1, 2]", "{not json", '{"model_max_length": 512', "\udcff"])
def test_tokenizer_config_that_is_not_a_json_object(backend, model_copy, content):
    (model_copy / "tokenizer_config.json").write_bytes(content.encode("utf-8", "surrogateescape"))
    _expect(backend, model_copy, "tokenizer_config.json")


@pytest.mark.parametrize("value", ["512", 1, 1.5, None])
def test_max_length_that_is_not_a_usable_integer(backend, model_copy, value):
    spec = json.loads((model_copy / "unified_nlp.json").read_text())
    spec["max_length"] = value
    (model_copy / "unified_nlp.json").write_text(json.dumps(spec))
    _expect(backend, model_copy, "unified_nlp.json", "max_length")


def test_missing_weights(backend, model_copy):
    (model_copy / "model.safetensors").unlink()
    _expect(backend, model_copy, "model.safetensors", "missing")


def test_truncated_weights(backend, model_copy):
    path = model_copy / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    _expect(backend, model_copy, "model.safetensors", "truncated")


def test_wrong_shapes(backend, model_copy):
    path = model_copy / "model.safetensors"
    tensors = load_file(path)
    tensors["encoder.layer.2.attention.self.query.weight"] = np.zeros((384, 100), np.float32)
    save_file(tensors, path)
    _expect(backend, model_copy, "encoder.layer.2.attention.self.query.weight", "[384, 100]")


def test_vocabulary_larger_than_the_embedding(backend, model_copy):
    with open(model_copy / "vocab.txt", "a", encoding="utf-8") as f:
        f.writelines(f"extra{i}\n" for i in range(100))
    _expect(backend, model_copy, "vocab.txt", "embedding")


def test_head_of_the_wrong_shape(backend, model_copy):
    save_file(
        {"weight": np.zeros((2, 10), np.float32), "bias": np.zeros(2, np.float32)}, model_copy / "head.safetensors"
    )
    _expect(backend, model_copy, "head.safetensors")


def test_labels_that_do_not_match_the_head(backend, model_copy):
    spec = json.loads((model_copy / "unified_nlp.json").read_text())
    spec["labels"] = ["A", "B", "C"]
    (model_copy / "unified_nlp.json").write_text(json.dumps(spec))
    _expect(backend, model_copy, "3 labels")


def test_pickle_only_folder_is_refused_and_never_unpickled(backend, tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    marker = tmp_path / "UNPICKLED"
    shutil.copy(default_model_dir() / "config.json", folder / "config.json")
    _pickle_bomb(folder / "pytorch_model.bin", marker)
    _pickle_bomb(folder / "model_state.pdparams", marker)
    _expect(backend, folder, "pickle")
    assert not marker.exists()


def test_pickle_disguised_as_safetensors(backend, model_copy, tmp_path):
    marker = tmp_path / "UNPICKLED"
    _pickle_bomb(model_copy / "model.safetensors", marker)
    _expect(backend, model_copy, "model.safetensors")
    assert not marker.exists()


def test_path_traversal_in_metadata(backend, model_copy):
    spec = json.loads((model_copy / "unified_nlp.json").read_text())
    spec["head_file"] = "../../../../etc/passwd"
    (model_copy / "unified_nlp.json").write_text(json.dumps(spec))
    _expect(backend, model_copy, "outside the model folder")


def test_save_over_an_existing_model_is_atomic_when_it_fails(backend, tmp_path, monkeypatch):
    clf = default_classifier(backend)
    target = tmp_path / "saved"
    clf.save(target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def broken_state_dict():
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(clf.model, "state_dict", broken_state_dict)
    with pytest.raises(OSError):
        clf.save(target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved"]


def test_killed_save_leaves_the_previous_model_and_no_partial_folder(tmp_path, default_dir):
    """A process killed in the middle of save(): the old model stays whole, and the
    next writer removes the dead writer's temporary folder."""
    target = tmp_path / "saved"
    shutil.copytree(default_dir, target)
    before = sorted(p.name for p in target.iterdir())
    script = textwrap.dedent(
        f"""
        import time, unified_nlp.atomic as w
        with w.atomic_dir({str(target)!r}) as tmp:
            (tmp / "config.json").write_text("{{}}")
            print("writing", flush=True)
            time.sleep(600)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    assert sorted(p.name for p in target.iterdir()) == before
    from unified_nlp.atomic import atomic_dir

    with atomic_dir(tmp_path / "saved") as tmp:
        for p in target.iterdir():
            shutil.copy2(p, tmp / p.name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved"]


@pytest.mark.parametrize("target", ["save", "huggingface", "tfhub"])
def test_written_models_get_the_umask_permissions(tmp_path, target):
    """save and convert write through temporary files (mkstemp makes 0600): the result must
    read like any other file under the caller's umask, not be readable by its owner only."""
    from .conftest import require

    require("huggingface" if target != "tfhub" else "tfhub")
    old = os.umask(0o022)
    try:
        if target == "save":
            out = default_classifier("huggingface").save(tmp_path / "saved")
        else:
            out = un.convert("default", to=target, out=tmp_path / target)
    finally:
        os.umask(old)
    modes = {p.relative_to(out).as_posix(): p.stat().st_mode & 0o777 for p in [out, *out.rglob("*")]}
    wrong = {name: oct(mode) for name, mode in modes.items() if mode not in (0o644, 0o755)}
    assert not wrong, wrong
    assert modes["model.safetensors" if target != "tfhub" else "head.safetensors"] == 0o644
