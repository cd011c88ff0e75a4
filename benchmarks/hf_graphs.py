"""Whole-graph fp32 paths of torch for the default model (benchmarks/hf_precision.py --graphs): the
encoder + mean pooling + head traced and frozen (`torch.jit.trace`, `freeze`,
`optimize_for_inference`: linears to oneDNN) and compiled (`torch.compile`, inductor, freezing,
dynamic shapes), against eager and the backend's own path, on the same pre-tokenized batches
(batch 32, sorted by length), best of `repeats` passes taken in turn; set-up time of each."""

from __future__ import annotations

import time


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

    def run(f):
        out = np.zeros((len(texts), 2), np.float32)
        with torch.no_grad():
            for rows, inputs in batches:
                out[rows] = f(*inputs).numpy()
        return out

    reference = run(eager)
    rows = {name: {"max_abs_logit_diff": float(abs(run(f) - reference).max())} for name, f in paths.items()}
    best = dict.fromkeys(paths, 0.0)
    for _ in range(repeats):
        for name, f in paths.items():
            started = time.perf_counter()
            run(f)
            best[name] = max(best[name], len(texts) / (time.perf_counter() - started))
    for name in paths:
        rows[name]["texts_per_s"] = round(best[name], 1)
    return {"rows": rows, "setup": setup}
