"""Deployment exports built as their own tools write them, and the outputs of their own runtimes:
plain functions, made session fixtures by tests/test_deployment_exports.py and measured by
benchmarks/deployment_exports.py. The callers check that the frameworks are installed.

    optimum_export(checkpoint, out)    # Optimum's ONNX folder: model.onnx, model_quantized.onnx
    keras_exports(root)                # .keras, .h5, TF Serving classify SavedModels
    paddle_export(root)                # export_model.py's Paddle Inference export, in .venv-paddle
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tests.checkpoints import LABELS

if TYPE_CHECKING:
    from collections.abc import Sequence

# the Keras exports' vocabulary: words of other texts are out of it (TextVectorization's [UNK])
TEXTS = [
    "This is a great movie!",
    "a dull , lifeless script",
    "Café naïve 日本語 😀",
    "ok",
    "the acting is superb , but the plot drags on and on for far too long",
    "",
]
REPO = Path(__file__).resolve().parents[1]
OPTIMUM_INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


# --- ONNX, Optimum's layout ---------------------------------------------------------------


def optimum_export(checkpoint: Path, out: Path) -> Path:
    """What `optimum-cli export onnx --task text-classification` writes, made with torch.onnx
    (Optimum cannot be installed beside transformers 5): the same names, axes and files."""
    import torch
    import transformers
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # eager attention: the TorchScript exporter (Optimum's) traces sdpa's mask of the example batch into the graph
    model = transformers.AutoModelForSequenceClassification.from_pretrained(checkpoint, attn_implementation="eager")
    tokenizer = transformers.AutoTokenizer.from_pretrained(checkpoint)
    example = tokenizer(["a short one", "and a longer example text"], padding=True, return_tensors="pt")
    axes = {name: {0: "batch_size", 1: "sequence_length"} for name in OPTIMUM_INPUTS} | {"logits": {0: "batch_size"}}
    out.mkdir(parents=True)
    with torch.no_grad():
        torch.onnx.export(
            model.eval(),
            tuple(example[name] for name in OPTIMUM_INPUTS),
            str(out / "model.onnx"),
            input_names=OPTIMUM_INPUTS,
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=14,
            do_constant_folding=True,
            dynamo=False,
        )
    model.config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    quantize_dynamic(out / "model.onnx", out / "model_quantized.onnx", weight_type=QuantType.QInt8)
    return out


def ort_logits(folder: Path, texts: Sequence[str], graph: str = "model.onnx") -> np.ndarray:
    """ONNX Runtime's own session on the graph, fed by transformers' tokenizer of the folder."""
    import onnxruntime
    import transformers

    session = onnxruntime.InferenceSession(str(folder / graph), providers=["CPUExecutionProvider"])
    batch = transformers.AutoTokenizer.from_pretrained(folder)(list(texts), padding=True, truncation=True)
    feed = {name: np.asarray(batch[name], np.int64) for name in OPTIMUM_INPUTS}
    return session.run(["logits"], feed)[0]


# --- TensorFlow: TF Serving's classify shape, and a single-file Keras model ---------------


def keras_exports(root: Path) -> dict[str, Path]:
    """A Keras 3 text classifier (TextVectorization, Embedding, mean pooling, Dense softmax) saved by
    Keras as .keras and .h5, and tf.Module SavedModels with TF Serving's classify signature over it:
    keys keras, h5, classify (strings in), examples (tf.Example protos in, one string feature) and
    two (two string features, which no loader can choose between)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    vocabulary = sorted({w for t in TEXTS for w in t.lower().split()})
    inputs = keras.Input(shape=(), dtype="string")
    x = keras.layers.TextVectorization(vocabulary=vocabulary, output_sequence_length=16)(inputs)
    x = keras.layers.Embedding(len(vocabulary) + 2, 8, embeddings_initializer="random_normal")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", kernel_initializer=keras.initializers.RandomNormal(0, 30))(x)
    model = keras.Model(inputs, outputs)
    model.save(root / "classifier.keras")
    model.save(root / "classifier.h5")
    classes = tf.constant(list(LABELS))

    class Classify(tf.Module):
        def __init__(self, model):
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def classify(self, inputs):
            scores = self.model(inputs)
            return {"classes": tf.tile(classes[None], [tf.shape(scores)[0], 1]), "scores": scores}

    module = Classify(model)
    tf.saved_model.save(module, str(root / "classify"), signatures={"serving_default": module.classify})

    class ClassifyExamples(tf.Module):
        """An Estimator's classification export: serialized tf.Example protos in, parsed by the graph."""

        def __init__(self, model, features):
            self.model, self.features = model, features

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def classify(self, inputs):
            parsed = tf.io.parse_example(inputs, self.features)
            scores = self.model(parsed["review"]) * tf.reshape(parsed["weight"], [-1, 1])
            return {"classes": tf.tile(classes[None], [tf.shape(scores)[0], 1]), "scores": scores}

    one = {"review": tf.io.FixedLenFeature([], tf.string), "weight": tf.io.FixedLenFeature([], tf.float32, 1.0)}
    two = {**one, "title": tf.io.FixedLenFeature([], tf.string, "")}
    for name, features in (("examples", one), ("two-string-features", two)):
        module = ClassifyExamples(model, features)
        tf.saved_model.save(module, str(root / name), signatures={"serving_default": module.classify})
    paths = {"keras": "classifier.keras", "h5": "classifier.h5", "classify": "classify", "examples": "examples"}
    return {key: root / name for key, name in {**paths, "two": "two-string-features"}.items()}


def saved_model_scores(folder: Path, texts: Sequence[str], *, examples: bool = False) -> np.ndarray:
    """TensorFlow's own run of a classify SavedModel's serving signature: the texts themselves, or
    (`examples`) each as a serialized tf.Example with the text in its "review" feature."""
    import tensorflow as tf

    def example(text: str) -> bytes:
        feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()]))
        return tf.train.Example(features=tf.train.Features(feature={"review": feature})).SerializeToString()

    serving = tf.saved_model.load(str(folder)).signatures["serving_default"]
    inputs = [example(t) for t in texts] if examples else list(texts)
    return serving(inputs=tf.constant(inputs))["scores"].numpy()


def keras_scores(file: Path, texts: Sequence[str]) -> np.ndarray:
    """Keras' own run of a single-file model."""
    import keras

    return np.asarray(keras.saving.load_model(str(file))(np.array(list(texts))))


# --- Paddle Inference, as PaddleNLP's export_model.py writes it ----------------------------


def paddle_export(root: Path, texts: Sequence[str] | None = None) -> dict:
    """tests/paddle_inference_fixture.py in the Paddle environment: the save_pretrained checkpoint, its
    paddle.jit.save export, and Paddle Inference's own logits on the export, on the script's texts
    or on `texts` (to 64 tokens, the positions the graph embeds)."""
    import os
    import subprocess
    import sys

    from unified_nlp import registry

    python = sys.executable if registry.installed_here("paddlenlp") else registry.worker_python("paddlenlp")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    command = [python, str(REPO / "tests" / "paddle_inference_fixture.py"), str(root)]
    if texts is not None:
        (root / "given-texts.json").write_text(json.dumps(list(texts)), encoding="utf-8")
        command.append(str(root / "given-texts.json"))
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{command[1]} failed:\n{done.stderr[-4000:]}")
    given = json.loads((root / "texts.json").read_text())
    return {"export": root / "export", "checkpoint": root / "checkpoint", **given, **np.load(root / "reference.npz")}
