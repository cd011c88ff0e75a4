"""Users' own Hugging Face classifiers of every supported family on the tfhub backend.

Checkpoints are written by transformers' save_pretrained (tests/checkpoints.py), and
everything is checked against transformers itself: its tokenizer and its
AutoModelForSequenceClassification on the same folder. The exports are real TF Hub
SavedModels, read back with hub.KerasLayer and hub.load. Each family's checkpoint and
canonical load are built once for the module; the model store is a temporary folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

if "tfhub" in os.environ.get("UNIFIED_NLP_REQUIRE_BACKENDS", ""):
    import tensorflow_hub as hub
    import unified_nlp_huggingface  # noqa: F401
    import unified_nlp_tfhub  # noqa: F401
else:
    hub = pytest.importorskip("tensorflow_hub")
    pytest.importorskip("unified_nlp_huggingface")
    pytest.importorskip("unified_nlp_tfhub")

from unified_nlp_tfhub._tf import tf  # noqa: E402

import unified_nlp as un  # noqa: E402
from unified_nlp import architectures  # noqa: E402
from unified_nlp.weights import load_file  # noqa: E402

from .checkpoints import ARCHITECTURES, LABELS, assert_parity, make_checkpoint, scale_matrices  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore")

TEXTS = ["This is a great movie!", "a dull , lifeless script", "", "Café naïve 日本語 😀 " * 3, "x " * 200]
PAIRS = [("A man plays a guitar.", "A person makes music."), ("great", "it was bad"), ("", "only the second")]
TRAIN = (["good film", "bad film", "a fine movie", "an awful movie", "fine", "awful", "ok", "meh"],
         ["positive", "negative", "positive", "negative", "positive", "negative", "neutral", "neutral"])  # fmt: skip
TOL = 1e-5  # logits and hidden states, fp32, against transformers
SCALE = 8.0  # make_checkpoint's: outputs vary across inputs by far more than TOL (assert_parity checks it)
WORDPIECE = {a for a in ARCHITECTURES if architectures.get(a).tokenizer == "wordpiece"}


@pytest.fixture(scope="module", autouse=True)
def model_store(tmp_path_factory):
    """UNIFIED_NLP_HOME is a fresh folder for this module only."""
    old = os.environ.get("UNIFIED_NLP_HOME")
    os.environ["UNIFIED_NLP_HOME"] = str(tmp_path_factory.mktemp("tfhub_arch_home"))
    yield
    if old is None:
        os.environ.pop("UNIFIED_NLP_HOME", None)
    else:
        os.environ["UNIFIED_NLP_HOME"] = old


class Family:
    """One architecture's checkpoint, its tfhub classifier and transformers' own model, built on first use."""

    def __init__(self, arch: str, root: Path) -> None:
        import transformers

        self.arch, self.root = arch, root
        self.folder = make_checkpoint(arch, root / arch, scale=SCALE)
        self.clf = un.load_classifier(self.folder, backend="tfhub")
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.folder)
        self.reference = transformers.AutoModelForSequenceClassification.from_pretrained(self.folder).eval()
        self._export = None

    def encode(self, texts, pairs=None, **options):
        return self.tokenizer(texts, pairs, padding=True, truncation=True, return_tensors="pt", **options)

    def run(self, batch):
        """transformers' logits and hidden states on a batch of its tokenizer."""
        import torch

        with torch.no_grad():
            out = self.reference(**batch, output_hidden_states=True)
        return out.logits.numpy(), [h.numpy() for h in out.hidden_states]

    def export(self) -> Path:
        if self._export is None:
            self._export = un.convert(self.folder, to="tfhub", out=self.root / f"{self.arch}-tfhub")
        return self._export


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    root = tmp_path_factory.mktemp("tfhub_checkpoints")
    built: dict[str, Family] = {}

    def get(arch: str) -> Family:
        if arch not in built:
            built[arch] = Family(arch, root)
        return built[arch]

    return get


