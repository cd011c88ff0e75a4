"""The model store: content keys (a re-saved or copied model reuses its conversion),
`unified-nlp cache list` / `cache clear` over every subfolder, safe removal."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import unified_nlp as un
from unified_nlp import store
from unified_nlp.cli import main
from unified_nlp.resolve import default_model_dir
from unified_nlp.store_keys import converted_dir
from unified_nlp.weights import save_file

from .conftest import require


@pytest.fixture
def home(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("UNIFIED_NLP_HOME", str(root))
    return root


def _folder(path, spec: dict | None = None, weight: float = 1.0):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": "bert", "id2label": {"0": "a", "1": "b"}}))
    (path / "tokenizer.json").write_text("{}")
    save_file({"w": np.full(4, weight, np.float32)}, path / "model.safetensors")
    if spec is not None:
        (path / "unified_nlp.json").write_text(json.dumps(spec))
    return path


def test_conversion_keys_follow_the_bytes_not_the_path_or_the_time(home, tmp_path):
    a = _folder(tmp_path / "a", {"head": "mean", "labels": ["a", "b"], "saved_from": "huggingface"})
    key = converted_dir(a, "tfhub")
    copy = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, copy)  # another path, new modification times
    os.utime(copy / "model.safetensors", (0, 0))
    spec = json.loads((copy / "unified_nlp.json").read_text())
    (copy / "unified_nlp.json").write_text(json.dumps({**spec, "saved_from": "tfhub"}))  # saved from another backend
    assert converted_dir(copy, "tfhub") == key
    assert converted_dir(a, "paddlenlp").name == key.name and converted_dir(a, "paddlenlp") != key
    changed = _folder(tmp_path / "c", {"head": "mean", "labels": ["a", "b"]}, weight=2.0)
    assert converted_dir(changed, "tfhub") != key
    assert converted_dir(a, "tfhub", version="4") != key


def test_a_computed_key_is_kept_by_stat_stamp_and_any_write_hashes_again(home, tmp_path, monkeypatch):
    from unified_nlp import store_keys

    a = _folder(tmp_path / "a")
    files = sorted(a.iterdir())
    fresh = store_keys.content_key(files, "v")
    assert not (home / store_keys.KEYS_FILE).exists()  # files written in the last 2 s are not trusted yet
    monkeypatch.setattr(store_keys, "_SETTLED_NS", 0)
    assert store_keys.content_key(files, "v") == fresh and (home / store_keys.KEYS_FILE).is_file()
    real_open = open

    def no_reading(file, *args, **kwargs):
        assert Path(file).parent != a, f"read {file} again"
        return real_open(file, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr("builtins.open", no_reading)
        assert store_keys.content_key(files, "v") == fresh  # the kept key: no byte read
    time.sleep(0.05)  # past the file system clock's granularity
    weights = a / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit, same size
    weights.write_bytes(bytes(data))
    changed = store_keys.content_key(files, "v")
    assert changed != fresh
    weights.write_bytes(bytes(data[:-1]) + bytes([data[-1] ^ 1]))  # back to the first bytes, rewritten
    assert store_keys.content_key(files, "v") == fresh
    (home / store_keys.KEYS_FILE).write_text("{not json")  # damaged: hashed again, and rewritten
    assert store_keys.content_key(files, "v") == fresh
    assert fresh in json.loads((home / store_keys.KEYS_FILE).read_text()).values()


def test_the_default_model_folder_is_keyed_by_content(home):
    folder = default_model_dir()
    assert folder.parent == home / "models" and default_model_dir() == folder
    [entry] = store.entries()
    assert entry.kind == "models" and entry.key == folder.name and entry.source.startswith("default")
    assert entry.size > 80e6 and entry.model == "bert, 2 labels"


def test_saving_and_reloading_a_model_does_not_grow_the_store(home, tmp_path):
    require("huggingface")
    require("tfhub")
    from .checkpoints import make_checkpoint

    source = make_checkpoint("bert", tmp_path / "tiny")
    un.load_classifier(source, backend="tfhub").save(tmp_path / "saved")  # our writer: other bytes than transformers'
    clf = un.load_classifier(tmp_path / "saved", backend="tfhub")
    before = [(e.kind, e.key) for e in store.entries()]
    assert [k for k, _ in before] == ["converted/tfhub"] * 2
    size = sum(e.size for e in store.entries())
    clf.save(tmp_path / "saved")  # saved over itself: new files, new times
    clf.save(tmp_path / "copy")  # and elsewhere
    hf = un.load_classifier(tmp_path / "copy", backend="huggingface")
    hf.save(tmp_path / "copy")  # saved from another backend
    for folder in ("saved", "copy"):
        assert un.load_classifier(tmp_path / folder, backend="tfhub").labels == clf.labels
    assert [(e.kind, e.key) for e in store.entries()] == before
    assert sum(e.size for e in store.entries()) == size


def _fill(root):
    """A store with an entry of every kind (and the lead's imported/), made by hand."""
    made = {}
    for kind, key in [
        ("models", "default-aaaa"),
        ("converted/tfhub", "1111"),
        ("converted/paddlenlp", "1111"),
        ("converted/tfhub", "2222"),
        ("imported", "paddlenlp-native-3333"),
    ]:
        entry = root / kind / key
        (entry / "encoder").mkdir(parents=True)
        (entry / "config.json").write_text('{"model_type": "bert"}')
        (entry / "encoder" / "weights.bin").write_bytes(b"x" * 1000)
        made[f"{kind}/{key}"] = entry
    return made


def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cache_list_shows_every_subfolder(home, capsys):
    _fill(home)
    store.note_use(home / "converted" / "tfhub" / "2222", "/models/mine")
    code, out, _ = _cli(capsys, "cache", "list", "--json")
    listed = json.loads(out)
    rows = {(e["kind"], e["key"]): e for e in listed["entries"]}
    assert code == 0 and listed["store"] == str(home)
    assert set(rows) == {
        ("models", "default-aaaa"),
        ("converted/tfhub", "1111"),
        ("converted/paddlenlp", "1111"),
        ("converted/tfhub", "2222"),
        ("imported", "paddlenlp-native-3333"),
    }
    assert all(e["size"] == 1000 + len('{"model_type": "bert"}') for e in rows.values())
    assert rows[("converted/tfhub", "2222")]["source"] == "/models/mine"
    code, out, _ = _cli(capsys, "cache", "list")
    assert code == 0 and "5 entries" in out and "imported" in out and "/models/mine" in out
    assert f"{home} (set by UNIFIED_NLP_HOME)" in out.splitlines()[0]
    table = out.splitlines()[1:]
    # aligned columns: every row's "source" (the last column) starts where the header's does
    start = table[0].index("source")
    assert len(table) == 6 and all(row[start - 2 : start] == "  " and row[start] != " " for row in table)


def test_the_store_is_the_user_cache_unless_unified_nlp_home_says_otherwise(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("UNIFIED_NLP_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    code, out, _ = _cli(capsys, "cache", "list")
    where = tmp_path / ".cache" / "unified_nlp"
    assert code == 0 and out.startswith(f"model store {where} (the default; set UNIFIED_NLP_HOME to move it)")


def test_cache_clear_by_key_prefix_kind_and_age(home, capsys):
    made = _fill(home)
    old = time.time() - 10 * 86400
    os.utime(made["models/default-aaaa"], (old, old))
    code, out, _ = _cli(capsys, "cache", "clear", "--older-than", "7")
    assert code == 0 and "removed models/default-aaaa" in out and "removed 1 entry" in out
    code, _, _ = _cli(capsys, "cache", "clear", "converted/tfhub/1111")
    assert code == 0 and not made["converted/tfhub/1111"].exists() and made["converted/paddlenlp/1111"].exists()
    code, _, _ = _cli(capsys, "cache", "clear", "222")  # a unique start of a key
    assert code == 0 and not made["converted/tfhub/2222"].exists()
    code, _, _ = _cli(capsys, "cache", "clear")
    assert code == 0 and store.entries() == []
    leftovers = [p for p in home.rglob("*") if p.is_dir() and p.name.startswith(".")]
    assert leftovers == []


@pytest.mark.parametrize("key", ["../outside", "/etc", "models/../../outside", "nope", ""])
def test_cache_clear_refuses_what_is_not_an_entry(home, tmp_path, capsys, key):
    made = _fill(home)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep.txt").write_text("mine")
    code, _, err = _cli(capsys, "cache", "clear", key)
    assert code == 2 and err.startswith("unified-nlp: error:") and "nothing was removed" in err
    assert len(err.strip().splitlines()) == 1
    assert all(p.exists() for p in made.values()) and (tmp_path / "outside" / "keep.txt").exists()


def test_cache_clear_refuses_a_folder_that_is_not_a_store(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNIFIED_NLP_HOME", str(tmp_path))  # e.g. UNIFIED_NLP_HOME=~ by mistake
    (tmp_path / "Documents" / "thesis").mkdir(parents=True)
    (tmp_path / "Documents" / "thesis" / "draft.txt").write_text("years of work")
    code, _, err = _cli(capsys, "cache", "clear")
    assert code == 2 and "does not look like a unified_nlp model store" in err
    assert (tmp_path / "Documents" / "thesis" / "draft.txt").exists()


def test_clear_leaves_live_writers_and_waits_for_loads(home):
    made = _fill(home)
    writing = home / "converted" / "tfhub" / f".9999.partial-{os.getpid()}-abc"  # a conversion in progress
    writing.mkdir()
    (writing / "half.bin").write_bytes(b"x")
    dead = home / "converted" / "tfhub" / ".8888.partial-999999999-abc"  # a writer that was killed
    dead.mkdir()
    holding, released = threading.Event(), []

    def load():
        with store.in_use():
            holding.set()
            time.sleep(0.5)  # the load's length: clear must wait it out
            released.append(time.monotonic())

    loader = threading.Thread(target=load)
    loader.start()
    assert holding.wait(60)
    removed = store.clear()
    done = time.monotonic()
    loader.join()
    assert released and done >= released[0]  # clearing waited for the load to finish
    assert {f"{e.kind}/{e.key}" for e in removed} == set(made)
    assert writing.is_dir() and not dead.exists()


def test_imported_folders_are_listed_with_their_source(home, tmp_path):
    from unified_nlp import formats

    native = tmp_path / "native"
    native.mkdir()
    (native / "saved_model.pb").write_bytes(b"not really a SavedModel")

    def write(out):
        out.mkdir(parents=True)
        (out / "config.json").write_text('{"model_type": "bert"}')

    out = formats.imported(formats.detect(native), write)
    [entry] = store.entries()
    assert (entry.kind, entry.key, entry.source) == ("imported", out.name, str(native))


def test_loads_and_conversions_wait_while_entries_are_removed(home, tmp_path):
    default_model_dir()
    removing = threading.Event()
    finished = []

    def clear_slowly():
        with store.in_use(shared=False):  # what `clear` holds while it removes entries
            removing.set()
            time.sleep(0.5)
            finished.append(time.monotonic())

    clearer = threading.Thread(target=clear_slowly)
    clearer.start()
    removing.wait()
    out = un.convert("default", to="huggingface", out=tmp_path / "copy")  # reads models/ from the store
    converted = time.monotonic()
    clearer.join()
    assert finished and converted >= finished[0] and (out / "config.json").is_file()
