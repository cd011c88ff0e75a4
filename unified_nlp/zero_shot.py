"""Zero-shot classification with any NLI sentence-pair classifier, scored as transformers'
``ZeroShotClassificationPipeline`` scores it, on any backend.

Each text is paired with one hypothesis per candidate label (``hypothesis_template``
filled with the label) and the pairs run through the classifier in batches across texts x
labels. The entailment label is the model's first label whose name starts with "entail"
(any case), as transformers finds it in ``id2label``; a model without one is refused.

- ``multi_label=False``: a softmax over the candidates of each pair's entailment logit;
  the scores of a text sum to 1.
- ``multi_label=True`` (forced with a single candidate, as the pipeline does): for each
  label on its own, a softmax of (contradiction, entailment) logits, taking entailment's.
  The contradiction column is the pipeline's: the model's first label, or its last when
  entailment is the first.

A text longer than the model's maximum is truncated as the classifier truncates a pair
(longest first); transformers' pipeline cuts only the text ("only_first"). Under the
maximum both see the same tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .classifier import TextClassifier
from .errors import InvalidInputError
from .postprocess import softmax

TEMPLATE = "This example is {}."


def zero_shot(
    texts: str | Sequence[str],
    candidate_labels: str | Sequence[str],
    hypothesis_template: str = TEMPLATE,
    multi_label: bool = False,
    *,
    model: Any = "default",
    backend: str = "huggingface",
    batch_size: int = 32,
    **load_options: Any,
) -> dict | list[dict]:
    """Score `candidate_labels` for each text with an NLI model; like transformers'
    zero-shot pipeline, one dict per text (a dict for one string): ``sequence``, ``labels``
    best first and their ``scores``. `model` is a folder, an id in the local Hugging Face
    cache, or a loaded `TextClassifier` (then `backend` and `load_options` are unused).

    >>> out = zero_shot("The new phone's battery died in an hour.", ["tech", "sports"],  # doctest: +SKIP
    ...                 model="my-nli-model/", backend="onnxruntime")
    >>> out["labels"], out["scores"]                                                       # doctest: +SKIP
    (['tech', 'sports'], [0.93, 0.07])
    """
    labels = candidates(candidate_labels)  # checked before a model loads
    hypotheses = [hypothesis(hypothesis_template, label) for label in labels]
    clf = model if isinstance(model, TextClassifier) else _load(model, backend, load_options)
    single = isinstance(texts, str)
    items = [texts] if single else texts
    if not isinstance(items, Sequence) or isinstance(items, bytes):
        raise InvalidInputError(f"texts must be a string or a list of strings, got {type(texts).__name__}")
    entail = entailment_index(clf)
    first = [text for text in items for _ in labels]
    logits = clf.logits(first, text_pair=hypotheses * len(items), batch_size=batch_size)
    scores = _scores(logits.reshape(len(items), len(labels), -1), entail, multi_label or len(labels) == 1)
    out = [_result(text, labels, row) for text, row in zip(items, scores, strict=True)]
    return out[0] if single else out


def _load(model: Any, backend: str, load_options: dict) -> TextClassifier:
    from .api import load_classifier

    return load_classifier(model, backend=backend, **load_options)


def candidates(candidate_labels: str | Sequence[str]) -> list[str]:
    """The candidate labels: a list of names, or one string of comma-separated names (as the
    pipeline takes them); empty or repeated names are refused."""
    if isinstance(candidate_labels, str):
        candidate_labels = [name.strip() for name in candidate_labels.split(",")]
    if not isinstance(candidate_labels, Sequence) or not candidate_labels:
        raise InvalidInputError("candidate_labels: give at least one label name")
    labels = list(candidate_labels)
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            raise InvalidInputError(f"candidate_labels: every label must be a non-empty string, got {label!r}")
    if len(set(labels)) != len(labels):
        raise InvalidInputError(f"candidate_labels: a label is given twice in {labels}")
    return labels


def hypothesis(template: str, label: str) -> str:
    """`template` with `label` in its ``{}``."""
    if not isinstance(template, str) or "{}" not in template:
        raise InvalidInputError(f"hypothesis_template must contain '{{}}' for the label, got {template!r}")
    return template.format(label)


def entailment_index(clf: TextClassifier) -> int:
    """The index of the model's entailment label (the first whose name starts with "entail")."""
    for index, name in enumerate(clf.labels):
        if str(name).lower().startswith("entail"):
            return index
    raise InvalidInputError(
        f"zero-shot needs an NLI model with an entailment label; this model's labels are {list(clf.labels)} "
        "(its config.json id2label must name one 'entailment'; an NLI model with placeholder names "
        "can be loaded with labels=[...])"
    )


def _scores(logits: np.ndarray, entail: int, multi_label: bool) -> np.ndarray:
    """[texts, labels] scores from [texts, labels, model labels] logits."""
    if not multi_label:
        return softmax(logits[..., entail])
    contradiction = -1 if entail == 0 else 0  # the pipeline's column, whatever its name
    return softmax(logits[..., [contradiction, entail]])[..., 1]


def _result(text: str, labels: list[str], scores: np.ndarray) -> dict:
    order = np.argsort(-scores, kind="stable")
    return {"sequence": text, "labels": [labels[i] for i in order], "scores": [float(scores[i]) for i in order]}
