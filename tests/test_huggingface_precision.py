"""The huggingface backend's CPU paths: fp32 linears on oneDNN (within 1e-5 of transformers'
eager forward at every batch size, length, pair and family tried) and precision="bf16" (a bf16
copy of the model, offered only where /proc/cpuinfo lists bf16 dot products; elsewhere an error
that says why). Other CPUs are simulated through the file unified_nlp.cpu reads."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from .checkpoints import assert_parity, make_checkpoint, transformers_logits
from .conftest import require

require("huggingface")
torch = pytest.importorskip("torch")

from unified_nlp_huggingface import HuggingFaceBackend  # noqa: E402
from unified_nlp_huggingface.cpu_paths import OneDNNLinear, onednn_linear_available, use_onednn  # noqa: E402

import unified_nlp as un  # noqa: E402
from unified_nlp import cpu  # noqa: E402
from unified_nlp.errors import InvalidInputError  # noqa: E402
from unified_nlp.folder_spec import model_spec  # noqa: E402

FLAGS = "fpu sse sse2 avx avx2 fma"
CPUS = {  # the first block of /proc/cpuinfo, shortened, of CPUs with and without bf16 dot products
    "haswell": ("Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz", FLAGS),
    "zen3": ("AMD EPYC 7763 64-Core Processor", FLAGS),
    "zen4": ("AMD EPYC 9R14", FLAGS + " avx512f avx512_vnni avx512_bf16"),
    "sapphire-rapids": ("Intel(R) Xeon(R) Platinum 8488C", FLAGS + " avx512f avx512_vnni amx_bf16 amx_int8 amx_tile"),
}
BF16_CPUS = {"zen4", "sapphire-rapids"}
TEXTS = [
    "a gorgeous , witty , seductive movie .",
    "it 's a bad sign when you 're rooting for the film to end .",
    "the acting , costumes , music , cinematography and sound are all astounding given the production 's "
    "austere locales . " * 3,
    "no .",
    "the story is a long one " * 40,  # over the tiny checkpoints' 64 positions: truncated
]
PAIRS = ["a film", "nothing at all , really", "music", "the sound of it " * 8, "yes"]
ONEDNN = pytest.mark.skipif(not onednn_linear_available(), reason="this torch build has no oneDNN linear")


def as_cpu(monkeypatch, tmp_path, name: str) -> None:
    """Make unified_nlp.cpu read CPU `name`'s /proc/cpuinfo."""
    model, flags = CPUS[name]
    path = tmp_path / f"cpuinfo-{name}"
    path.write_text(f"processor\t: 0\nmodel name\t: {model}\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    monkeypatch.setattr(cpu, "CPUINFO", path)


@pytest.mark.parametrize("name", sorted(CPUS))
def test_bf16_is_offered_only_where_the_cpu_has_bf16_dot_products(monkeypatch, tmp_path, name):
    as_cpu(monkeypatch, tmp_path, name)
    assert cpu.model_name() == CPUS[name][0]
    assert cpu.native_bf16() is (name in BF16_CPUS)
    assert ("bf16" in HuggingFaceBackend().precisions) is (name in BF16_CPUS)
    assert ("bf16" in cpu.fast_precisions()) is (name in BF16_CPUS)


def test_an_unreadable_cpuinfo_offers_fp32_only(monkeypatch, tmp_path):
    monkeypatch.setattr(cpu, "CPUINFO", tmp_path / "missing")
    assert cpu.fast_precisions() == ("fp32",) and HuggingFaceBackend().precisions == ("fp32",)
    assert "could not be read" in cpu.why_not_bf16()


def test_bf16_on_a_cpu_without_it_is_refused_saying_why(monkeypatch, tmp_path, default_dir):
    as_cpu(monkeypatch, tmp_path, "haswell")
    with pytest.raises(
        InvalidInputError, match=r"runs fp32 only here, not bf16 \(Intel.*E5-2680 v3 .* has no bf16 dot products"
    ):
        un.load_classifier("default", backend="huggingface", precision="bf16")
    spec = model_spec(default_dir, None, None, 0).replace(precision="bf16")
    with pytest.raises(InvalidInputError, match="AVX512-BF16 or AMX"):  # the adapter refuses it by itself too
        HuggingFaceBackend().load(default_dir, spec)


@pytest.fixture(scope="module")
def default_pair():
    """The default model at fp32 and bf16 (on a CPU with bf16 dot products), 48 SST-2 dev texts."""
    if not cpu.native_bf16():
        pytest.skip(f"bf16 is not offered on this CPU: {cpu.why_not_bf16()}")
    from unified_nlp.benchdata import read_tsv, sst2_path

    texts = read_tsv(sst2_path("dev"))[0][:48]
    return (
        texts,
        un.load_classifier("default", backend="huggingface"),
        un.load_classifier("default", backend="huggingface", precision="bf16"),
    )


def test_bf16_gives_fp32_logits_close_to_fp32_with_the_same_labels(default_pair):
    texts, fp32, bf16 = default_pair
    assert bf16.precision == "bf16" and fp32.precision == "fp32"
    want, got = fp32.logits(texts), bf16.logits(texts)
    assert got.dtype == np.float32 and got.shape == want.shape
    # bf16 keeps 8 bits of mantissa: on all of SST-2 dev the logits moved by at most 0.034 (|logits| up to ~4)
    assert 1e-4 < float(np.abs(got - want).max()) <= 0.06  # > 1e-4: it really ran in bf16
    assert (got.argmax(1) == want.argmax(1)).mean() >= 47 / 48
    out = bf16.model(bf16.tokenizer(texts[:4]), output_hidden_states=True)
    assert out.last_hidden_state.dtype == np.float32 and out.pooled.dtype == np.float32


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {arch: make_checkpoint(arch, root / arch, scale=8.0) for arch in ("bert", "roberta", "electra")}


@pytest.fixture
def onednn_on(monkeypatch):
    """The oneDNN fp32 path is opt-in (UNIFIED_NLP_TORCH_ONEDNN=1): these tests turn it on."""
    from unified_nlp_huggingface.cpu_paths import ENV_SWITCH

    monkeypatch.setenv(ENV_SWITCH, "1")


def test_the_onednn_path_is_off_unless_asked(tiny, monkeypatch):
    from unified_nlp_huggingface.cpu_paths import ENV_SWITCH

    monkeypatch.delenv(ENV_SWITCH, raising=False)
    assert _onednn_count(un.load_classifier(str(tiny["bert"]), backend="huggingface")) == 0


def _onednn_count(clf) -> int:
    return sum(isinstance(m, OneDNNLinear) for m in clf.model.net.modules())


@ONEDNN
@pytest.mark.usefixtures("onednn_on")
@pytest.mark.parametrize("arch", ["bert", "roberta", "electra"])
@pytest.mark.parametrize("batch_size", [1, 2, 5])
@pytest.mark.parametrize("pairs", [False, True], ids=["texts", "pairs"])
def test_the_onednn_fp32_path_matches_transformers_within_1e5(tiny, arch, batch_size, pairs):
    clf = un.load_classifier(str(tiny[arch]), backend="huggingface")
    assert _onednn_count(clf) > 0  # the fast path is the one under test
    text_pair = PAIRS if pairs else None
    want = transformers_logits(tiny[arch], TEXTS, text_pair)
    assert_parity(clf.logits(TEXTS, text_pair=text_pair, batch_size=batch_size), want, 1e-5)


@ONEDNN
@pytest.mark.usefixtures("onednn_on")
def test_the_default_model_on_onednn_matches_eager_torch_at_every_length(default_dir):
    from unified_nlp.benchdata import read_tsv, sst2_path

    texts = read_tsv(sst2_path("dev"))[0][:12] + [" ".join(read_tsv(sst2_path("dev"))[0][:30])]  # ~10 to 512 tokens
    clf = un.load_classifier("default", backend="huggingface")
    assert _onednn_count(clf) > 0
    fast = {b: clf.logits(texts, batch_size=b) for b in (1, 5, 32)}
    use_onednn(clf.model.net, False)
    try:
        eager = clf.logits(texts, batch_size=32)
        out = clf.model(clf.tokenizer(texts[:6]), output_hidden_states=True)
    finally:
        use_onednn(clf.model.net, True)
    for b, logits in fast.items():
        assert float(np.abs(logits - eager).max()) <= 1e-5, f"batch {b}"
    enc = clf.tokenizer(texts[:6])
    states = clf.model(enc, output_hidden_states=True).last_hidden_state
    real = enc.attention_mask.astype(bool)  # padding's states are attended by nothing: 4.6e-5 apart, unused
    assert float(np.abs(states - out.last_hidden_state)[real].max()) <= 1e-5


@ONEDNN
@pytest.mark.usefixtures("onednn_on")
def test_weights_changed_after_a_prediction_are_used(tiny):
    clf = un.load_classifier(str(tiny["bert"]), backend="huggingface")
    before = clf.logits(TEXTS)
    state = {k: v * 1.5 if v.ndim == 2 else v for k, v in clf.model.state_dict().items()}
    clf.model.load_state_dict(state)  # in place: the packed oneDNN weights are stale now
    after = clf.logits(TEXTS)
    use_onednn(clf.model.net, False)
    assert_parity(after, clf.logits(TEXTS), 1e-5)
    assert float(np.abs(after - before).max()) > 1e-2
    use_onednn(clf.model.net, True)
    copy.deepcopy(clf.model.net)  # the packed tensors have no storage: copies drop them


@ONEDNN
@pytest.mark.usefixtures("onednn_on")
def test_training_runs_torchs_own_linear(tiny):
    clf = un.load_classifier(str(tiny["bert"]), backend="huggingface")
    clf.fit(TEXTS[:4], ["negative", "positive", "neutral", "negative"], epochs=1, batch_size=2)
    assert _onednn_count(clf) > 0
    fitted = clf.logits(TEXTS)
    use_onednn(clf.model.net, False)
    assert_parity(fitted, clf.logits(TEXTS), 1e-5)


@pytest.mark.parametrize("name", ["haswell", "zen4"])
def test_auto_precision_backends_and_inspect_follow_the_cpu(monkeypatch, tmp_path, name):
    as_cpu(monkeypatch, tmp_path, name)
    want = ("fp32", "bf16") if name in BF16_CPUS else ("fp32",)
    rows = {r.name: r for r in un.list_backends()}
    assert rows["huggingface"].fast_precisions == want and rows["tfhub"].fast_precisions == ("fp32",)
    assert f"huggingface: {'/'.join(want)}" in un.inspect_model("default")["fast_precisions_here"]
    clf = un.load_classifier("default", backend="huggingface", precision="auto")
    assert clf.precision == want[-1] and (clf.model.bf16 is not None) is (want[-1] == "bf16")


@pytest.mark.skipif(not cpu.native_bf16(), reason="bf16 is not offered on this CPU")
def test_bf16_follows_weights_changed_in_place_and_training_stays_fp32(tiny):
    fp32 = un.load_classifier(str(tiny["bert"]), backend="huggingface")
    bf16 = un.load_classifier(str(tiny["bert"]), backend="huggingface", precision="bf16")
    for _ in range(2):
        want, got = fp32.logits(TEXTS, text_pair=PAIRS), bf16.logits(TEXTS, text_pair=PAIRS)
        assert got.dtype == np.float32
        # bf16 keeps 8 bits of mantissa: a few % of a tiny model's small logits (3.2% seen); a stale copy
        # would be off by the 25% the weights moved
        bound = 0.08 * float(np.abs(want).max())
        assert float(np.abs(got - want).max()) <= bound
        top2 = np.sort(want, axis=1)[:, -2:]
        clear = top2[:, 1] - top2[:, 0] > 2 * bound  # labels must agree where bf16 rounding cannot flip them
        assert (got.argmax(1) == want.argmax(1))[clear].all()
        state = {k: v * 1.25 if v.ndim == 2 else v for k, v in fp32.model.state_dict().items()}
        fp32.model.load_state_dict(state)
        bf16.model.load_state_dict(state)  # the bf16 copy is stale now: it must be made again
    assert {v.dtype for v in bf16.model.state_dict().values()} == {np.dtype(np.float32)}
