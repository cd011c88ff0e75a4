"""Property-based: random Unicode gives the same labels and probabilities on every
backend (within the parity tolerance), or the same InvalidInputError."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import Backend, default_classifier, require_module

hypothesis = require_module("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import unified_nlp as un  # noqa: E402

TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
    max_size=120,
) | st.text(alphabet=st.sampled_from(list("abc XYZ.,!?'é日本😀\u0301\u200d\t\n")), max_size=60)


@pytest.fixture(scope="module")
def classifiers():
    return [default_classifier(b.value) for b in Backend]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(texts=st.lists(TEXT, min_size=1, max_size=4))
def test_random_unicode_agrees_across_backends(classifiers, texts):
    reference, *others = classifiers
    expected = reference.predict_proba(texts)
    enc = reference.tokenizer(reference.preprocess(texts))
    for clf in others:
        other_enc = clf.tokenizer(clf.preprocess(texts))
        for i in range(len(texts)):
            n, m = int(enc.lengths[i]), int(other_enc.lengths[i])
            assert enc.input_ids[i, :n].tolist() == other_enc.input_ids[i, :m].tolist(), (clf.backend, texts[i])
        np.testing.assert_allclose(clf.predict_proba(texts), expected, atol=1e-4, err_msg=clf.backend)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.one_of(TEXT, st.none(), st.integers(), st.binary(max_size=5)), min_size=1, max_size=4))
def test_invalid_items_fail_alike(classifiers, texts):
    outcomes = []
    for clf in classifiers:
        try:
            outcomes.append(("ok", [p.label for p in clf.predict(texts)]))
        except un.InvalidInputError as e:
            outcomes.append(("error", str(e)))
    assert all(o == outcomes[0] for o in outcomes), outcomes
