"""Open Inference Protocol v2 over gRPC: KServe's `inference.GRPCInferenceService`
(proto/grpc_predict_v2.proto), the service tritonclient.grpc and KServe's clients speak, on
the same models and batchers as the REST routes.

The model's tensors are the REST side's (v2.py): BYTES "text" [N] or [N, 1] and optionally
"text_pair" in; FP32 "probabilities" [N, C] and BYTES "label" [N] out, the requested outputs
only when the request names some; the request parameter ``truncate`` (bool) as over REST.
Inputs come as `raw_input_contents` (tritonclient: each element a 4-byte little-endian length
and its bytes) or as typed `contents.bytes_contents`; the outputs come back the same way the
inputs came (raw in, raw out), as KServe's server answers.

Errors are the call's status, with the REST side's message: INVALID_ARGUMENT for a request the
model cannot take (REST 400, 413 too many texts, 422), NOT_FOUND an unknown model or version,
UNAVAILABLE a full queue (REST 429) or a model not ready (503). A full queue is UNAVAILABLE,
not RESOURCE_EXHAUSTED: Triton answers its "Exceeds maximum queue size" with UNAVAILABLE,
gRPC's HTTP-to-gRPC table maps 429 to UNAVAILABLE, and it is the code that gRPC retry
policies and clients treat as "try again". A message over the payload limit is refused by
gRPC itself before it is read, with RESOURCE_EXHAUSTED ("Received message larger than max").
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import time

import grpc
import numpy as np

from .. import __version__
from ..errors import UnifiedNLPError
from .proto import grpc_predict_v2_pb2 as pb
from .proto import grpc_predict_v2_pb2_grpc as pb_grpc
from .repository import Repository
from .served import Served, ServingError
from .tensor_codec import TensorError, check_shape, decode_bytes, encode_bytes
from .v2 import OUTPUTS, metadata, texts_of, truncate_of

log = logging.getLogger("unified_nlp.serving")

SERVICE = "inference.GRPCInferenceService"
PROBES = ("ServerLive", "ServerReady")  # open without the API key, as /v2/health/* over REST
CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.UNAVAILABLE,  # Triton's queue-full code; see the module's docstring
    499: grpc.StatusCode.CANCELLED,
    503: grpc.StatusCode.UNAVAILABLE,
}


class PortInUseError(UnifiedNLPError, OSError):
    """The gRPC port could not be bound (another process, or the HTTP server, holds it)."""


async def start_grpc(repository: Repository, *, host: str, port: int, api_key: str | None = None) -> grpc.aio.Server:
    """The v2 gRPC service of `repository`'s models, started on the running asyncio loop (the
    loop of the HTTP server, whose batchers it shares) and bound to host:port. Messages over the
    repository's payload limit are refused. With `api_key`, every RPC but ServerLive and
    ServerReady (probes) needs the metadata ``authorization: Bearer API_KEY`` (tritonclient's
    ``headers={"authorization": ...}``), else UNAUTHENTICATED. Stop it with
    ``await server.stop(grace)``: it stops taking calls and answers those under way within
    `grace` seconds (before the models stop)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", repository.limits.payload_limit),
            # gRPC binds with SO_REUSEPORT by default, so a second server on a taken port would
            # share it silently instead of failing
            ("grpc.so_reuseport", 0),
        ]
    )
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(repository, api_key), server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as e:  # grpcio >= 1.60 raises where older versions returned 0
        raise PortInUseError(errno.EADDRINUSE, f"cannot serve gRPC on {address}: the port is taken ({e})") from None
    if bound == 0:
        raise PortInUseError(errno.EADDRINUSE, f"cannot serve gRPC on {address}: the port is taken")
    await server.start()
    log.info("serving the Open Inference Protocol v2 over gRPC at %s", address)
    return server


