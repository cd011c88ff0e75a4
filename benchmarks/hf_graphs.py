"""Whole-graph fp32 paths of torch for the default model (benchmarks/hf_precision.py --graphs): the
encoder + mean pooling + head traced and frozen (`torch.jit.trace`, `freeze`,
`optimize_for_inference`: linears to oneDNN) and compiled (`torch.compile`, inductor, freezing,
dynamic shapes), against eager and the backend's own path, on the same pre-tokenized batches
(batch 32, sorted by length), best of `repeats` passes taken in turn; set-up time of each.
Also bf16 at its most compiled: a bf16 copy through `torch.export` (dynamic batch and length)
and AOTInductor with freezing (`aoti_compile_and_package`), the compiled package loaded back,
its logits in fp32 ("bf16_aoti", against fp32 eager as every row)."""

from __future__ import annotations

import tempfile
import time


def aoti_bf16(model, example, folder: str):
    """The encoder + mean pooling + head in bf16, exported and compiled ahead of time by
    AOTInductor (freezing: weights folded into the compiled kernels); the loaded runner."""
    import copy

    import torch

    class Bf16(torch.nn.Module):
        def __init__(self, model) -> None:
            super().__init__()
            self.encoder, self.head = model.encoder, model.head

        def forward(self, ids, mask, types):
            # BERT's 4-D additive mask: handed the 0/1 mask, transformers' mask code specialises on the example
            additive = (1.0 - mask[:, None, None, :].to(torch.bfloat16)) * torch.finfo(torch.bfloat16).min
            states = self.encoder(input_ids=ids, attention_mask=additive, token_type_ids=types).last_hidden_state
            w = mask.unsqueeze(-1).to(states.dtype)
            return self.head((states * w).sum(1) / w.sum(1).clamp(min=1e-9)).float()

    net = Bf16(copy.deepcopy(model)).eval().to(torch.bfloat16)
    dims = {0: torch.export.Dim("batch", min=1, max=1024), 1: torch.export.Dim("seq", min=2, max=512)}
    with torch.no_grad():
        program = torch.export.export(net, example, dynamic_shapes=(dims, dims, dims))
        package = torch._inductor.aoti_compile_and_package(
            program, package_path=f"{folder}/bf16.pt2", inductor_configs={"freezing": True}
        )
    return torch._inductor.aoti_load_package(package)


def graphs(threads: int, repeats: int) -> dict:
    import numpy as np
    import torch

    import unified_nlp as un
    from unified_nlp.batching import batches_by_length
    from unified_nlp.benchdata import read_tsv, sst2_path

    texts, _ = read_tsv(sst2_path("dev"))
    clf = un.load_classifier("default", backend="huggingface", num_threads=threads)
    lengths = clf.tokenizer(texts).attention_mask.sum(axis=1)
    batches = []
    for rows in batches_by_length(lengths, 32):
        enc = clf.tokenizer([texts[i] for i in rows])
        names = ("input_ids", "attention_mask", "token_type_ids")
        batches.append((rows, tuple(torch.from_numpy(enc[k]) for k in names)))

    class Classifier(torch.nn.Module):
        def __init__(self, model) -> None:
            super().__init__()
            self.encoder, self.head = model.encoder, model.head

        def forward(self, ids, mask, types):
            states = self.encoder(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
            w = mask.unsqueeze(-1).to(states.dtype)
            return self.head((states * w).sum(1) / w.sum(1).clamp(min=1e-9))

    from unified_nlp_huggingface.cpu_paths import use_onednn

    use_onednn(clf.model.net, False)
    eager = Classifier(clf.model).eval()
    setup, paths = {}, {"eager": eager}
    with torch.no_grad():
        started = time.perf_counter()
        traced = torch.jit.trace(eager, batches[len(batches) // 2][1], check_trace=False)
        paths["jit_freeze_optimize"] = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
        setup["jit_freeze_optimize_s"] = round(time.perf_counter() - started, 2)
        import torch._inductor.config as inductor

        inductor.freezing = True
        compiled = torch.compile(Classifier(clf.model).eval(), dynamic=True)
        started = time.perf_counter()
        compiled(*batches[0][1])
        setup["inductor_first_call_s"] = round(time.perf_counter() - started, 2)
        paths["inductor_freezing"] = compiled
        started = time.perf_counter()
        paths["bf16_aoti"] = aoti_bf16(clf.model, batches[len(batches) // 2][1], tempfile.mkdtemp(prefix="aoti-"))
        setup["bf16_aoti_export_and_compile_s"] = round(time.perf_counter() - started, 2)

    def run(f):
        out = np.zeros((len(texts), 2), np.float32)
        with torch.no_grad():
            for rows, inputs in batches:
                out[rows] = f(*inputs).numpy()
        return out

    reference = run(eager)
    outputs = {name: run(f) for name, f in paths.items()}
    rows = {
        name: {
            "max_abs_logit_diff": float(abs(out - reference).max()),
            "labels_kept": round(float((out.argmax(1) == reference.argmax(1)).mean()), 6),
        }
        for name, out in outputs.items()
    }
    best = dict.fromkeys(paths, 0.0)
    for _ in range(repeats):
        for name, f in paths.items():
            started = time.perf_counter()
            run(f)
            best[name] = max(best[name], len(texts) / (time.perf_counter() - started))
    for name in paths:
        rows[name]["texts_per_s"] = round(best[name], 1)
        rows[name]["vs_eager"] = round(best[name] / best["eager"], 2)
    return {"rows": rows, "setup": setup}
