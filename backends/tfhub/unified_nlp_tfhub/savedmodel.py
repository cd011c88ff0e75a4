"""Loading SavedModels through tensorflow_hub, checked against the text contracts.

TensorFlow reports a broken SavedModel with a zoo of exception types (OSError,
FileNotFoundError, OpError, IndexError, ValueError) and long stack traces; here
each becomes an InvalidModelError that names the file at fault, and a SavedModel
that loads but misses an input or output of the contract gets one that names
the key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from unified_nlp.backend_kit import InvalidModelError

from ._tf import hub, tf
from .encoder import INPUT_KEYS

REQUIRED_OUTPUTS = (
    "sequence_output",
    "pooled_output",
)  # what the classifier reads; default/encoder_outputs are optional
PREPROCESSOR_PARTS = ("tokenize", "bert_pack_inputs")
DEFAULT_MAX_LENGTH = 512  # BERT's position limit, for a model that does not state one


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


def _check_files(folder: Path, what: str) -> None:
    if not folder.is_dir():
        raise InvalidModelError(f"{folder}: missing {what} SavedModel folder")
    pb = folder / "saved_model.pb"
    if not pb.is_file() and not (folder / "saved_model.pbtxt").is_file():
        raise InvalidModelError(f"{pb}: missing; {folder} is not a SavedModel ({what})")
    if pb.is_file():
        from tensorflow.core.protobuf import saved_model_pb2

        try:
            saved_model_pb2.SavedModel().ParseFromString(pb.read_bytes())
        except Exception as e:  # protobuf's DecodeError, or a RuntimeWarning-turned-error
            raise InvalidModelError(f"{pb}: corrupt, not a SavedModel protocol buffer ({_first_line(e)})") from None
    index = folder / "variables" / "variables.index"
    if (folder / "variables").is_dir() or what == "encoder":
        if not index.is_file():
            raise InvalidModelError(f"{index}: missing; the SavedModel's variables are incomplete")
        for shard in _shards(folder / "variables"):
            if not shard.is_file():
                raise InvalidModelError(f"{shard}: missing; the SavedModel's variables are incomplete")


def _shards(variables: Path) -> list[Path]:
    found = sorted(variables.glob("variables.data-*-of-*"))
    match = re.search(r"-of-(\d+)$", found[0].name) if found else None
    total = int(match.group(1)) if match else 1
    return [variables / f"variables.data-{i:05d}-of-{total:05d}" for i in range(total)]


def load_saved_model(folder: Path, what: str) -> Any:
    """hub.load(folder), with every failure an InvalidModelError naming the file.

    >>> load_saved_model(Path("model/encoder"), "encoder")   # doctest: +SKIP
    """
    folder = Path(folder)
    _check_files(folder, what)
    try:
        return hub.load(str(folder))
    except Exception as e:  # TensorFlow raises many unrelated types here; all mean "unreadable"
        message = _first_line(e)
        culprit = folder / "variables" if re.search(r"variables|bytes|checkpoint|tensor", message, re.I) else folder
        if culprit.name == "variables":
            shards = _shards(culprit)
            culprit = shards[0] if len(shards) == 1 else culprit
        raise InvalidModelError(f"{culprit}: TensorFlow cannot load this {what} SavedModel ({message})") from None


class EncoderCall:
    """The encoder of a SavedModel as one callable: its ``__call__`` when it has
    one (the reusable SavedModel API), else its ``serving_default`` signature."""

    def __init__(self, obj: Any, folder: Path) -> None:
        self.obj = obj
        function = getattr(obj, "__call__", None)  # noqa: B004 (the restored tf.function, for its signatures)
        concrete = list(getattr(function, "concrete_functions", []) or [])
        if concrete:
            self._fn, self._by_signature = function, False
            spec = concrete[0].structured_input_signature
            inputs = spec[0][0] if spec and spec[0] else None
            outputs = concrete[0].structured_outputs
        elif "serving_default" in getattr(obj, "signatures", {}):
            self._fn, self._by_signature = obj.signatures["serving_default"], True
            inputs = self._fn.structured_input_signature[1]
            outputs = self._fn.structured_outputs
        else:
            raise InvalidModelError(
                f"{folder}: not a TF Hub text encoder: it is neither callable nor has a serving_default signature"
            )
        if not isinstance(inputs, dict):
            raise InvalidModelError(
                f"{folder}: the encoder must take a dict of {', '.join(INPUT_KEYS)}; it takes {inputs!r}"
            )
        for key in INPUT_KEYS:
            if key not in inputs:
                raise InvalidModelError(f"{folder}: the encoder has no input {key!r} (it takes {sorted(inputs)})")
        if not isinstance(outputs, dict):
            raise InvalidModelError(f"{folder}: the encoder must return a dict with {', '.join(REQUIRED_OUTPUTS)}")
        for key in REQUIRED_OUTPUTS:
            if key not in outputs:
                raise InvalidModelError(f"{folder}: the encoder has no output {key!r} (it returns {sorted(outputs)})")
        self.input_dtypes = {k: inputs[k].dtype for k in INPUT_KEYS}

    def __call__(self, inputs: dict) -> dict:
        inputs = {k: tf.cast(inputs[k], self.input_dtypes[k]) for k in INPUT_KEYS}
        return self._fn(**inputs) if self._by_signature else self._fn(inputs)

    def trainable_variables(self) -> list:
        found = getattr(self.obj, "trainable_variables", None)
        if found is None:
            function = self._fn if self._by_signature else self._fn.concrete_functions[0]
            found = function.trainable_variables
        return list(found)


def check_preprocessor(obj: Any, folder: Path) -> None:
    """Raise InvalidModelError naming the first part of the preprocessor contract that is missing."""
    for part in PREPROCESSOR_PARTS:
        if not callable(getattr(obj, part, None)):
            raise InvalidModelError(f"{folder}: the preprocessor has no {part!r} (TF Hub BERT preprocessor API)")


def default_seq_length(pre) -> int | None:
    """The seq_length a preprocessor's own call packs to (tfhub.dev's: 128), or None."""
    try:
        width = pre(tf.constant(["a"]))["input_word_ids"].shape[-1]
    except Exception:  # no default call, or one that does not return the encoder's dict
        return None
    return int(width) if width else None
