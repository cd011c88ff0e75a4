"""Export a canonical folder to ONNX: the torch model the huggingface backend runs, through
torch.onnx's exporter, then ONNX Runtime's transformer optimizer where it keeps the logits.

Why these tools: torch.onnx (the dynamo exporter, torch's maintained path) exports every
supported family from the same `HFModel` the huggingface backend builds (the same head, the
same core-drawn fresh or missing tensors), so parity is by construction. Measured here with
transformers 5: the older TorchScript exporter (``dynamo=False``) bakes the attention mask
of the example batch into the graph (logits off by more than 1 on other batches); the
dynamo graph matches within 5e-6. ONNX Runtime's optimizer (onnxruntime.transformers)
fuses LayerNorm, SkipLayerNorm, bias + GELU and attention in that graph. Attention fuses
only in the form of BERT's original code, which is what the export traces (see
`_classic_attention`): transformers 5's own sdpa and eager graphs are not matched, and
unfused attention is about ten kernels a layer instead of one. Fused is not faster on every
CPU, so the fused and the plain graph are timed at export on the machine at hand and the
faster is kept (`graph_choice` in unified_nlp.json).

Export needs torch, transformers and the huggingface adapter; running the written folder
needs only onnxruntime and tokenizers.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from unified_nlp.backend_kit import (
    CANONICAL_FORMAT,
    SPEC_FILE,
    TOKENIZER_FILES,
    BackendNotInstalledError,
    ConversionError,
    FastTokenizer,
    ModelSpec,
    atomic_dir,
    get_architecture,
)

FORMAT = "onnxruntime"
MODEL_FILE = "model.onnx"
EXPORT_VERSION = 3  # exports in the store of another version are made again
OPSET = 18
TOLERANCE = 1e-5  # the optimised graph is kept only when its logits stay this close to torch's
# the fused and the plain graph are timed on these (texts, tokens) at export, and the faster kept:
# ONNX Runtime's fused Attention ran 0.89x an unfused graph on one CPU and 1.02-1.05x on another
CHOICE_SHAPES = ((32, 32), (8, 128))
CHOICE_MARGIN = 0.97  # the plain graph is kept only when it takes under 97% of the fused one's time
# probe inputs for the parity check of each export: padding, a pair, an accented and a CJK text
PROBES = ["This is a great movie!", "a dull , lifeless script", "Café naïve 日本語 😀", "ok"]
PROBE_PAIRS = (["A man plays a guitar.", "great"], ["A person makes music.", "it was bad , really bad"])
INSTALL_EXPORT = (
    "exporting a model to ONNX needs torch, transformers and the huggingface adapter: "
    "pip install torch==2.13.0 'unified-nlp[onnxruntime-export]' (see docs/backends.md, 'ONNX Runtime'). "
    "Running an exported folder (unified-nlp convert --to onnxruntime) needs only onnxruntime and tokenizers"
)


def _frameworks():
    try:
        import torch
        from unified_nlp_huggingface import HFModel
    except ImportError as e:
        raise BackendNotInstalledError(f"{INSTALL_EXPORT} (import failed: {e})") from None
    return torch, HFModel


ATTENTION = "unified_nlp_onnx"  # the name `_classic_attention` is registered under in transformers


def _classic_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers' attention function (the signature of its eager_attention_forward, in
    inference) written as BERT's original graph: query . key / sqrt(head size) + additive
    mask, softmax, . value. Written here because ONNX Runtime's attention fuser matches this
    graph and no other transformers 5 implementation offers it: its eager one multiplies by
    the scale (the fuser then takes the scale for the mask), its sdpa one masks through Where."""
    import torch

    head = query.size(-1)
    scores = torch.matmul(query, key.transpose(2, 3))
    if scaling is None or abs(scaling - head**-0.5) < 1e-12:
        scores = scores / head**0.5
    else:  # a family with its own scale: correct, but left unfused
        scores = scores * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), probs


def _use_classic_attention(model) -> None:
    import transformers

    transformers.AttentionInterface.register(ATTENTION, _classic_attention)
    model.encoder.set_attn_implementation(ATTENTION)


def _graph_module(torch, model, additive_mask: bool = True):
    """The HFModel's forward as a torch module of tensors: logits, last hidden state
    (and the pooled embedding of the mean-pooling head), as HFModel._logits computes them.
    Without `additive_mask` the model gets the 0/1 mask as it is (DeBERTa's disentangled
    attention reads it as booleans and masks its embeddings with it)."""

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model.net

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            # BERT's original additive mask, (batch, 1, 1, seq): transformers passes a 4-D mask on
            # as it is, and ONNX Runtime's attention fuser maps this pattern back to the 2-D input
            keep = attention_mask.unsqueeze(1).unsqueeze(2).to(torch.float32)
            mask = (1.0 - keep) * torch.finfo(torch.float32).min if additive_mask else attention_mask
            inputs = {"input_ids": input_ids, "attention_mask": mask}
            if token_type_ids is not None:
                inputs["token_type_ids"] = token_type_ids
            if not model.mean:
                out = model.encoder(**inputs, output_hidden_states=True)
                return out.logits, out.hidden_states[-1]
            states = model.encoder(**inputs).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            return model.head(pooled), states, pooled

    return Graph().eval()


