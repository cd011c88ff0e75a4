"""Numerical parity between two classifiers (usually one model on two backends)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .batching import batches_by_length
from .errors import ParityError
from .progress import bar

if TYPE_CHECKING:
    from .classifier import TextClassifier


@dataclass
class ParityReport:
    """What `compare` measured. `passed` needs identical token ids, logits within
    `tolerance`, and 100% argmax agreement."""

    backends: tuple[str, str]
    n_texts: int
    token_id_equality: float
    logits_max_abs_diff: float
    logits_mean_abs_diff: float
    probs_max_abs_diff: float
    probs_mean_abs_diff: float
    hidden_max_abs_diff: float
    hidden_mean_abs_diff: float
    argmax_agreement: float
    tolerance: float
    passed: bool
    mismatched_tokens: list[int] = field(default_factory=list)
    disagreements: list[int] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        """Each check that failed, with its measured value against what it needs."""
        out = []
        if self.token_id_equality < 1.0:
            out.append(
                f"token ids identical on {self.token_id_equality:.2%} of texts (needs 100%; "
                f"{len(self.mismatched_tokens)} differ)"
            )
        if not self.logits_max_abs_diff <= self.tolerance:
            out.append(f"logits max |diff| {self.logits_max_abs_diff:.3e} > tolerance {self.tolerance:g}")
        if self.argmax_agreement < 1.0:
            out.append(
                f"argmax agreement {self.argmax_agreement:.2%} (needs 100%; {len(self.disagreements)} labels differ)"
            )
        return out

    def as_dict(self) -> dict:
        return {**asdict(self), "failures": self.failures}

    def raise_for_failure(self) -> None:
        if not self.passed:
            raise ParityError(str(self))

    def __str__(self) -> str:
        a, b = self.backends
        rows = [
            f"parity {a} vs {b} on {self.n_texts} texts: "
            + (f"PASS (tolerance {self.tolerance:g})" if self.passed else f"FAIL: {'; '.join(self.failures)}"),
            f"  token ids identical      {self.token_id_equality:.2%}",
            f"  logits        max |diff| {self.logits_max_abs_diff:.3e}  mean {self.logits_mean_abs_diff:.3e}",
            f"  probabilities max |diff| {self.probs_max_abs_diff:.3e}  mean {self.probs_mean_abs_diff:.3e}",
            f"  last hidden   max |diff| {self.hidden_max_abs_diff:.3e}  mean {self.hidden_mean_abs_diff:.3e}",
            f"  argmax agreement         {self.argmax_agreement:.2%}",
        ]
        if self.mismatched_tokens:
            rows.append(f"  texts with different token ids (first 10): {self.mismatched_tokens[:10]}")
        if self.disagreements:
            rows.append(f"  texts with different labels (first 10): {self.disagreements[:10]}")
        return "\n".join(rows)


def compare(
    clf_a: TextClassifier,
    clf_b: TextClassifier,
    texts: Sequence[str],
    *,
    tolerance: float = 1e-4,
    batch_size: int = 32,
    progress: bool | None = None,
) -> ParityReport:
    """Compare two classifiers on `texts`: token ids, logits, probabilities, the last
    hidden state on unpadded positions, and labels. A bar shows on a terminal for long
    inputs (``progress=None``; True always, False never).

    Examples:
        >>> report = compare(load_classifier(backend="hf"), load_classifier(backend="tfhub"), texts)  # doctest: +SKIP
        >>> report.passed                                                                           # doctest: +SKIP
        True
    """
    if tuple(clf_a.labels) != tuple(clf_b.labels):
        raise ParityError(f"the classifiers have different labels: {clf_a.labels} vs {clf_b.labels}")
    first, second = clf_a.prepare(texts)
    n = len(first)
    logits = [np.zeros((n, len(clf_a.labels)), np.float64) for _ in range(2)]
    same_ids = np.zeros(n, dtype=bool)
    h_max, h_sum, h_count = 0.0, 0.0, 0
    chunk = 512
    with bar(n, f"compare {clf_a.backend} vs {clf_b.backend}", progress) as shown:
        for start in range(0, n, chunk):
            part = first[start : start + chunk]
            pairs = None if second is None else second[start : start + chunk]
            enc_a, enc_b = clf_a.encode(part, pairs), clf_b.encode(part, pairs)
            la, lb = enc_a.lengths, enc_b.lengths
            for i in range(len(part)):
                same_ids[start + i] = la[i] == lb[i] and np.array_equal(
                    enc_a.input_ids[i, : la[i]], enc_b.input_ids[i, : lb[i]]
                )
            for rows in batches_by_length(la, batch_size):
                out_a = clf_a.model(enc_a.select(rows), output_hidden_states=True)
                out_b = clf_b.model(enc_b.select(rows), output_hidden_states=True)
                logits[0][start + rows] = out_a.logits
                logits[1][start + rows] = out_b.logits
                for j, r in enumerate(rows):
                    if not same_ids[start + r] or out_a.last_hidden_state is None or out_b.last_hidden_state is None:
                        continue
                    k = int(la[r])
                    d = np.abs(out_a.last_hidden_state[j, :k].astype(np.float64) - out_b.last_hidden_state[j, :k])
                    h_max = max(h_max, float(d.max()))
                    h_sum += float(d.sum())
                    h_count += d.size
                shown.update(len(rows))
    diff = np.abs(logits[0] - logits[1])
    pa, pb = clf_a.scores(logits[0]), clf_b.scores(logits[1])
    pdiff = np.abs(pa.astype(np.float64) - pb)
    if clf_a.multi_label:  # the same set of labels above the threshold
        agree = ((pa >= 0.5) == (pb >= 0.5)).all(axis=1)
    else:
        agree = np.argmax(logits[0], axis=1) == np.argmax(logits[1], axis=1)
    ok_tokens = bool(same_ids.all())
    logits_max = float(diff.max()) if n else 0.0
    return ParityReport(
        backends=(clf_a.backend, clf_b.backend),
        n_texts=n,
        token_id_equality=float(same_ids.mean()) if n else 1.0,
        logits_max_abs_diff=logits_max,
        logits_mean_abs_diff=float(diff.mean()) if n else 0.0,
        probs_max_abs_diff=float(pdiff.max()) if n else 0.0,
        probs_mean_abs_diff=float(pdiff.mean()) if n else 0.0,
        hidden_max_abs_diff=h_max,
        hidden_mean_abs_diff=h_sum / h_count if h_count else 0.0,
        argmax_agreement=float(agree.mean()) if n else 1.0,
        tolerance=tolerance,
        passed=ok_tokens and logits_max <= tolerance and bool(agree.all()),
        mismatched_tokens=[int(i) for i in np.flatnonzero(~same_ids)],
        disagreements=[int(i) for i in np.flatnonzero(~agree)],
    )