def _config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_the_weight_table_maps_exactly_the_architectures_tensors(family, arch):
    from unified_nlp_tfhub.weight_map import pooler_shapes, weight_rows

    config = _config(family(arch).folder)
    rows = weight_rows(arch, config)
    expected = set(architectures.get(arch).encoder_shapes(config, prefixed=False)) | set(pooler_shapes(arch, config))
    assert {hf for hf, _, _ in rows} == expected
    assert len({tf_name for _, tf_name, _ in rows}) == len(rows)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_a_users_classifier_loads_with_its_own_head_and_matches_transformers(family, arch):
    fam = family(arch)
    clf = fam.clf
    assert clf.backend == "tfhub" and clf.labels == LABELS
    assert clf.spec.head == "native" and clf.spec.architecture == arch
    batch = fam.encode(TEXTS)
    expected, hidden = fam.run(batch)
    enc = clf.tokenizer(TEXTS)
    np.testing.assert_array_equal(enc.input_ids, batch["input_ids"].numpy())
    np.testing.assert_array_equal(enc.attention_mask, batch["attention_mask"].numpy())
    logits = clf.logits(TEXTS)
    assert_parity(logits, expected, TOL)
    assert [p.label for p in clf.predict(TEXTS)] == [LABELS[i] for i in expected.argmax(1)]
    assert clf.predict(TEXTS)[-1].truncated  # 400 tokens, over the fixture's 64
    out = clf.model(enc, output_hidden_states=True)
    assert_parity(out.last_hidden_state, hidden[-1], TOL, "last hidden state")
    assert clf.model._infer.experimental_get_tracing_count() == 1  # one graph for every batch shape


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_state_dict_is_the_checkpoint_under_transformers_names(family, arch):
    fam = family(arch)
    ours = fam.clf.model.state_dict()
    theirs = load_file(fam.folder / "model.safetensors")
    assert sorted(ours) == sorted(theirs)
    for name, value in theirs.items():
        assert ours[name].dtype == value.dtype, name
        np.testing.assert_array_equal(ours[name], value, err_msg=name)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_sentence_pairs_match_transformers(family, arch):
    fam = family(arch)
    first, second = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    batch = fam.encode(first, second)
    expected, _ = fam.run(batch)
    enc = fam.clf.tokenizer(first, text_pair=second)
    np.testing.assert_array_equal(enc.input_ids, batch["input_ids"].numpy())
    if "token_type_ids" in batch:
        np.testing.assert_array_equal(enc.token_type_ids, batch["token_type_ids"].numpy())
    as_tuples = fam.clf.logits(PAIRS)
    np.testing.assert_array_equal(as_tuples, fam.clf.logits(first, text_pair=second))
    assert_parity(as_tuples, expected, TOL)
    assert [p.label for p in fam.clf.predict(PAIRS)] == [LABELS[i] for i in expected.argmax(1)]
    assert np.abs(as_tuples - fam.clf.logits(first)).max() >= 100 * TOL  # the second text counts


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_a_fresh_head_starts_where_the_huggingface_backend_starts(family, arch):
    fam = family(arch)
    ours = un.load_classifier(fam.folder, backend="tfhub", labels=["a", "b"])
    theirs = un.load_classifier(fam.folder, backend="huggingface", labels=["a", "b"])
    assert ours.spec.fresh_head and ours.model.num_labels == 2
    assert_parity(ours.logits(TEXTS), theirs.logits(TEXTS), TOL)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_multi_label_heads_give_sigmoid_scores_and_train_with_binary_cross_entropy(family, arch):
    import torch
    import transformers

    root = family(arch).root / "multi"
    folder = make_checkpoint(arch, root / arch, num_labels=4, problem_type="multi_label_classification", scale=SCALE)
    clf = un.load_classifier(folder, backend="tfhub")
    assert clf.multi_label and clf.model.num_labels == 4
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    reference = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        expected = reference(**tok(TEXTS, padding=True, truncation=True, return_tensors="pt")).logits
    scores = clf.predict_proba(TEXTS)
    assert_parity(scores, torch.sigmoid(expected).numpy(), TOL, "sigmoid scores")
    for row, predicted in zip(scores, clf.predict(TEXTS, threshold=0.5)):
        assert [p.label for p in predicted] == [clf.labels[j] for j in np.argsort(-row, kind="stable") if row[j] >= 0.5]
    texts = TRAIN[0]
    targets = [
        ["label_0", "label_2"],
        ["label_1"],
        ["label_0"],
        [],
        ["label_3"],
        ["label_1", "label_3"],
        [],
        ["label_2"],
    ]
    y = torch.from_numpy(clf.label_ids(targets))
    with torch.no_grad():
        logits = reference(**tok(texts, padding=True, truncation=True, return_tensors="pt")).logits
    bce = float(torch.nn.functional.binary_cross_entropy_with_logits(logits, y))
    history = clf.fit(texts, targets, epochs=3, batch_size=8, learning_rate=1e-3, progress=False)
    assert history["loss"][0] == pytest.approx(bce, rel=1e-5)  # the whole set is the first batch
    assert history["loss"][-1] < history["loss"][0]


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_convert_writes_a_tf_hub_encoder_that_matches_transformers(family, arch):
    fam = family(arch)
    export = fam.export()
    meta = json.loads((export / "unified_nlp.json").read_text())
    assert meta["format"] == "tfhub" and meta["architecture"] == arch and meta["head"] == "native"
    assert meta["labels"] == list(LABELS) and meta["tokenizer"]["family"] == architectures.get(arch).tokenizer
    for name in ("encoder/saved_model.pb", "head.safetensors", "tokenizer.json", "config.json", "README.md"):
        assert (export / name).is_file(), name
    assert (export / "preprocessor" / "saved_model.pb").is_file() == (arch in WORDPIECE)
    head = load_file(export / "head.safetensors")
    prefix = architectures.get(arch).prefix + "."
    assert sorted(head) == sorted(
        n for n in architectures.get(arch).head_shapes(_config(fam.folder), 3) if not n.startswith(prefix)
    )

    batch = fam.encode(TEXTS)
    _, hidden = fam.run(batch)
    ids = batch["input_ids"].numpy()
    types = batch["token_type_ids"].numpy() if "token_type_ids" in batch else np.zeros_like(ids)
    inputs = {
        "input_word_ids": tf.constant(ids, tf.int32),
        "input_mask": tf.constant(batch["attention_mask"].numpy(), tf.int32),
        "input_type_ids": tf.constant(types, tf.int32),
    }
    out = hub.KerasLayer(str(export / "encoder"))(inputs)  # plain TF Hub, nothing of unified_nlp
    assert sorted(out) == ["default", "encoder_outputs", "pooled_output", "sequence_output"]
    assert_parity(out["sequence_output"].numpy(), hidden[-1], TOL, "sequence_output")
    assert len(out["encoder_outputs"]) == len(hidden) - 1
    for i, (got, want) in enumerate(zip(out["encoder_outputs"], hidden[1:])):
        assert_parity(got.numpy(), want, TOL, f"encoder_outputs[{i}]")
    np.testing.assert_array_equal(out["default"].numpy(), out["pooled_output"].numpy())
    if architectures.get(arch).head == "pooler":
        import torch

        with torch.no_grad():
            pooled = getattr(fam.reference, architectures.get(arch).prefix)(**batch).pooler_output.numpy()
        assert_parity(out["pooled_output"].numpy(), pooled, TOL, "pooled_output")
    else:
        np.testing.assert_array_equal(out["pooled_output"].numpy(), out["sequence_output"].numpy()[:, 0])
    again = un.load_classifier(export, backend="tfhub")  # the export itself loads, head and labels included
    assert again.labels == LABELS
    assert_parity(again.logits(TEXTS), fam.clf.logits(TEXTS), 1e-6)
    assert_parity(again.logits(PAIRS), fam.clf.logits(PAIRS), 1e-6)
    # the whole classifier as one SavedModel, strings -> logits, where there is a preprocessor
    assert (export / "classifier" / "saved_model.pb").is_file() == (arch in WORDPIECE)
    if arch in WORDPIECE:
        loaded = tf.saved_model.load(str(export / "classifier"))  # held: its signatures need it alive
        serve = loaded.signatures["serving_default"]
        assert_parity(serve(text=tf.constant(TEXTS))["logits"].numpy(), fam.clf.logits(TEXTS), TOL)
    else:
        assert "no classifier/" in meta["classifier"]


