"""Strings-in deployment exports that return probabilities: a SavedModel with the TF Serving
classify shape, and a single-file Keras model (``.keras``, or a Keras ``.h5``).

TF Serving's classify API answers with ``classes`` (label names, [batch, n]) and ``scores``
([batch, n], probabilities), as an Estimator's classification export or a ``tf.Module`` with such
a signature has them. The labels come from ``classes``; each row's scores are put in that order
(a row may list its classes in another order). A Keras model usually ends in a softmax (or a
sigmoid for multi-label), read from its last layer. The core softmaxes logits, so probabilities
cross as their logarithms (log-odds for a sigmoid), which the core's softmax (sigmoid) turns back
into the same probabilities within float rounding.

Both run as black boxes: their tokenizer and layers are their own graph, so they neither train
nor convert (StringsModel says so).

>>> fn = ClassifyFunction(signature, "inputs")      # doctest: +SKIP
>>> fn.labels, fn(tf.constant(["a fine film"])).shape   # doctest: +SKIP
(('negative', 'positive'), TensorShape([1, 2]))
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from unified_nlp.backend_kit import (
    KERAS_FILE_FORMAT,
    PROBLEM_TYPES,
    InvalidInputError,
    InvalidModelError,
    ModelSpec,
)

from ._tf import tf
from .strings import StringsTokenizer
from .strings_model import StringsModel

CLASSIFY_OUTPUTS = ("classes", "scores")
WHY_SAVEDMODEL = (
    "a TF Serving classify export is a black box (strings in, classes and scores out; its tokenizer and layers are "
    "its own graph) with no architecture to map its variables to; to fine-tune it or run it elsewhere, use the "
    "checkpoint it was exported from"
)
WHY_KERAS = (
    "a single-file Keras model taking strings is a black box (its tokenizer and layers are its own graph) with no "
    "architecture to map them to; to fine-tune it, fit it in Keras, or use the checkpoint it was built from"
)
_TINY = 1e-30  # probabilities of exactly 0 cross as log(1e-30), not -inf


def classify_signature(obj) -> tuple[str, str] | None:
    """(signature name, input name) of a serving signature taking one string tensor [batch] and
    returning classes and scores; None when the SavedModel has none."""
    for name in ("serving_default", "classify", "serve"):
        fn = getattr(obj, "signatures", {}).get(name)
        if fn is None:
            continue
        inputs, outputs = fn.structured_input_signature[1], fn.structured_outputs
        if len(inputs) != 1 or not isinstance(outputs, dict) or not all(k in outputs for k in CLASSIFY_OUTPUTS):
            continue
        ((key, spec),) = inputs.items()
        if spec.dtype == tf.string and len(spec.shape) == 1:
            return name, key
    return None


def _log_probabilities(scores, sigmoid: bool):
    p = tf.clip_by_value(tf.cast(scores, tf.float64), _TINY, 1.0)
    logits = tf.math.log(p) - tf.math.log(tf.clip_by_value(1.0 - p, _TINY, 1.0)) if sigmoid else tf.math.log(p)
    return tf.cast(logits, tf.float32)


_PARSE_OPS = ("ParseExampleV2", "ParseExample")  # the ops that read serialized tf.Example protos


def example_feature(signature) -> str | None:
    """The feature of a serving signature that takes serialized tf.Example protos rather than
    texts (as an Estimator's parsing serving_input_receiver_fn exports it): the one string
    feature its ParseExample op reads; None when the signature parses no tf.Example.

    Read from the graph (the function library included, where a loaded SavedModel keeps the
    signature's body): the op's key inputs are constants. Written here because TensorFlow
    offers no public way to ask a signature which features it parses."""
    graph = signature.graph.as_graph_def()
    found: list[str] = []
    for nodes in (graph.node, *(f.node_def for f in graph.library.function)):
        consts = {n.name: n for n in nodes if n.op == "Const"}
        for node in nodes:
            if node.op in _PARSE_OPS:
                found += _string_keys(node, consts)
    if not found:
        return None
    if len(set(found)) != 1:
        raise InvalidModelError(
            f"the classify signature parses tf.Example protos with string features {sorted(set(found))}: "
            "texts can fill only one"
        )
    return found[0]


def _key_groups(node) -> list[tuple[list[str], str]]:
    """(the constants holding a ParseExample(V2) node's feature keys, the attribute of their types),
    per kind of feature: V2 has one constant per kind, v1 one per feature, sparse ones first."""
    inputs = [name.split(":")[0].lstrip("^") for name in node.input]
    if node.op == "ParseExample":
        sparse, dense = int(node.attr["Nsparse"].i), int(node.attr["Ndense"].i)
        return [(inputs[2 : 2 + sparse], "sparse_types"), (inputs[2 + sparse : 2 + sparse + dense], "Tdense")]
    return [([inputs[2]], "sparse_types"), ([inputs[3]], "Tdense"), ([inputs[4]], "ragged_value_types")]


def _string_keys(node, consts: dict) -> list[str]:
    """The string features a ParseExample(V2) node reads."""
    keys = []
    for names, types in _key_groups(node):
        values = [tf.make_ndarray(consts[n].attr["value"].tensor) for n in names if n in consts]
        found = [k.decode() if isinstance(k, bytes) else str(k) for v in values for k in np.atleast_1d(v)]
        keys += [k for k, dtype in zip(found, node.attr[types].list.type) if dtype == tf.string.as_datatype_enum]
    return keys


def _as_examples(strings, feature: str):
    """Texts as serialized tf.Example protos with the texts in `feature`."""
    texts = strings.numpy() if hasattr(strings, "numpy") else np.asarray(strings)
    protos = [
        tf.train.Example(
            features=tf.train.Features(feature={feature: tf.train.Feature(bytes_list=tf.train.BytesList(value=[t]))})
        ).SerializeToString()
        for t in (t if isinstance(t, bytes) else str(t).encode("utf-8") for t in texts.reshape(-1))
    ]
    return tf.constant(protos, dtype=tf.string)


class ClassifyFunction:
    """A classify signature as a strings -> [batch, n] function (StringsModel's), with `labels`
    read from its ``classes`` on a probe text. A signature that parses tf.Example protos gets
    each text as a proto with the text in its one string feature (`feature`)."""

    def __init__(self, signature, input_name: str, owner=None) -> None:
        self._fn, self._input, self._owner = signature, input_name, owner
        self.feature = example_feature(signature)
        classes = self._call(tf.constant(["probe"]))["classes"].numpy()
        if classes.ndim != 2 or classes.shape[0] != 1:
            raise InvalidModelError(f"the classify signature returns classes of shape {list(classes.shape)}")
        self.labels = tuple(c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c) for c in classes[0])
        if len(set(self.labels)) != len(self.labels) or not all(self.labels):
            raise InvalidModelError(f"the classify signature's classes are not distinct names: {list(self.labels)}")

    def _call(self, strings):
        return self._fn(**{self._input: strings if self.feature is None else _as_examples(strings, self.feature)})

    def __call__(self, strings):
        out = self._call(strings)
        scores = out["scores"].numpy()
        classes = out["classes"].numpy()
        index = {name.encode("utf-8"): i for i, name in enumerate(self.labels)}
        rows = np.array([[index.get(c if isinstance(c, bytes) else str(c).encode(), -1) for c in r] for r in classes])
        if (rows < 0).any() or rows.shape != scores.shape:
            raise InvalidModelError(f"the classify signature returned classes outside {list(self.labels)}")
        ordered = np.zeros_like(scores)
        np.put_along_axis(ordered, rows, scores, axis=1)  # each row's scores in the order of `labels`
        return _log_probabilities(ordered, sigmoid=False)


class KerasFunction:
    """A Keras model taking strings as a strings -> [batch, n] function; probabilities of a
    softmax (sigmoid) last layer cross as their logarithms (log-odds)."""

    def __init__(self, model, activation: str | None) -> None:
        self._model, self.activation = model, activation
        rank = len(model.inputs[0].shape) if getattr(model, "inputs", None) else 1
        self._column = rank == 2  # a [batch, 1] string input

    def __call__(self, strings):
        x = tf.reshape(strings, [-1, 1]) if self._column else strings
        out = tf.cast(self._model(x, training=False), tf.float32)
        if self.activation in ("softmax", "sigmoid"):
            return _log_probabilities(out, sigmoid=self.activation == "sigmoid")
        return out


def _last_activation(model) -> str | None:
    """softmax, sigmoid or None (logits), from the model's last layer."""
    last = model.layers[-1] if getattr(model, "layers", None) else None
    name = getattr(getattr(last, "activation", None), "__name__", None)
    if name is None and type(last).__name__ in ("Softmax", "Activation"):
        name = "softmax" if type(last).__name__ == "Softmax" else getattr(last.activation, "__name__", None)
    return name if name in ("softmax", "sigmoid") else None


def load_keras_file(path: Path):
    """The Keras model in a .keras or Keras .h5 file, through Keras 3 with safe_mode (no lambda's
    code is run), compile=False; InvalidModelError for a truncated, corrupt or non-model file."""
    import keras

    try:
        return keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as e:  # Keras, h5py and zipfile raise their own types
        hint = " (a transformers tf_model.h5 holds weights only: pass its folder)" if path.suffix == ".h5" else ""
        raise InvalidModelError(f"{path}: Keras cannot load this model file{hint} ({type(e).__name__}: {e})") from None


def _keras(path: Path) -> tuple[KerasFunction, int]:
    model = load_keras_file(path)
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1 or "string" not in str(inputs[0].dtype):
        raise InvalidModelError(
            f"{path}: the Keras model takes {[str(i.dtype) for i in inputs]}; a single-file Keras model runs here "
            "when it takes strings (its tokenizer inside, e.g. TextVectorization)"
        )
    fn = KerasFunction(model, _last_activation(model))
    probe = fn(tf.constant(["probe"]))
    if len(probe.shape) != 2:
        raise InvalidModelError(f"{path}: the model returns shape {list(probe.shape)}; expected [batch, num_labels]")
    return fn, int(probe.shape[-1])


def keras_file_spec(path: Path, *, labels=None, problem_type: str | None = None, seed: int = 0) -> ModelSpec:
    """The spec of a single-file Keras model: LABEL_i unless `labels` names its outputs."""
    fn, width = _keras(Path(path))
    given = None if labels is None else [str(x) for x in labels]
    if given is not None and (len(given) != width or len(set(given)) != width or not all(given)):
        raise InvalidInputError(f"{path}: the model gives {width} scores, so labels= needs {width} distinct names")
    multi = fn.activation == "sigmoid"
    problem = problem_type or PROBLEM_TYPES[1 if multi else 0]
    if problem not in PROBLEM_TYPES:
        raise InvalidInputError(f"problem_type must be one of {', '.join(PROBLEM_TYPES)}, got {problem!r}")
    return ModelSpec(
        format=KERAS_FILE_FORMAT,
        architecture=None,
        labels=tuple(given or [f"LABEL_{i}" for i in range(width)]),
        problem_type=problem,
        head="keras",
        token_types=False,
        seed=int(seed),
        extra={"model_path": str(Path(path).absolute()), "activation": fn.activation, "convertible": False},
    )


def inspect_keras_file(path: Path) -> dict[str, Any]:
    spec = keras_file_spec(path)
    return {
        "format": spec.format,
        "kind": "keras-file",
        "architecture": None,
        "labels": None,
        "outputs": spec.num_labels,
        "head": f"in the model (last activation: {spec.extra['activation'] or 'none, logits'})",
        "problem_type": spec.problem_type,
        "tokenizer": "inside the model (strings in)",
        "convertible": False,
        "trainable": False,
        "why": WHY_KERAS,
    }


def load_keras_file_model(spec: ModelSpec) -> tuple[StringsTokenizer, StringsModel]:
    fn, width = _keras(Path(spec.extra["model_path"]))
    if width != spec.num_labels:
        raise InvalidInputError(f"{spec.extra['model_path']}: {width} outputs, but {spec.num_labels} labels")
    model = StringsModel(fn, head=None, what="single-file Keras model", problem_type=spec.problem_type)
    return StringsTokenizer(), model
