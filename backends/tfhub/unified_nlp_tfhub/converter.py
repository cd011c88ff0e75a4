"""Canonical folder -> TF Hub export, and back, written atomically.

The export::

    encoder/            SavedModel, TF Hub text-encoder contract (see encoder.py), every family
    preprocessor/       SavedModel, TF Hub BERT preprocessor contract (see preprocessor.py), for the
                        WordPiece families (BERT, DistilBERT, ELECTRA, ERNIE); pairs via bert_pack_inputs
    classifier/         SavedModel, the whole classifier (preprocessor + encoder + head): serving_default
                        text -> logits, pairs text, text_pair -> logits (see serving.py); where there are
                        a preprocessor and a head
    head.safetensors    the classification head: a native head under transformers' names
                        (classifier.*, classifier.dense/out_proj.*, pre_classifier.*), or the
                        mean-pooling extension's weight/bias
    unified_nlp.json    {"format": "tfhub", architecture, head, labels, problem_type, token_types,
                        max_length, tokenizer, pooled_output, ...}
    README.md           the same, in words: what each folder is and how to tokenize
    config.json, tokenizer.json, vocab.txt, ...
                        copied: the tokenizer of record (the adapter tokenizes with tokenizer.json,
                        ids identical to transformers), and what converting back needs

A user's own TF Hub BERT pair loads the same way: a folder with ``encoder/`` and
``preprocessor/`` following the contracts and a unified_nlp.json with
``"format": "tfhub"`` and ``"labels"``; without head.safetensors the head starts
fresh (fit it). Without unified_nlp.json, hub_folders.py reads it from the SavedModels.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from unified_nlp.backend_kit import (
    CANONICAL_FORMAT,
    ENCODER_FILE,
    HEAD_FILE,
    SPEC_FILE,
    TOKENIZER_FILES,
    ConversionError,
    InvalidModelError,
    ModelSpec,
    UnifiedNLPError,
    architectures,
    atomic_dir,
    canonical_spec,
    check,
    load_file,
    read_json,
    read_spec,
    read_state,
    safe_join,
    save_file,
)

from .disentangled_encoder import DisentangledEncoder
from .encoder import Encoder, check_config
from .preprocessor import DEFAULT_SEQ_LENGTH, BertPreprocessor, read_tokenizer_options
from .rotary_encoder import RotaryEncoder
from .serving import Classifier, classifier_head
from .weight_map import encoder_state, hf_to_tf, tf_to_hf, weight_rows

FORMAT = "tfhub"  # the export's unified_nlp.json "format": the backend's name

EXPORT_VERSION = 4  # bump when the export layout changes; cached conversions are then redone
ENCODER_DIR, PREPROCESSOR_DIR, CLASSIFIER_DIR = "encoder", "preprocessor", "classifier"
CLASSIFIER_NOTES = {
    "yes": "classifier/ is the whole classifier as one SavedModel (preprocessor, encoder, head): "
    "tf.saved_model.load or TF Serving; signature serving_default: text (string [batch]) -> logits; "
    "signature pairs: text, text_pair -> logits",
    "no head": "no classifier/ SavedModel: this export has no classification head (an encoder without labels)",
    "no preprocessor": "no classifier/ SavedModel: there is no preprocessor SavedModel for this tokenizer "
    "(see tokenizer.note); run encoder/ with tokenizer.json and apply head.safetensors",
}

TOKENIZER_NOTES = {
    "wordpiece": "preprocessor/ is a TF Hub BERT preprocessor (tensorflow_text ops) with the same WordPiece "
    "vocabulary and normalisation as tokenizer.json; pairs: bert_pack_inputs([first, second], seq_length)",
    "bpe": "byte-level BPE: tensorflow_text has no byte-level BPE op, so there is no preprocessor SavedModel; "
    "tokenize with tokenizer.json (the `tokenizers` package or transformers' AutoTokenizer) and feed the "
    "encoder input_word_ids, input_mask and input_type_ids of zeros",
    "sentencepiece": "SentencePiece (Unigram) as written in tokenizer.json: there is no preprocessor SavedModel "
    "(tensorflow_text's SentencepieceTokenizer needs the original .model file and does not apply "
    "tokenizer.json's normaliser and special-token template); tokenize with tokenizer.json and feed the encoder "
    "input_word_ids, input_mask and input_type_ids as it gives them (zeros for one text; 1 on a pair's second "
    "text where the family reads token types: ALBERT, DeBERTa-v2)",
}
POOLED_NOTES = {
    True: "tanh(dense) of the first token: the family's own pooler",
    False: "the first token's sequence_output (this family has no pooler)",
    "prediction": "the first token's or the masked mean of sequence_output, as config.json's classifier_pooling says",
}
# the TF encoder of each attention kind (encoder.ATTENTIONS)
ENCODERS = {"scaled_dot_product": Encoder, "rotary_local_global": RotaryEncoder, "disentangled": DisentangledEncoder}


def source_spec(source: Path) -> ModelSpec:
    """The core's spec of a canonical folder; for an encoder without a classification head,
    no labels (a head is drawn when it is loaded with labels)."""
    return canonical_spec(source, require_head=False)


def _head_tensors(
    source: Path, state: Mapping[str, np.ndarray], arch, config, spec: ModelSpec
) -> dict[str, np.ndarray] | None:
    """The head to carry in head.safetensors, under transformers' names; None when there is none."""
    if spec.head == "mean":
        return load_file(source / HEAD_FILE) if (source / HEAD_FILE).is_file() else None
    if not spec.labels:
        return None
    prefix = arch.prefix + "."
    names = [n for n in arch.head_shapes(config, spec.num_labels) if not n.startswith(prefix)]
    return {n: np.asarray(state[n], np.float32) for n in names}