def _timed(rpc: str):
    """An RPC whose ServingError becomes its status code (the message kept), timed and counted
    in /metrics under ``/inference.GRPCInferenceService/RPC`` with the REST side's status."""
    route = f"/{SERVICE}/{rpc}"

    def wrap(method):
        async def call(self: InferenceServicer, request, context: grpc.aio.ServicerContext):
            started, status, failure = time.perf_counter(), 200, None
            try:
                if rpc not in PROBES:
                    self.authorize(context)
                return await method(self, request, context)
            except ServingError as e:
                status, failure = e.status, e
            except BaseException as e:  # a client gone (CancelledError) or a bug: counted, then raised
                status = 499 if isinstance(e, asyncio.CancelledError) else 500
                raise
            finally:
                self.count(route, request, status, time.perf_counter() - started)
            await context.abort(CODES.get(status, grpc.StatusCode.INTERNAL), failure.message)

        call.__name__ = call.__qualname__ = rpc
        return call

    return wrap


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """The six RPCs of the Open Inference Protocol v2 over `repository`'s models."""

    def __init__(self, repository: Repository, api_key: str | None = None) -> None:
        self.repository, self._key = repository, api_key

    def authorize(self, context: grpc.aio.ServicerContext) -> None:
        """401 (UNAUTHENTICATED) unless the call carries ``authorization: Bearer KEY``
        (compared in constant time; the scheme in any case, as over REST)."""
        if self._key is None:
            return
        given = dict(context.invocation_metadata() or ()).get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._key.encode()):
            raise ServingError(401, "missing or wrong API key: send the metadata 'authorization: Bearer KEY'")

    def count(self, route: str, request, status: int, seconds: float) -> None:
        name = getattr(request, "model_name", None) or getattr(request, "name", None)
        served = self.repository.find(name or None)
        (self.repository.metrics if served is None else served.metrics).request(route, status, seconds)

    @_timed("ServerLive")
    async def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=self.repository.live())

    @_timed("ServerReady")
    async def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.repository.ready())

    @_timed("ModelReady")
    async def ModelReady(self, request, context):
        served = self.repository.get(request.name, request.version or None)  # NOT_FOUND, as KServe
        served.start()
        return pb.ModelReadyResponse(ready=served.ready and not served.draining)

    @_timed("ServerMetadata")
    async def ServerMetadata(self, request, context):
        return pb.ServerMetadataResponse(name="unified-nlp", version=__version__, extensions=[])

    @_timed("ModelMetadata")
    async def ModelMetadata(self, request, context):
        meta = metadata(self.repository.get(request.name, request.version or None))
        tensors = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[tensors(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in meta["inputs"]],
            outputs=[tensors(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in meta["outputs"]],
        )

    @_timed("ModelInfer")
    async def ModelInfer(self, request: pb.ModelInferRequest, context):
        served = self.repository.get(request.model_name, request.model_version or None)
        served.check_ready()
        try:
            texts, pairs = texts_of(read_inputs(request))
        except TensorError as e:
            raise ServingError(400, str(e)) from None
        truncate = truncate_of({"parameters": parameters_of(request.parameters)})
        requested = requested_outputs(request)
        try:  # no await since `get`: the version looked up is the one that answers
            logits = await served.classify(texts, pairs, truncate=truncate)
        except ServingError as e:
            if e.status in (413, 422):  # input errors: 400 over REST v2 too
                raise ServingError(400, e.message) from None
            raise
        return response(served, request, served.scores(logits), requested)


def read_inputs(request: pb.ModelInferRequest) -> dict[str, list[bytes]]:
    """Every input of a request as its BYTES elements, from `raw_input_contents` (one entry
    per input, in order) or from each input's `contents.bytes_contents`."""
    if not request.inputs:
        raise TensorError("the request has no inputs")
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise TensorError(f"raw_input_contents holds {len(raw)} entries for {len(request.inputs)} inputs")
    out: dict[str, list[bytes]] = {}
    for i, tensor in enumerate(request.inputs):
        name = tensor.name
        if tensor.datatype != "BYTES":
            raise TensorError(f"input '{name}': datatype must be BYTES (texts), got {tensor.datatype!r}")
        if name in out:
            raise TensorError(f"input '{name}' is given twice")
        if raw and tensor.contents.ByteSize():
            raise TensorError(f"input '{name}' has contents and raw_input_contents: give one of them")
        items = decode_bytes(raw[i], name) if raw else list(tensor.contents.bytes_contents)
        check_shape(list(tensor.shape), len(items), name)
        out[name] = items
    return out


def parameters_of(parameters) -> dict:
    """A parameter map as plain values (None for a kind this proto does not know, such as
    Triton's uint64 or double parameters)."""
    return {key: getattr(value, value.WhichOneof("parameter_choice") or "", None) for key, value in parameters.items()}


def requested_outputs(request: pb.ModelInferRequest) -> list[str]:
    """The outputs the client names, in its order; every output if it names none."""
    names = []
    for output in request.outputs:
        if output.name not in OUTPUTS:
            raise ServingError(400, f"unknown output {output.name!r}; the model gives {list(OUTPUTS)}")
        if "classification" in output.parameters:
            raise ServingError(400, "the classification extension is not supported: ask for 'label'")
        names.append(output.name)
    return names or list(OUTPUTS)


def response(served: Served, request: pb.ModelInferRequest, probs: np.ndarray, names: list[str]):
    """The answer: raw_output_contents when the inputs came raw (tritonclient reads those),
    else typed contents."""
    reply = pb.ModelInferResponse(model_name=served.name, model_version=served.version, id=request.id)
    raw = bool(request.raw_input_contents)
    for name in names:
        if name == "probabilities":
            array = np.ascontiguousarray(probs, dtype="<f4")
            tensor = reply.outputs.add(name=name, datatype="FP32", shape=array.shape)
            data, field, values = array.tobytes(), "fp32_contents", array.ravel().tolist()
        else:
            labels = [label.encode("utf-8") for label in served.labels_of(probs)]
            tensor = reply.outputs.add(name=name, datatype="BYTES", shape=[len(labels)])
            data, field, values = encode_bytes(labels), "bytes_contents", labels
        if raw:
            reply.raw_output_contents.append(data)
        else:
            getattr(tensor.contents, field).extend(values)
    return reply
