"""Regenerate grpc_predict_v2_pb2.py and grpc_predict_v2_pb2_grpc.py from grpc_predict_v2.proto.

    pip install grpcio-tools==1.78.0   # in a scratch venv if need be: it wants protobuf<7
    python unified_nlp/serving/proto/regenerate.py

grpcio-tools 1.78.0 writes protobuf 6.31.1 gencode, which runs on every protobuf from 6.31.1
(TensorFlow 2.21's floor) through 7.x, and gRPC code that needs grpcio >= 1.78.0; a newer
grpcio-tools writes 7.x gencode, which refuses protobuf 6 (what tritonclient[grpc] pins).

One edit after protoc: the messages go into a descriptor pool of their own, not protobuf's
default pool, where tritonclient.grpc (Triton's grpc_service.proto) and kserve define the same
`inference.*` messages: two definitions of a symbol in one pool fail at import ("duplicate
symbol 'inference.ServerLiveRequest'"), so without it the server could not share a process
with either client. On the wire only field numbers and the service's name count.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]  # the repository: the generated modules import unified_nlp.serving.proto
PROTO = HERE / "grpc_predict_v2.proto"
DEFAULT_POOL = "DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile("
OWN_POOL = "DESCRIPTOR = _descriptor_pool.DescriptorPool().AddSerializedFile(  # own pool: see regenerate.py\n    "


def main() -> None:
    from grpc_tools import protoc  # grpcio-tools

    with tempfile.TemporaryDirectory() as out:
        args = ["protoc", f"-I{ROOT}", f"--python_out={out}", f"--grpc_python_out={out}", str(PROTO)]
        if protoc.main(args) != 0:
            sys.exit("protoc failed")
        generated = Path(out) / PROTO.relative_to(ROOT).parent
        messages = generated / "grpc_predict_v2_pb2.py"
        text = messages.read_text(encoding="utf-8")
        if text.count(DEFAULT_POOL) != 1:
            sys.exit(f"protoc's output changed: {DEFAULT_POOL!r} not found once in {messages.name}")
        messages.write_text("# ruff: noqa\n" + text.replace(DEFAULT_POOL, OWN_POOL), encoding="utf-8")
        service = generated / "grpc_predict_v2_pb2_grpc.py"
        service.write_text("# ruff: noqa\n" + service.read_text(encoding="utf-8"), encoding="utf-8")
        for path in (messages, service):
            shutil.copyfile(path, HERE / path.name)
    ruff = shutil.which("ruff")
    if ruff:  # `make lint` checks the format of every file under unified_nlp
        subprocess.run([ruff, "format", "--quiet", str(HERE)], check=True)
    print(f"wrote {HERE / messages.name} and {HERE / service.name}")


if __name__ == "__main__":
    main()
