"""NVIDIA PyTriton: Triton Inference Server (the tritonserver binary of the nvidia-pytriton
wheel) with its dynamic batcher (up to 32 rows, 5 ms queue delay) in front of a Python
function running the default model in torch: batched tokenization, one forward, softmax.
HTTP (Open Inference Protocol v2) on 127.0.0.1; gRPC and metrics bound to 127.0.0.1 too.

    python pytriton_server.py --folder MODEL_FOLDER --port 8001 --grpc-port 8002 --metrics-port 8003
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import sysconfig

import numpy as np
import torch
from default_model import MAX_BATCH_SIZE, load_model
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig
from transformers import AutoTokenizer

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--folder", required=True)
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--grpc-port", type=int, required=True)
parser.add_argument("--metrics-port", type=int, required=True)
parser.add_argument("--threads", type=int, default=2)
args = parser.parse_args()

model = load_model(args.folder, args.threads)
tokenizer = AutoTokenizer.from_pretrained(args.folder)


@batch
def infer(text: np.ndarray) -> dict[str, np.ndarray]:
    texts = [row[0].decode("utf-8") for row in text]
    enc = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        probs = torch.softmax(model(**enc).logits, dim=-1)
    return {"probs": probs.numpy().astype(np.float32)}


# Triton's Python-backend stub links libpython3.11.so.1.0 dynamically: without this it may find the system's
# (Debian's 3.11.2 here) beside this interpreter's standard library (3.11.7) and fail in multiprocessing
# ('_thread.RLock' object has no attribute '_recursion_count'). The stub inherits this process's environment.
if sysconfig.get_config_var("Py_ENABLE_SHARED"):
    libdir = sysconfig.get_config_var("LIBDIR")
    os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [libdir, os.environ.get("LD_LIBRARY_PATH")]))

config = TritonConfig(
    http_address="127.0.0.1",
    http_port=args.port,
    grpc_address="127.0.0.1",
    grpc_port=args.grpc_port,
    metrics_address="127.0.0.1",
    metrics_port=args.metrics_port,
    exit_on_error=True,
)
with Triton(config=config) as triton:
    triton.bind(
        model_name="default",
        infer_func=infer,
        inputs=[Tensor(name="text", dtype=bytes, shape=(1,))],
        outputs=[Tensor(name="probs", dtype=np.float32, shape=(-1,))],
        config=ModelConfig(max_batch_size=MAX_BATCH_SIZE, batcher=DynamicBatcher(max_queue_delay_microseconds=5000)),
        strict=True,
    )
    # SIGTERM (how the benchmark stops a server) leaves through `with`: Triton stopped, its workspace removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("pytriton: serving", file=sys.stderr, flush=True)
    triton.serve()
