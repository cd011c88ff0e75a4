"""fit's shared loop alone, with a fake numpy model (bag of words -> linear -> softmax, plain
SGD): step counts with accumulation, checkpoints and resume after a crash, in milliseconds.
The real frameworks run the same options in test_fit_features.py."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from unified_nlp.classifier import TextClassifier
from unified_nlp.protocols import Encoding, Model, ModelOutput

VOCAB = 64


class FakeTokenizer:
    max_length = 16
    vocab_size = VOCAB

    def __call__(self, texts, text_pair=None, *, max_length=None, padding="longest", truncation=True):
        limit = max_length or self.max_length
        rows = [[1 + zlib.crc32(w.encode()) % (VOCAB - 1) for w in t.split()][:limit] or [1] for t in texts]
        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
        return Encoding(ids, (ids > 0).astype(np.int64))

    def decode(self, ids, skip_special_tokens=True):
        return ""


class FakeModel(Model):
    """logits = mean of W[token] over the text + b; SGD on the summed gradient of a step."""

    num_labels = 2

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.w = rng.normal(0, 0.1, (VOCAB, 2)).astype(np.float32)
        self.b = np.zeros(2, np.float32)
        self.calls = 0

    def _features(self, enc):
        mask = enc.attention_mask.astype(np.float32)
        counts = np.zeros((enc.num_texts, VOCAB), np.float32)
        for i in range(enc.num_texts):
            np.add.at(counts[i], enc.input_ids[i], mask[i])
        return counts / mask.sum(axis=1, keepdims=True)

    def __call__(self, encoding, *, output_hidden_states=False):
        return ModelOutput(self._features(encoding) @ self.w + self.b)

    def state_dict(self):
        return {"w": self.w.copy(), "b": self.b.copy()}

    def load_state_dict(self, state):
        self.w, self.b = np.array(state["w"], np.float32), np.array(state["b"], np.float32)

    def start_training(self, config):
        self.gw, self.gb, self.steps = np.zeros_like(self.w), np.zeros_like(self.b), 0

    def train_step(self, encoding, label_ids, learning_rate, example_weights=None, apply=True):
        self.calls += 1
        x = self._features(encoding)
        z = x @ self.w + self.b
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        n = encoding.num_texts
        w = np.full(n, 1.0 / n, np.float32) if example_weights is None else np.asarray(example_weights, np.float32)
        losses = -np.log(p[np.arange(n), label_ids])
        d = (p - np.eye(2, dtype=np.float32)[label_ids]) * w[:, None]
        self.gw += x.T @ d
        self.gb += d.sum(axis=0)
        if apply:
            self.w -= np.float32(learning_rate) * self.gw
            self.b -= np.float32(learning_rate) * self.gb
            self.gw[:], self.gb[:] = 0, 0
            self.steps += 1
        return float((losses * w).sum())

    def training_state(self):
        return {"step/w": np.array([self.steps], np.int64)}

    def set_training_state(self, state):
        self.steps = int(state["step/w"][0])

    def end_training(self):
        pass


def _clf():
    return TextClassifier(FakeTokenizer(), FakeModel(), ("neg", "pos"), "fake", spec={})


TEXTS = [f"{'good fine' if i % 3 else 'bad dull'} film number {i}" for i in range(14)]
LABELS = ["pos" if i % 3 else "neg" for i in range(14)]
VAL = ([f"{'good' if i % 2 else 'dull'} film {i}" for i in range(6)], ["pos" if i % 2 else "neg" for i in range(6)])


def test_accumulation_counts_optimizer_steps_and_averages_each_group():
    clf = _clf()
    history = clf.fit(TEXTS, LABELS, batch_size=2, gradient_accumulation=3, epochs=2, progress=False)
    # 7 micro-batches per epoch: groups of 3, 3 and 1 -> 3 optimizer steps per epoch
    assert history["steps"] == 6 == clf.model.steps and clf.model.calls == 14
    assert len(history["loss"]) == 6 and len(history["epoch_loss"]) == 2


def test_a_crashed_run_resumes_to_the_same_weights_and_history(tmp_path):
    options = dict(
        validation=VAL, batch_size=3, epochs=3, learning_rate=0.5, eval_every=2, keep_best=True, seed=4, progress=False
    )
    reference = _clf()
    expected = reference.fit(TEXTS, LABELS, **options)

    crashing = _clf()
    step = crashing.model.train_step

    def crash(*args, **kwargs):
        if crashing.model.steps == 7:
            raise KeyboardInterrupt  # after the checkpoint of step 6, in the middle of epoch 2
        return step(*args, **kwargs)

    crashing.model.train_step = crash
    with pytest.raises(KeyboardInterrupt):
        crashing.fit(TEXTS, LABELS, checkpoint_dir=tmp_path, checkpoint_every=3, **options)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-00000006"]

    resumed = _clf()
    history = resumed.fit(TEXTS, LABELS, checkpoint_dir=tmp_path, checkpoint_every=3, resume=True, **options)
    assert history["resumed_from"] == 6 and history["steps"] == expected["steps"] == 15
    for key in ("loss", "learning_rate", "epoch_loss", "eval", "best", "restored_best"):
        assert history[key] == expected[key], key
    for name, value in reference.model.state_dict().items():
        np.testing.assert_array_equal(resumed.model.state_dict()[name], value)