@pytest.mark.parametrize("arch", sorted(WORDPIECE))
def test_the_exported_preprocessor_gives_transformers_token_ids(family, arch):
    fam = family(arch)
    pre = hub.load(str(fam.export() / "preprocessor"))
    texts = TEXTS[:4]
    got = pre.bert_pack_inputs([pre.tokenize(tf.constant(texts))], seq_length=64)
    want = fam.tokenizer(texts, padding="max_length", max_length=64, truncation=True)
    np.testing.assert_array_equal(got["input_word_ids"].numpy(), want["input_ids"])
    np.testing.assert_array_equal(got["input_mask"].numpy(), want["attention_mask"])
    first, second = [a for a, _ in PAIRS], [b for _, b in PAIRS]
    got = pre.bert_pack_inputs([pre.tokenize(tf.constant(first)), pre.tokenize(tf.constant(second))], seq_length=64)
    want = fam.tokenizer(first, second, padding="max_length", max_length=64, truncation=True)
    np.testing.assert_array_equal(got["input_word_ids"].numpy(), want["input_ids"])
    if "token_type_ids" in want:  # DistilBERT's tokenizer hands the model none
        np.testing.assert_array_equal(got["input_type_ids"].numpy(), want["token_type_ids"])


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_converting_the_export_back_gives_the_original_weights_bit_exact(family, arch, tmp_path):
    import torch
    import transformers

    fam = family(arch)
    back = un.convert(fam.export(), to="huggingface", out=tmp_path / "back")
    original, restored = load_file(fam.folder / "model.safetensors"), load_file(back / "model.safetensors")
    assert sorted(restored) == sorted(original)
    for name, value in original.items():
        assert restored[name].dtype == value.dtype and restored[name].tobytes() == value.tobytes(), name
    assert _config(back) == _config(fam.folder) and not (back / "unified_nlp.json").exists()
    plain = transformers.AutoModelForSequenceClassification.from_pretrained(back).eval()
    batch = fam.encode(TEXTS)
    with torch.no_grad():
        np.testing.assert_array_equal(plain(**batch).logits.numpy(), fam.run(batch)[0])


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_fit_matches_huggingface_and_saves_a_folder_plain_transformers_loads(family, arch, tmp_path):
    import torch
    import transformers

    fam = family(arch)
    options = dict(epochs=3, batch_size=8, learning_rate=1e-3, seed=0, progress=False)
    ours = un.load_classifier(fam.folder, backend="tfhub")
    theirs = un.load_classifier(fam.folder, backend="huggingface")
    mine, reference = ours.fit(*TRAIN, **options), theirs.fit(*TRAIN, **options)
    assert abs(mine["loss"][0] - reference["loss"][0]) <= 1e-3 * reference["loss"][0]
    np.testing.assert_allclose(mine["loss"], reference["loss"], rtol=1e-3)
    assert mine["loss"][-1] < mine["loss"][0]
    saved = ours.save(tmp_path / "trained")
    plain = transformers.AutoModelForSequenceClassification.from_pretrained(saved).eval()
    batch = transformers.AutoTokenizer.from_pretrained(saved)(TEXTS, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        logits = plain(**batch).logits.numpy()
    assert_parity(ours.logits(TEXTS), logits, TOL)
    assert np.abs(ours.logits(TEXTS) - theirs.logits(TEXTS)).max() <= 1e-3  # three AdamW steps apart on two stacks


def test_a_checkpoint_without_a_pooler_converts_and_comes_back_without_one(tmp_path):
    from unified_nlp.weights import save_file

    folder = make_checkpoint("bert", tmp_path / "bert", scale=SCALE)
    state = load_file(folder / "model.safetensors")
    state = {k: v for k, v in state.items() if ".pooler." not in k}
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    export = un.convert(folder, to="tfhub", out=tmp_path / "export")
    assert sorted(json.loads((export / "unified_nlp.json").read_text())["synthesized"]) == [
        "pooler.dense.bias",
        "pooler.dense.weight",
    ]
    back = un.convert(export, to="huggingface", out=tmp_path / "back")
    restored = load_file(back / "model.safetensors")
    assert sorted(restored) == sorted(state)
    for name, value in state.items():
        assert restored[name].tobytes() == value.tobytes(), name


def test_albert_layer_groups_are_shared_as_transformers_shares_them(family, tmp_path):
    """4 layer steps over 2 groups of 2 layers: 4 sets of weights, each applied twice."""
    import shutil

    import torch
    import transformers

    source = family("albert").folder
    config = transformers.AutoConfig.from_pretrained(source)
    config.num_hidden_layers, config.num_hidden_groups, config.inner_group_num = 4, 2, 2
    torch.manual_seed(1)
    model = transformers.AutoModelForSequenceClassification.from_config(config).eval()
    scale_matrices(model, SCALE)
    model.save_pretrained(tmp_path / "albert")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy2(source / name, tmp_path / "albert" / name)
    clf = un.load_classifier(tmp_path / "albert", backend="tfhub")
    batch = family("albert").tokenizer(TEXTS, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch, output_hidden_states=True)
    assert_parity(clf.logits(TEXTS), expected.logits.numpy(), TOL)
    export = un.convert(tmp_path / "albert", to="tfhub", out=tmp_path / "export")
    out = hub.KerasLayer(str(export / "encoder"))(
        {
            "input_word_ids": tf.constant(batch["input_ids"].numpy(), tf.int32),
            "input_mask": tf.constant(batch["attention_mask"].numpy(), tf.int32),
            "input_type_ids": tf.zeros_like(tf.constant(batch["input_ids"].numpy(), tf.int32)),
        }
    )
    assert len(out["encoder_outputs"]) == len(expected.hidden_states) - 1 == 8  # one per layer applied
    assert_parity(out["sequence_output"].numpy(), expected.hidden_states[-1].numpy(), TOL, "sequence_output")
    back = load_file(un.convert(export, to="huggingface", out=tmp_path / "back") / "model.safetensors")
    original = load_file(tmp_path / "albert" / "model.safetensors")
    assert sorted(back) == sorted(original) and all(back[k].tobytes() == original[k].tobytes() for k in original)