def _vocab_file(source: Path, scratch: Path) -> Path:
    """vocab.txt, or one written from tokenizer.json's WordPiece vocabulary."""
    if (source / "vocab.txt").is_file():
        return source / "vocab.txt"
    model = read_json(source / "tokenizer.json").get("model") or {}
    if not isinstance(model, dict) or model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        kind = model.get("type") if isinstance(model, dict) else None
        raise InvalidModelError(f"{source / 'tokenizer.json'}: a {kind!r} tokenizer; BERT WordPiece only")
    vocab = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    out = scratch / "vocab.txt"
    out.write_text("".join(token + "\n" for token, _ in vocab), encoding="utf-8")
    return out


def _readme(meta: Mapping[str, Any]) -> str:
    pre = "preprocessor/  TF Hub BERT preprocessor SavedModel\n" if meta.get("preprocessor_dir") else ""
    if meta.get("classifier_dir"):
        pre += "classifier/    the whole classifier, strings -> logits (serving_default; pairs)\n"
    return (
        f"# TF Hub export of a {meta['architecture']} classifier (unified_nlp)\n\n"
        "```\n"
        "encoder/       TF Hub text encoder SavedModel: hub.KerasLayer(path) or hub.load(path), called with a dict\n"
        "               of int32 input_word_ids, input_mask, input_type_ids -> sequence_output, pooled_output,\n"
        "               default, encoder_outputs\n"
        f"{pre}"
        "head.safetensors   the classification head (see unified_nlp.json 'head')\n"
        "tokenizer files    the tokenizer of record (tokenizer.json)\n"
        "```\n\n"
        f"pooled_output: {meta['pooled_output']}.\n\n"
        f"Tokenizer: {meta['tokenizer']['note']}.\n\n"
        f"Classifier: {meta['classifier']}.\n"
    )


