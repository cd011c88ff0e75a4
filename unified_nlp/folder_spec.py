"""A Hugging Face classifier folder, read and checked once, in the core, for every backend.

The canonical format is the plain Hugging Face folder that transformers'
``save_pretrained`` writes: ``config.json`` (``model_type``, ``architectures``,
``id2label``/``label2id``, ``problem_type``), tokenizer files, and the weights of
the encoder and the architecture's own head in ``model.safetensors`` (sharded
with ``model.safetensors.index.json``) or, for older models, ``pytorch_model.bin``
(read by the restricted reader in safe_pickle, never unpickled).

The default model's head (mean pooling + linear layer) has no transformers class:
it is a documented extension, ``head.safetensors`` + ``unified_nlp.json`` beside
an encoder folder, and folders of that form keep loading.

`canonical_spec` turns a folder into the spec every adapter receives, after checking
what would otherwise be a framework stack trace or a silent wrong answer: an
unknown model_type, tensor shapes that do not match config.json, a head whose
outputs do not match id2label, a vocabulary larger than the embedding.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .architectures import Architecture
from .architectures import get as get_architecture
from .errors import InvalidInputError, InvalidModelError
from .folder import (
    HEAD_FILE,
    PICKLE_SUFFIXES,
    SPEC_FILE,
    read_json,
    read_spec,
    read_state_file,
    token_limit,
    weight_files,
)
from .format_names import HUGGINGFACE
from .spec import PROBLEM_TYPES, ModelSpec
from .weights import read_header


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in the folder's weights; reads only headers
    (a pytorch_model.bin is read whole, through the restricted reader)."""
    out: dict[str, tuple[int, ...]] = {}
    for file in weight_files(path):
        if file.suffix == ".safetensors":
            out.update({k: tuple(v["shape"]) for k, v in read_header(file).items()})
        else:
            out.update({k: v.shape for k, v in read_state_file(file).items()})
    return out


def read_config(path: Path) -> tuple[dict[str, Any], Architecture]:
    """config.json and its architecture (a legacy folder without model_type is BERT)."""
    config_path = path / "config.json"
    if not config_path.is_file():
        found = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES) if path.is_dir() else []
        extra = f" (found only {', '.join(found)})" if found else ""
        raise InvalidModelError(f"{config_path}: missing config.json{extra}")
    config = read_json(config_path)
    arch = get_architecture(config.get("model_type", "bert"), config_path)
    try:
        arch.dims(config)
    except ValueError as e:
        raise InvalidModelError(f"{config_path}: {e}") from None
    return config, arch


def config_labels(config: Mapping[str, Any], source: Path) -> list[str] | None:
    """Labels from id2label, in index order; None when config.json states none."""
    id2label = config.get("id2label")
    if id2label is None:
        return None
    if not isinstance(id2label, dict) or not id2label:
        raise InvalidModelError(f"{source}: 'id2label' must be a non-empty object")
    try:
        pairs = sorted((int(k), v) for k, v in id2label.items())
    except (TypeError, ValueError):
        raise InvalidModelError(f"{source}: 'id2label' keys must be integers 0..n-1") from None
    if [k for k, _ in pairs] != list(range(len(pairs))):
        raise InvalidModelError(f"{source}: 'id2label' keys must be 0..{len(pairs) - 1}, got {[k for k, _ in pairs]}")
    labels = [v for _, v in pairs]
    if not all(isinstance(x, str) and x for x in labels) or len(set(labels)) != len(labels):
        raise InvalidModelError(f"{source}: 'id2label' values must be distinct non-empty strings")
    return labels


def is_placeholder(labels: Sequence[str]) -> bool:
    """transformers' placeholder names LABEL_0, LABEL_1, ...: no names were given."""
    return list(labels) == [f"LABEL_{i}" for i in range(len(labels))]


def _token_types(path: Path, arch, dims: Mapping[str, int]) -> bool:
    """Whether the tokenizer hands the model token_type_ids (segment 1 for a pair's
    second text): tokenizer_config.json's model_input_names, else the family's habit."""
    names = None
    if (path / "tokenizer_config.json").is_file():
        names = read_json(path / "tokenizer_config.json").get("model_input_names")
    if isinstance(names, list):
        return "token_type_ids" in names and dims["types"] > 1
    return bool(arch.token_types and dims["types"] > 1)


def _check_vocabulary(path: Path, vocab: int) -> None:
    vocab_file = path / "vocab.txt"
    if vocab_file.is_file():
        with open(vocab_file, encoding="utf-8", errors="replace") as f:
            n_vocab = sum(1 for _ in f)
        if n_vocab > vocab:
            raise InvalidModelError(f"{vocab_file}: {n_vocab} tokens, but the embedding matrix has only {vocab} rows")
    elif not any((path / name).is_file() for name in ("tokenizer.json", "sentencepiece.bpe.model", "spiece.model")):
        raise InvalidModelError(f"{path}: no tokenizer files (tokenizer.json, vocab.txt or a SentencePiece model)")


