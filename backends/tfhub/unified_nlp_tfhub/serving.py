"""The exported classifier SavedModel: strings in, logits out, for plain TensorFlow tools.

``classifier/`` in a TF Hub export holds the preprocessor, the encoder and the
head in one graph, so ``tf.saved_model.load(path).signatures["serving_default"]``
and TF Serving run the whole classifier with no unified_nlp code:

- ``serving_default``: ``text`` (string [batch]) -> ``logits`` (float32 [batch, num_labels]);
- ``pairs``: ``text``, ``text_pair`` (string [batch] each) -> ``logits``.

Texts are packed as the adapter's TFHubTokenizer packs them (to the batch's
longest text, at most max_length tokens, trimmed round-robin for pairs), and the
head is the same function as the adapter's Model (model.head_logits), so the
logits equal the adapter's.

>>> import tensorflow as tf                                                       # doctest: +SKIP
>>> serve = tf.saved_model.load("minilm-tfhub/classifier").signatures["serving_default"]  # doctest: +SKIP
>>> serve(text=tf.constant(["a fine film"]))["logits"]                           # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ._tf import tf
from .encoder import Encoder
from .model import head_logits
from .preprocessor import BertPreprocessor

_STRINGS = tf.TensorSpec([None], tf.string)
NUM_SPECIAL = 2  # [CLS] ... [SEP]


class Classifier(tf.Module):
    """Preprocessor + encoder + head as one SavedModel with serving signatures."""

    def __init__(
        self,
        preprocessor: BertPreprocessor,
        encoder: Encoder,
        head: Mapping[str, np.ndarray],
        *,
        kind: str,
        dense_activation: str,
        max_length: int,
    ) -> None:
        super().__init__(name="classifier")
        self.preprocessor = preprocessor
        self.encoder = encoder
        self._kind, self._dense_activation = kind, dense_activation
        self._max_length = int(max_length)
        self._head = {k: tf.Variable(np.asarray(v, np.float32), name=k.replace(".", "/")) for k, v in head.items()}

    def _lengths(self, tokens):
        merged = tokens.merge_dims(-2, -1) if tokens.ragged_rank > 1 else tokens
        return tf.cast(merged.row_lengths(), tf.int32)

    def _logits(self, segments, needed):
        width = tf.minimum(tf.reduce_max(tf.concat([needed, [NUM_SPECIAL]], 0)), self._max_length)
        packed = self.preprocessor.bert_pack_inputs(segments, width)
        out = self.encoder(packed)
        logits, _, _ = head_logits(self._kind, self._head, out, packed["input_mask"], self._dense_activation)
        return {"logits": logits}

    @tf.function(autograph=False, input_signature=[_STRINGS])
    def classify(self, text):
        tokens = self.preprocessor.tokenize(text)
        return self._logits([tokens], self._lengths(tokens) + NUM_SPECIAL)

    @tf.function(autograph=False, input_signature=[_STRINGS, _STRINGS])
    def classify_pairs(self, text, text_pair):
        first, second = self.preprocessor.tokenize(text), self.preprocessor.tokenize(text_pair)
        return self._logits([first, second], self._lengths(first) + self._lengths(second) + NUM_SPECIAL + 1)

    def save(self, out: Path) -> None:
        signatures = {
            "serving_default": self.classify.get_concrete_function(),
            "pairs": self.classify_pairs.get_concrete_function(),
        }
        tf.saved_model.save(self, str(out), signatures=signatures)


def classifier_head(head: Mapping[str, np.ndarray], kind: str) -> dict[str, np.ndarray]:
    """head.safetensors' tensors under the names model.head_logits reads (the mean head's
    ``weight``/``bias`` become ``head.weight``/``head.bias``)."""
    if kind == "mean":
        return {"head.weight": head["weight"], "head.bias": head["bias"]}
    return dict(head)
