"""SavedModels built apart from the tfhub adapter, as third parties build them, for
tests/test_tfhub_native.py.

- IndependentBert: a BERT encoder in its own TensorFlow code (einsum attention over
  [hidden, heads, head_dim] kernels as Keras' EinsumDense keeps them, tanh GELU,
  -10000 mask bias), with TF Hub's BERT variable names and text-encoder contract;
- TFHubStylePreprocessor: tfhub.dev's BERT preprocessor recipe, tensorflow_text's
  BertTokenizer (its own normaliser, not the adapter's) with RoundRobinTrimmer,
  combine_segments and pad_model_inputs.

Neither shares code with the adapter, so converting them checks the weight map and
the tokenizer probing against an independent implementation.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from unified_nlp_tfhub._tf import text, tf

INPUTS = {k: tf.TensorSpec([None, None], tf.int32, name=k) for k in ("input_word_ids", "input_mask", "input_type_ids")}


class IndependentBert(tf.Module):
    """BERT with TF Hub's variable names, written without the adapter's encoder."""

    def __init__(self, vocab: int, hidden=32, layers=2, heads=4, inner=37, positions=64, seed=0):
        super().__init__(name="independent_bert")
        rng = np.random.default_rng(seed)
        d = hidden // heads
        self.v: dict[str, tf.Variable] = {}

        def add(name, shape, scale=0.3, offset=0.0):
            value = (rng.standard_normal(shape) * scale + offset).astype(np.float32)
            self.v[name] = tf.Variable(value, name=name)

        def norm(name):
            add(f"{name}/gamma", (hidden,), 0.1, 1.0)
            add(f"{name}/beta", (hidden,), 0.1)

        add("word_embeddings/embeddings", (vocab, hidden))
        add("position_embedding/embeddings", (positions, hidden))
        add("type_embeddings/embeddings", (2, hidden))
        norm("embeddings/layer_norm")
        for i in range(layers):
            p = f"transformer/layer_{i}"
            for n in ("query", "key", "value"):
                add(f"{p}/self_attention/{n}/kernel", (hidden, heads, d))
                add(f"{p}/self_attention/{n}/bias", (heads, d), 0.1)
            add(f"{p}/self_attention/attention_output/kernel", (heads, d, hidden))
            add(f"{p}/self_attention/attention_output/bias", (hidden,), 0.1)
            norm(f"{p}/self_attention_layer_norm")
            add(f"{p}/intermediate/kernel", (hidden, inner))
            add(f"{p}/intermediate/bias", (inner,), 0.1)
            add(f"{p}/output/kernel", (inner, hidden))
            add(f"{p}/output/bias", (hidden,), 0.1)
            norm(f"{p}/output_layer_norm")
        add("pooler_transform/kernel", (hidden, hidden))
        add("pooler_transform/bias", (hidden,), 0.1)
        self.layers, self.head_dim = layers, d

    def _norm(self, x, name):
        mean = tf.reduce_mean(x, -1, keepdims=True)
        var = tf.reduce_mean(tf.square(x - mean), -1, keepdims=True)
        return (x - mean) / tf.sqrt(var + 1e-12) * self.v[f"{name}/gamma"] + self.v[f"{name}/beta"]

    @tf.function(input_signature=[INPUTS])
    def __call__(self, inputs):
        v = self.v
        ids, mask, types = inputs["input_word_ids"], inputs["input_mask"], inputs["input_type_ids"]
        x = tf.nn.embedding_lookup(v["word_embeddings/embeddings"], ids)
        x += tf.nn.embedding_lookup(v["type_embeddings/embeddings"], types)
        x = self._norm(x + v["position_embedding/embeddings"][: tf.shape(ids)[1]][None], "embeddings/layer_norm")
        bias = (1.0 - tf.cast(mask, tf.float32))[:, None, None, :] * -10000.0
        outputs = []
        for i in range(self.layers):
            p = f"transformer/layer_{i}"
            q, k, val = (
                tf.einsum("btd,dnh->btnh", x, v[f"{p}/self_attention/{n}/kernel"]) + v[f"{p}/self_attention/{n}/bias"]
                for n in ("query", "key", "value")
            )
            weights = tf.nn.softmax(tf.einsum("bqnh,bknh->bnqk", q, k) / math.sqrt(self.head_dim) + bias, -1)
            context = tf.einsum("bnqk,bknh->bqnh", weights, val)
            attended = tf.einsum("bqnh,nhd->bqd", context, v[f"{p}/self_attention/attention_output/kernel"])
            x = self._norm(
                x + attended + v[f"{p}/self_attention/attention_output/bias"], f"{p}/self_attention_layer_norm"
            )
            h = tf.einsum("btd,df->btf", x, v[f"{p}/intermediate/kernel"]) + v[f"{p}/intermediate/bias"]
            h = 0.5 * h * (1.0 + tf.tanh(math.sqrt(2 / math.pi) * (h + 0.044715 * h**3)))  # the tanh GELU
            x = self._norm(
                x + tf.einsum("btf,fd->btd", h, v[f"{p}/output/kernel"]) + v[f"{p}/output/bias"],
                f"{p}/output_layer_norm",
            )
            outputs.append(x)
        pooled = tf.tanh(tf.matmul(x[:, 0], v["pooler_transform/kernel"]) + v["pooler_transform/bias"])
        return {"sequence_output": x, "pooled_output": pooled, "default": pooled, "encoder_outputs": outputs}

    def save(self, out: Path) -> None:
        root = tf.train.Checkpoint()  # the reusable-SavedModel attributes tfhub.dev's encoders carry
        root.encoder = self
        root.__call__ = self.__call__
        root.variables = list(self.v.values())
        root.trainable_variables = list(self.v.values())
        root.regularization_losses = []
        tf.saved_model.save(root, str(out))


class _Tokenize(tf.Module):
    def __init__(self, tokenizer, ids):
        super().__init__()
        self.tokenizer, self.ids = tokenizer, ids

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, strings):
        return tf.cast(self.tokenizer.tokenize(strings), tf.int32)

    @tf.function(input_signature=[])
    def get_special_tokens_dict(self):
        return {k: tf.constant(v, tf.int32) for k, v in self.ids.items()}


class _Pack(tf.Module):
    def __init__(self, ids):
        super().__init__()
        self.cls, self.sep, self.pad = ids["start_of_sequence_id"], ids["end_of_segment_id"], ids["padding_id"]

    @tf.function
    def __call__(self, inputs, seq_length):
        segments = [tf.cast(s.merge_dims(-2, -1) if s.ragged_rank > 1 else s, tf.int32) for s in inputs]
        trimmed = text.RoundRobinTrimmer(max_seq_length=seq_length - len(segments) - 1).trim(segments)
        ids, types = text.combine_segments(trimmed, start_of_sequence_id=self.cls, end_of_segment_id=self.sep)
        word_ids, mask = text.pad_model_inputs(ids, max_seq_length=seq_length, pad_value=self.pad)
        types, _ = text.pad_model_inputs(types, max_seq_length=seq_length, pad_value=0)
        return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": types}


class TFHubStylePreprocessor(tf.Module):
    """tokenize + bert_pack_inputs + a default call padding to `seq_length`, as tfhub.dev's."""

    def __init__(self, vocab_file: Path, seq_length: int = 64):
        super().__init__()
        self.vocab_file = tf.saved_model.Asset(str(vocab_file))
        vocab = Path(vocab_file).read_text(encoding="utf-8").splitlines()
        init = tf.lookup.TextFileInitializer(
            self.vocab_file,
            tf.string,
            tf.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64,
            tf.lookup.TextFileIndex.LINE_NUMBER,
        )
        self.table = tf.lookup.StaticVocabularyTable(init, num_oov_buckets=1)
        ids = {
            "padding_id": vocab.index("[PAD]"),
            "start_of_sequence_id": vocab.index("[CLS]"),
            "end_of_segment_id": vocab.index("[SEP]"),
            "mask_id": vocab.index("[MASK]"),
            "vocab_size": len(vocab),
        }
        self.tokenize = _Tokenize(text.BertTokenizer(self.table, lower_case=True, token_out_type=tf.int64), ids)
        self.bert_pack_inputs = _Pack(ids)
        self.seq_length = seq_length

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, strings):
        return self.bert_pack_inputs([self.tokenize(strings)], tf.constant(self.seq_length))

    def save(self, out: Path) -> None:
        for n in (1, 2):
            for rank in (2, 3):
                spec = tf.RaggedTensorSpec([None] * rank, tf.int32, ragged_rank=rank - 1, row_splits_dtype=tf.int64)
                self.bert_pack_inputs.__call__.get_concrete_function([spec] * n, tf.TensorSpec([], tf.int32))
        self.tokenize.get_special_tokens_dict.get_concrete_function()
        tf.saved_model.save(self, str(out))