def _feeds(enc, names: list[str]) -> dict[str, np.ndarray]:
    return {name: enc[name] for name in names}


def _max_diff(session, graph, torch, encodings, names: list[str]) -> float:
    worst = 0.0
    for enc in encodings:
        with torch.inference_mode():
            expected = graph(*(torch.from_numpy(enc[n]) for n in names))[0].numpy()
        got = session.run(["logits"], _feeds(enc, names))[0]
        worst = max(worst, float(np.abs(got.astype(np.float64) - expected).max()))
    return worst


def export(source: Path, spec: ModelSpec, out: Path, *, num_threads: int = 1) -> dict[str, Any]:
    """Write the ONNX Runtime folder of the canonical folder `source` at `out`, atomically:
    model.onnx (inputs input_ids, attention_mask and, where the family reads them,
    token_type_ids; outputs logits, last_hidden_state, and pooled for a mean-pooling head),
    the tokenizer files and unified_nlp.json. Returns the written unified_nlp.json.

    >>> export(Path("my-bert-classifier"), canonical_spec(Path("my-bert-classifier")), Path("out"))  # doctest: +SKIP
    """
    torch, HFModel = _frameworks()
    from .session import open_session

    source, out = Path(source), Path(out)
    model = HFModel(source, spec)
    # a family with its own attention (DeBERTa's disentangled one) keeps it, and its 0/1 mask
    classic = get_architecture(spec.architecture).attention == "scaled_dot_product"
    if classic:
        _use_classic_attention(model)
    graph = _graph_module(torch, model, additive_mask=classic)
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if model.token_types else [])
    outputs = ["logits", "last_hidden_state"] + (["pooled"] if model.mean else [])
    max_length = int(spec.max_length)
    tokenizer = FastTokenizer.from_folder(source, max_length, spec.token_types)
    probes = [tokenizer(PROBES), tokenizer(PROBE_PAIRS[0], text_pair=PROBE_PAIRS[1]), tokenizer(PROBES[:1])]
    example = probes[0]
    if example.input_ids.shape[1] < 2 or example.num_texts < 2:
        raise ConversionError(f"{source}: the tokenizer gives fewer than 2 tokens for {PROBES}; cannot export")
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    seq = torch.export.Dim("seq", min=1, max=max(int(model.max_positions), 2))
    shapes = {name: {0: batch, 1: seq} for name in names}
    meta: dict[str, Any] = {
        "format": FORMAT,
        "export_version": EXPORT_VERSION,
        "model_file": MODEL_FILE,
        "architecture": spec.architecture,
        "head": spec.head,
        "labels": list(spec.labels),
        "problem_type": spec.problem_type,
        "max_length": max_length,
        "max_positions": int(model.max_positions),
        "token_types": spec.token_types,
        "inputs": names,
        "outputs": outputs,
        "converted_from": CANONICAL_FORMAT,
    }
    with atomic_dir(out) as tmp:
        raw = tmp / "raw.onnx"
        chatter = io.StringIO()  # the exporter prints its steps to stdout; a library stays quiet
        try:
            # the exporter also logs a warning per torchvision operator it cannot register
            with warnings.catch_warnings(), contextlib.redirect_stdout(chatter), quiet_logger("torch.onnx"):
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    graph,
                    tuple(torch.from_numpy(example[n]) for n in names),
                    str(raw),
                    input_names=names,
                    output_names=outputs,
                    dynamic_shapes=shapes,
                    opset_version=OPSET,
                    dynamo=True,
                    external_data=False,
                    verbose=False,
                )
        except Exception as e:  # the exporter raises many types (torch._dynamo, onnxscript, export errors)
            raise ConversionError(
                f"{source}: torch.onnx could not export the {spec.architecture} model: {type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}"
            ) from e
        raw_diff = _max_diff(open_session(raw, num_threads), graph, torch, probes, names)
        config = model.encoder.config
        heads = (int(config.num_attention_heads), int(config.hidden_size))
        optimized, fusions, opt_diff = _optimize(raw, tmp / MODEL_FILE, heads, num_threads, graph, torch, probes, names)
        if not (optimized and opt_diff <= max(TOLERANCE, raw_diff)):  # the numbers moved, or it failed
            meta.update({"optimizer_max_abs_diff": opt_diff} if optimized else {})
            optimized = False
        meta.update(fusions=fusions, **_keep_faster(tmp / MODEL_FILE, raw, optimized, num_threads, names, model))
        meta["max_abs_diff_vs_torch"] = opt_diff if meta["optimized"] else raw_diff
        meta["exported_with"] = _versions()
        for name in TOKENIZER_FILES:
            if (source / name).is_file():
                shutil.copy2(source / name, tmp / name)
        (tmp / SPEC_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def _split_mask_unsqueeze(graph) -> None:
    """Undo one merge of the exporter's optimiser (onnxscript) in place: the attention mask's
    two Unsqueeze nodes become one with axes [1, 2], and ONNX Runtime's attention fuser looks
    for the two. Nothing else in the graph changes; the parity check after fusion still holds."""
    import onnx
    from onnx import numpy_helper

    constants = {t.name: t for t in graph.initializer}
    constants.update({n.output[0]: n.attribute[0].t for n in graph.node if n.op_type == "Constant" and n.attribute})
    nodes = []
    for node in graph.node:
        axes = constants.get(node.input[1]) if node.op_type == "Unsqueeze" and len(node.input) == 2 else None
        axes = numpy_helper.to_array(axes).ravel().tolist() if axes is not None else []
        if node.input[0] != "attention_mask" or len(axes) < 2 or min(axes) < 0:
            nodes.append(node)
            continue
        current = node.input[0]
        for k, axis in enumerate(sorted(axes)):
            name = f"{node.name}_split{k}"
            graph.initializer.append(numpy_helper.from_array(np.array([axis], np.int64), f"{name}_axes"))
            output = node.output[0] if k == len(axes) - 1 else f"{name}_out"
            nodes.append(onnx.helper.make_node("Unsqueeze", [current, f"{name}_axes"], [output], name=name))
            current = output
    del graph.node[:]
    graph.node.extend(nodes)


def _optimize(
    raw: Path, target: Path, heads: tuple[int, int], num_threads: int, graph, torch, probes, names
) -> tuple[bool, dict, float]:
    """ONNX Runtime's transformer fusions on the exported graph, written to `target`:
    (done, fused operator counts, max |logits - torch|). `heads`: (attention heads, hidden size)."""
    import onnx
    from onnxruntime.transformers.optimizer import optimize_model

    from .session import open_session

    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            proto = onnx.load(str(raw))
            _split_mask_unsqueeze(proto.graph)
            # opt_level 0: only the Python fusions are written into the file (the session
            # applies ONNX Runtime's own graph optimisations at load)
            optimized = optimize_model(proto, model_type="bert", num_heads=heads[0], hidden_size=heads[1], opt_level=0)
            optimized.save_model_to_file(str(target))
            fusions = {k: int(v) for k, v in optimized.get_fused_operator_statistics().items() if v}
    except Exception:  # an optimiser failure costs speed, not correctness: the plain export is used
        return False, {}, float("inf")
    return True, fusions, _max_diff(open_session(target, num_threads), graph, torch, probes, names)


def _keep_faster(fused: Path, plain: Path, usable: bool, num_threads: int, names: list[str], model) -> dict:
    """Leave the faster graph at `fused`'s path (the plain one where the fused is not `usable`);
    returns the export's `optimized` and, where both were timed, `graph_choice`."""
    choice: dict[str, Any] = {}
    if usable:
        seconds = _seconds({"fused": fused, "plain": plain}, num_threads, names, model)
        usable = seconds["plain"] >= CHOICE_MARGIN * seconds["fused"]
        choice = {"kept": "fused" if usable else "plain", "seconds": seconds, "threads": num_threads}
        choice["shapes"] = [list(s) for s in CHOICE_SHAPES]
    if usable:
        plain.unlink()
    else:
        fused.unlink(missing_ok=True)
        plain.rename(fused)
    return {"optimized": usable, **({"graph_choice": choice} if choice else {})}


def _seconds(graphs: dict[str, Path], num_threads: int, names: list[str], model, rounds: int = 3) -> dict[str, float]:
    """Seconds each graph takes on CHOICE_SHAPES (random token ids, no padding), best of `rounds`
    rounds taken in turn, so that a busy spell of the machine hits every graph alike."""
    from .session import open_session

    rng = np.random.default_rng(0)
    vocab = int(model.encoder.config.vocab_size)
    feeds = []
    for rows, tokens in CHOICE_SHAPES:
        ids = rng.integers(min(1000, vocab // 2), vocab, size=(rows, min(tokens, int(model.max_positions))))
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        feeds.append({name: feed[name] for name in names})
    sessions = {name: open_session(path, num_threads) for name, path in graphs.items()}
    best = dict.fromkeys(sessions, float("inf"))
    for round_ in range(rounds + 1):
        for name, session in sessions.items():
            started = time.perf_counter()
            for feed in feeds:
                session.run(["logits"], feed)
            if round_:  # round 0 warms each session up
                best[name] = min(best[name], time.perf_counter() - started)
    return {name: round(value, 6) for name, value in best.items()}


@contextlib.contextmanager
def quiet_logger(name: str):
    """Only errors from the logger `name` ("" is the root logger) while inside."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _versions() -> dict[str, str]:
    import importlib.metadata

    out = {}
    for dist in ("torch", "transformers", "onnx", "onnxscript", "onnxruntime"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    return out