def _check_tensors(found: Mapping[str, tuple[int, ...]], expected: Mapping[str, tuple[int, ...]], arch, source: Path):
    missing = sorted(k for k in expected if k not in found and not arch.is_optional(k))
    if missing:
        raise InvalidModelError(f"{source}: missing {len(missing)} tensor(s), e.g. {', '.join(missing[:3])}")
    for name, shape in expected.items():
        if name in found and tuple(found[name]) != tuple(shape):
            raise InvalidModelError(
                f"{source}: tensor {name!r} has shape {list(found[name])}, config.json implies {list(shape)}"
            )


def _strip_prefix(found: Mapping[str, tuple[int, ...]], arch) -> dict[str, tuple[int, ...]]:
    """Names as the task model has them: a bare encoder's ``embeddings...`` gets the
    architecture's prefix, as transformers does when it loads one into a classifier."""
    p = arch.prefix + "."
    if any(k.startswith(p) for k in found):
        return dict(found)
    return {(k if k.startswith(("classifier.", "pre_classifier.")) else p + k): v for k, v in found.items()}


def check(path: Path) -> tuple[dict[str, Any], Architecture, dict[str, tuple[int, ...]]]:
    """Validate a canonical folder's config, encoder tensors and vocabulary before any
    framework sees it; returns config.json, its architecture and the tensor shapes
    (under the task model's names)."""
    config, arch = read_config(path)
    found = _strip_prefix(tensor_shapes(path), arch)
    _check_tensors(found, arch.encoder_shapes(config), arch, weight_files(path)[0])
    _check_vocabulary(path, arch.dims(config)["vocab"])
    return config, arch, found


def canonical_spec(
    path: Path,
    labels: Sequence[str] | None = None,
    *,
    problem_type: str | None = None,
    seed: int = 0,
    require_head: bool = True,
) -> ModelSpec:
    """Check a canonical folder and return the spec its adapters get.

    format, architecture (model_type), head ("native" or "mean"), problem_type,
    labels, max_length, fresh_head, seed, token_types, missing (and pooling "mean"
    for a mean head). `labels` relabels a head whose labels are transformers'
    placeholders, or starts a fresh head when they differ from the folder's. With
    ``require_head=False`` an encoder without a head and without `labels` is
    described too (no labels): for converters, which carry the encoder and leave
    the head to whoever loads it with labels.

    >>> canonical_spec(Path("my-bert-classifier")).head   # doctest: +SKIP
    'native'
    """
    path = Path(path)
    legacy = read_spec(path)
    config, arch, found = check(path)
    dims = arch.dims(config)

    mean = (path / HEAD_FILE).is_file() or legacy.get("pooling") == "mean" or legacy.get("head") == "mean"
    problem = problem_type or config.get("problem_type") or "single_label_classification"
    if problem not in PROBLEM_TYPES:
        raise InvalidModelError(
            f"{path / 'config.json'}: problem_type {problem!r} is not supported (supported: {', '.join(PROBLEM_TYPES)})"
        )
    if mean:
        saved = _mean_head_labels(path, legacy, dims["hidden"])
        problem = problem_type or legacy.get("problem_type") or problem
    else:
        saved = _native_head_labels(path, config, arch, found)
    optional = {**arch.encoder_shapes(config), **arch.head_shapes(config, 1)}
    saved, fresh = _chosen_labels(saved, labels)
    if saved is None and not require_head:
        saved = []
    elif saved is None:
        raise InvalidModelError(
            f"{path}: no classification head (a {arch.classifier_class} with id2label in config.json); "
            "pass labels=[...] to start a fresh head, then fit it"
        )
    if problem == "single_label_classification" and len(saved) < 2 and (saved or require_head):
        raise InvalidInputError(f"a single-label classifier needs at least two labels, got {list(saved)}")
    return ModelSpec(
        format=HUGGINGFACE,
        architecture=arch.model_type,
        labels=tuple(saved),
        problem_type=problem,
        head="mean" if mean else "native",
        pooling="mean" if mean else None,
        token_types=_token_types(path, arch, dims),
        max_length=token_limit(path, config, legacy, positions=arch.position_limit(config)),
        seed=int(seed),
        fresh_head=fresh,
        # optional tensors the checkpoint lacks (a pooler): every adapter fills them with
        # Architecture.missing_tensors, the same values everywhere (transformers would draw at random)
        missing=tuple(sorted(n for n in optional if arch.is_optional(n) and n not in found)),
    )