def export(source: Path, out: Path) -> None:
    """Write the TF Hub form of the canonical folder `source` at `out`, atomically:
    on any failure nothing is left at `out` (or the previous folder there is kept).

    >>> export(Path("my-roberta-classifier"), Path("my-roberta-tfhub"))   # doctest: +SKIP
    """
    source, out = Path(source), Path(out)
    config, arch, _ = check(source)
    spec = source_spec(source)
    try:
        options = check_config(arch.model_type, config)
    except ValueError as e:
        raise InvalidModelError(f"{source / 'config.json'}: {e}") from None
    state = read_state(source)
    # tensors the checkpoint lacks (a pooler) get the core's values, the same on every backend
    prefix = arch.prefix + "."
    for name, value in arch.missing_tensors(config, list(spec.missing)).items():
        state.setdefault(name if any(k.startswith(prefix) for k in state) else name.removeprefix(prefix), value)
    head = _head_tensors(source, state, arch, config, spec)
    try:
        values, made = hf_to_tf(encoder_state(state, arch.model_type), arch.model_type, config, options.heads)
    except KeyError as e:
        raise InvalidModelError(f"{source}: missing tensor {e.args[0]!r}") from None
    del state
    tokenizer_options, why_not = None, None
    if arch.tokenizer == "wordpiece":
        try:
            tokenizer_options = read_tokenizer_options(source)
        except InvalidModelError as e:  # the adapter tokenizes with tokenizer.json; the preprocessor is extra
            why_not = str(e)
    has_pooler = any(name.startswith("pooler_transform/") for name in values)
    made = made or [name.removeprefix(prefix) for name in spec.missing if name.startswith(prefix)]
    meta = _export_meta(arch, spec, has_pooler, tokenizer_options, why_not, made, head is not None)
    try:
        with atomic_dir(out) as tmp:
            encoder = ENCODERS[arch.attention](options, config, values)
            encoder.save(tmp / ENCODER_DIR)
            if tokenizer_options is not None:
                _save_preprocessor(tmp, source, arch, spec, meta, encoder, tokenizer_options, head)
            for name in ("config.json", *TOKENIZER_FILES):
                if (source / name).is_file():
                    shutil.copy2(source / name, tmp / name)
            if head is not None:
                save_file(head, tmp / HEAD_FILE)
            (tmp / SPEC_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            (tmp / "README.md").write_text(_readme(meta), encoding="utf-8")
    except UnifiedNLPError:
        raise
    except Exception as e:  # TensorFlow's own errors while tracing or saving
        raise ConversionError(
            f"converting {source} to TF Hub failed: {type(e).__name__}: {str(e).strip()[:500]}"
        ) from None


def _export_meta(
    arch, spec: ModelSpec, has_pooler: bool, tokenizer_options, why_not: str | None, made: list, has_head: bool
) -> dict[str, Any]:
    """The export's unified_nlp.json."""
    meta: dict[str, Any] = {
        "format": FORMAT,
        "architecture": arch.model_type,
        "head": spec.head,
        "head_kind": "mean" if spec.head == "mean" else arch.head,
        "problem_type": spec.problem_type,
        "token_types": spec.token_types,
        "labels": list(spec.labels),
        "max_length": spec.max_length,
        "encoder_dir": ENCODER_DIR,
        "pooled_output": POOLED_NOTES["prediction" if arch.head == "prediction" else has_pooler],
        "tokenizer": {"family": arch.tokenizer, "file": "tokenizer.json", "note": TOKENIZER_NOTES[arch.tokenizer]},
        "export_version": EXPORT_VERSION,
        "converted_from": CANONICAL_FORMAT,
    }
    if spec.head == "mean":
        meta["pooling"] = "mean"
    if tokenizer_options is not None:
        meta["preprocessor_dir"] = PREPROCESSOR_DIR
    elif why_not:
        meta["tokenizer"]["note"] = f"no preprocessor SavedModel ({why_not}); tokenize with tokenizer.json"
    if made:  # a pooler the checkpoint lacks, put in by the core; left out again when converting back
        meta["synthesized"] = made
    if not meta["labels"]:
        del meta["labels"]
    if tokenizer_options is not None and has_head:
        meta["classifier_dir"] = CLASSIFIER_DIR
        meta["classifier"] = CLASSIFIER_NOTES["yes"]
    else:
        meta["classifier"] = CLASSIFIER_NOTES["no head" if not has_head else "no preprocessor"]
    return meta


def _save_preprocessor(
    tmp: Path, source: Path, arch, spec: ModelSpec, meta: Mapping[str, Any], encoder, tokenizer_options, head
) -> None:
    """The preprocessor SavedModel and, with a head, the whole classifier's."""
    # the default seq_length (what hub.KerasLayer(preprocessor) pads to) must fit the encoder's positions
    seq_length = min(DEFAULT_SEQ_LENGTH, int(spec.max_length))
    preprocessor = BertPreprocessor(_vocab_file(source, tmp), **tokenizer_options, default_seq_length=seq_length)
    preprocessor.save(tmp / PREPROCESSOR_DIR)
    if head is not None:
        kind = meta["head_kind"]
        Classifier(
            preprocessor,
            encoder,
            classifier_head(head, kind),
            kind=kind,
            dense_activation=arch.dense_activation,
            max_length=int(spec.max_length),
        ).save(tmp / CLASSIFIER_DIR)


def encoder_variables(encoder_dir: Path) -> dict[str, Any]:
    """The trainable variables of an encoder SavedModel, by name (without ``:0``)."""
    from .savedmodel import EncoderCall, load_saved_model

    call = EncoderCall(load_saved_model(encoder_dir, "encoder"), encoder_dir)
    return {v.name.split(":")[0]: v for v in call.trainable_variables()}


def canonical_encoder(
    variables: Mapping[str, Any], model_type: str, config: Mapping[str, Any], where: Path
) -> dict[str, np.ndarray]:
    """Encoder tensors under Hugging Face encoder names from TF variables named as ours,
    checked against config.json; InvalidModelError naming what does not fit."""
    arch = architectures.get(model_type)
    rows = weight_rows(arch.model_type, config)
    missing = next((t for _, t, _ in rows if t not in variables), None)
    if missing is not None:
        raise InvalidModelError(f"{where}: no variable {missing!r}; not named as this adapter's {model_type} encoder")
    values = {
        t: np.asarray(variables[t].numpy() if hasattr(variables[t], "numpy") else variables[t]) for _, t, _ in rows
    }
    state = tf_to_hf(values, arch.model_type, config, arch.dims(config)["heads"])
    for name, shape in arch.encoder_shapes(config, prefixed=False).items():
        if tuple(state[name].shape) != tuple(shape):
            raise InvalidModelError(f"{where}: {name} has shape {list(state[name].shape)}, config.json implies {shape}")
    return state


def export_canonical(source: Path, out: Path) -> None:
    """Write the canonical Hugging Face folder of a TF Hub-format folder (ours, or a
    user's own BERT pair named as TF Hub's BERT, with config.json) to `out`,
    atomically; for users leaving TensorFlow. A native head gives a plain
    transformers classifier folder, weights bit-exact to the ones exported.

    >>> export_canonical(Path("my-roberta-tfhub"), Path("my-roberta-hf"))   # doctest: +SKIP
    """
    source, out = Path(source), Path(out)
    spec = read_spec(source)
    if spec.get("format") != FORMAT:
        raise InvalidModelError(f"{source / SPEC_FILE}: not a TF Hub-format folder (format {spec.get('format')!r})")
    if not (source / "config.json").is_file():
        raise ConversionError(
            f"{source}: no config.json, which the canonical format needs (activation, LayerNorm epsilon); "
            "add the Hugging Face config.json of this encoder to the folder"
        )
    config = read_json(source / "config.json")
    arch = architectures.get(spec.get("architecture") or config.get("model_type", "bert"), source / SPEC_FILE)
    try:
        arch.dims(config)
    except ValueError as e:
        raise InvalidModelError(f"{source / 'config.json'}: {e}") from None
    encoder_dir = safe_join(source, spec.get("encoder_dir", ENCODER_DIR), source / SPEC_FILE)
    state = canonical_encoder(encoder_variables(encoder_dir), arch.model_type, config, encoder_dir)
    for name in spec.get("synthesized", []):
        state.pop(name, None)
    native = spec.get("head", "mean" if spec.get("pooling", "mean") == "mean" else "native") == "native"
    vocab = source / "vocab.txt"
    if not vocab.is_file() and spec.get("preprocessor_dir"):
        vocab = safe_join(source, spec["preprocessor_dir"], source / SPEC_FILE) / "assets" / "vocab.txt"
    elif not vocab.is_file():
        vocab = source / PREPROCESSOR_DIR / "assets" / "vocab.txt"
    with atomic_dir(out) as tmp:
        if native:
            state = {f"{arch.prefix}.{k}": v for k, v in state.items()}
            if (source / HEAD_FILE).is_file():
                state.update(load_file(source / HEAD_FILE))
        elif (source / HEAD_FILE).is_file():
            shutil.copy2(source / HEAD_FILE, tmp / HEAD_FILE)
        save_file(state, tmp / ENCODER_FILE, metadata={"format": "pt"})
        for name in ("config.json", *TOKENIZER_FILES):
            if (source / name).is_file():
                shutil.copy2(source / name, tmp / name)
        if not (tmp / "vocab.txt").is_file() and not (tmp / "tokenizer.json").is_file() and vocab.is_file():
            shutil.copy2(vocab, tmp / "vocab.txt")
        if not native:  # the mean-pooling extension is described by unified_nlp.json
            meta = {
                "format": CANONICAL_FORMAT,
                "architecture": arch.model_type,
                "head": "mean",
                "pooling": "mean",
                "converted_from": FORMAT,
            }
            for key in ("labels", "max_length", "problem_type"):
                if spec.get(key):
                    meta[key] = spec[key]
            (tmp / SPEC_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