def model_spec(
    path: Path, labels: Sequence[str] | None = None, problem_type: str | None = None, seed: int = 0
) -> ModelSpec:
    """The spec of a model folder: `canonical_spec` for a canonical folder; for a backend's own
    format written by convert, what its unified_nlp.json says, with `labels` applied.

    >>> model_spec(Path("minilm-tfhub")).format   # doctest: +SKIP
    'tfhub'
    """
    spec = read_spec(path)
    fmt = spec.get("format", HUGGINGFACE)
    if fmt == HUGGINGFACE:
        return canonical_spec(path, labels, problem_type=problem_type, seed=seed)
    spec["format"] = fmt
    spec.pop("num_labels", None)  # counted from the labels
    if labels is not None:
        labels = [str(x) for x in labels]
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise InvalidInputError(f"labels must be at least two distinct names, got {labels}")
        if labels != spec.get("labels"):
            spec["fresh_head"] = True
        spec["labels"] = labels
    elif not spec.get("labels"):
        raise InvalidModelError(
            f"{path}: no classification head ({SPEC_FILE} with labels, and head.safetensors); "
            "pass labels=[...] to start a fresh head, then fit it"
        )
    spec.setdefault("architecture", "bert")
    spec.setdefault("head", "mean" if spec.get("pooling", "mean") == "mean" else "native")
    spec.setdefault("problem_type", "single_label_classification")
    spec.setdefault("token_types", True)
    spec.setdefault("pooling", "mean")
    spec.setdefault("seed", seed)
    return ModelSpec.from_dict(spec)


def _mean_head_labels(path: Path, legacy: Mapping[str, Any], hidden: int) -> list[str] | None:
    """The labels of the mean-pooling extension (unified_nlp.json's), checked against
    head.safetensors; None when the folder has no head file."""
    saved, outputs = legacy.get("labels"), None
    if (path / HEAD_FILE).is_file():
        head = read_header(path / HEAD_FILE)
        w, b = head.get("weight"), head.get("bias")
        if w is None or b is None or len(w["shape"]) != 2 or w["shape"][1] != hidden or b["shape"] != [w["shape"][0]]:
            raise InvalidModelError(
                f"{path / HEAD_FILE}: expected 'weight' [num_labels, {hidden}] and 'bias' [num_labels]"
            )
        outputs = w["shape"][0]
    if saved is not None and outputs is not None and len(saved) != outputs:
        raise InvalidModelError(f"{path / HEAD_FILE}: {outputs} outputs, but {SPEC_FILE} lists {len(saved)} labels")
    return None if outputs is None else saved


def _native_head_labels(
    path: Path, config: Mapping[str, Any], arch: Architecture, found: Mapping[str, tuple[int, ...]]
) -> list[str] | None:
    """The labels of the architecture's own head (id2label, else LABEL_i), checked against
    its tensors; None when the checkpoint has no head."""
    head_shapes = arch.head_shapes(config, 1)
    classifier = [n for n in head_shapes if n.endswith("weight")][-1]  # the layer that gives the logits
    if classifier not in found:
        return None
    saved = config_labels(config, path / "config.json")
    outputs = found[classifier][0]
    if saved is None:
        saved = [f"LABEL_{i}" for i in range(outputs)]
    if len(saved) != outputs:
        raise InvalidModelError(
            f"{path / 'config.json'}: id2label has {len(saved)} labels, but the head {classifier!r} has {outputs} outputs"
        )
    _check_tensors(found, arch.head_shapes(config, outputs), arch, weight_files(path)[0])
    return saved


def _chosen_labels(saved: Sequence[str] | None, labels: Sequence[str] | None) -> tuple[Sequence[str] | None, bool]:
    """The labels to run with and whether they need a fresh head: given `labels` rename
    placeholder labels of the same count, and start a fresh head when they differ."""
    if labels is None:
        return saved, False
    labels = [str(x) for x in labels]
    if len(labels) < 1 or len(set(labels)) != len(labels) or not all(labels):
        raise InvalidInputError(f"labels must be distinct non-empty names, got {labels}")
    fresh = saved is None or (labels != list(saved) and not (is_placeholder(saved) and len(saved) == len(labels)))
    return labels, fresh


def classifier_config(config: Mapping[str, Any], spec: ModelSpec) -> dict[str, Any]:
    """config.json for a saved classifier: the source's, with architectures, labels and problem_type."""
    arch = get_architecture(config.get("model_type", "bert"))
    out = dict(config)
    out.setdefault("model_type", arch.model_type)
    labels = list(spec.labels)
    out["id2label"] = {str(i): name for i, name in enumerate(labels)}
    out["label2id"] = {name: i for i, name in enumerate(labels)}
    out["problem_type"] = spec.problem_type
    out["architectures"] = [arch.encoder_class if spec.head == "mean" else arch.classifier_class]
    return out


def write_config(config: Mapping[str, Any], path: Path) -> None:
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
