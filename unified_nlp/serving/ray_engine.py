"""`unified-nlp serve --engine ray`: the same models and HTTP API, scaled out on Ray Serve.

One Ray Serve application (`APP_NAME`) of one deployment (`DEPLOYMENT`): each replica is a
Ray actor that runs our own ASGI app (`create_app(models=entries, ...)`, so the Open Inference
Protocol v2 REST routes, TEI's routes and the page) behind Ray's HTTP proxy, with our own
batcher inside the replica. Ray's proxy spreads the requests over the replicas; Ray restarts a
replica that dies (a paddlenlp replica starts its own worker process, which ends with it).

- Ready before traffic: a replica's first health check, which Ray Serve runs before it routes
  anything to the replica, waits until every model is loaded and warmed; later checks fail
  once a model cannot recover in that replica (the local server's liveness), and Ray replaces it.
- Threads: each replica reserves its share of the cluster's CPUs (cores / replicas; / the
  maximum when autoscaling) and computes with that many threads (at least one), unless the
  models' options name `num_threads`, so replicas do not oversubscribe the cores.
- Batching: Ray lets up to `max_queue` requests into a replica at once (our batcher needs them
  to form batches and answers 429 beyond) and queues at most `max_queue` more at the proxy
  (503 beyond); autoscaling aims at `max_batch_size` requests in flight per replica.
- Cluster: no `address` starts a local, single-node Ray instance whose every port is on
  127.0.0.1 (stopped at the end); an address ("HEAD:6379", "auto") joins that cluster, and
  model folders must then exist at the same paths on every node. Ray's HTTP proxy binds
  `host`:`port` on each node that has a replica.
- SIGTERM or Ctrl-C: the application is deleted, each replica answering what it has accepted
  within `drain_timeout` seconds; Serve itself is shut down when no other application is left.

Each replica has its own /metrics and its own repository: model control (load/unload by HTTP)
and the gRPC port are refused here, as they would reach one replica only.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

from ..errors import BackendNotInstalledError, InvalidInputError, UnifiedNLPError
from ..progress import counted
from ..threads import available_cores
from .repository import ModelEntry
from .served import Limits

APP_NAME = "unified-nlp"  # the Ray Serve application
DEPLOYMENT = "UnifiedNLP"  # its one deployment (replicas are actors "ServeReplica:unified-nlp:UnifiedNLP")
LOOPBACK = ("127.0.0.1", "::1", "::ffff:127.0.0.1")
INSTALL = "pip install 'unified-nlp[serve-ray]' (ray[serve]==2.60.0)"
log = logging.getLogger("unified_nlp.serving")


def _ray_serve():
    """(ray, ray.serve), or a clear error naming the install."""
    try:
        import ray
        from ray import serve
    except ImportError:
        raise BackendNotInstalledError(f"--engine ray needs Ray Serve: {INSTALL}") from None
    return ray, serve


def serve_on_ray(
    entries: list[ModelEntry],
    *,
    address: str | None,
    replicas: int | None,
    autoscale: tuple[int, int] | None,
    host: str,
    port: int,
    app_options: dict,
    drain_timeout: float,
) -> None:
    """Deploy `entries` on Ray Serve and serve them at http://HOST:PORT until SIGTERM or Ctrl-C
    (blocking), then delete the deployment (draining within `drain_timeout` seconds) and return.
    `replicas` (default 1) or `autoscale` = (MIN, MAX) replicas; `app_options` go to
    `create_app` in each replica (limits, api_key, access_log). No `address`: a local Ray
    instance on 127.0.0.1, stopped at the end.

    Examples:
        >>> serve_on_ray([ModelEntry("default", "default", "onnxruntime")], address=None, replicas=2,
        ...              autoscale=None, host="127.0.0.1", port=8000, app_options={}, drain_timeout=30)  # doctest: +SKIP
        >>> serve_on_ray(entries, address="10.0.0.1:6379", replicas=None, autoscale=(1, 8),
        ...              host="0.0.0.0", port=8000, app_options={}, drain_timeout=30)  # doctest: +SKIP
    """
    if threading.current_thread() is not threading.main_thread():
        raise UnifiedNLPError("serve_on_ray waits for SIGTERM/Ctrl-C: call it from the main thread, or use deploy()")
    scaling = replica_counts(replicas, autoscale)
    ray, _ = _ray_serve()
    ours = connect(address)
    stop = threading.Event()
    # after ray.init, which sets its own SIGTERM handler; a signal during the deployment ends it once deployed
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, _hangup)  # its default would end the process uncleanly
    try:
        deploy(entries, scaling=scaling, host=host, port=port, app_options=app_options, drain_timeout=drain_timeout)
        _announce(ray, entries, scaling, host, port, address)
        while not stop.wait(0.5):
            pass
        if ours and address is None and not _local_instance_survives(ray):
            log.warning("stopping: the local Ray instance got the signal too and has stopped, its replicas with it")
        else:
            log.info("stopping: the replicas answer what they have accepted (within %s s)", drain_timeout)
            undeploy()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if ours:
            ray.shutdown()


def _local_instance_survives(ray, seconds: float = 1.0) -> bool:
    """Whether the local Ray instance this process started is still whole `seconds` after a stop
    signal. A signal sent to the whole process group (systemd's default, `kill -- -PGID`,
    `timeout`) reaches Ray's own processes too: SIGTERM ends its GCS and raylet at once (Ray
    blocks only SIGINT in them), and deleting the application would then wait for Ray's
    60 s reconnection timeout. Ray has no public call for this: its node object lists them."""
    node = getattr(ray._private.worker, "_global_node", None)
    if node is None:
        return True
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not node.remaining_processes_alive():
            return False
        time.sleep(0.1)
    return True


def _hangup(*_) -> None:
    log.warning(
        "SIGHUP: --engine ray does not re-read the models (each replica would, apart): "
        "stop the server (SIGTERM) and serve again to change them"
    )


def replica_counts(replicas: int | None, autoscale: tuple[int, int] | None) -> tuple[int, int]:
    """(MIN, MAX) replicas: equal for a fixed count (default 1); checked."""
    if replicas is not None and autoscale is not None:
        raise InvalidInputError("give --replicas N or --autoscale MIN:MAX, not both")
    if autoscale is None:
        count = 1 if replicas is None else replicas
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidInputError(f"--replicas must be a positive integer, got {replicas!r}")
        return count, count
    low, high = autoscale
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (low, high)) or not 1 <= low <= high:
        # at least one: a replica holds the models loaded and warmed before traffic reaches it
        raise InvalidInputError(f"--autoscale MIN:MAX needs 1 <= MIN <= MAX, got {low!r}:{high!r}")
    return low, high


def connect(address: str | None, num_cpus: int | None = None, temp_dir: str | None = None) -> bool:
    """Join the cluster at `address`, or start a local one (loopback only, `num_cpus` CPUs:
    default the cores this process may use); a Ray already initialised in this process is used
    as it is. Returns whether this call connected (the caller then calls `ray.shutdown()`,
    which stops a local cluster and only disconnects from another)."""
    ray, _ = _ray_serve()
    if ray.is_initialized():
        return False
    # Ray reports usage statistics over the network unless told not to (its children inherit this)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # a new local cluster turns token authentication on and says so on every start
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    if address is not None:
        ray.init(address=address, log_to_driver=True, logging_level=logging.WARNING)
        return True
    _loopback_only(ray)
    ray.init(
        address="local",
        num_cpus=num_cpus or available_cores(),
        include_dashboard=False,
        log_to_driver=True,
        logging_level=logging.WARNING,
        _temp_dir=temp_dir,
    )
    node = ray.get_runtime_context().gcs_address.rpartition(":")[0].strip("[]")
    if node not in LOOPBACK:
        ray.shutdown()
        raise UnifiedNLPError(f"the local Ray instance took address {node}, not 127.0.0.1: it was stopped")
    return True


def _loopback_only(ray) -> None:
    """Make a new local Ray instance a single-node one on 127.0.0.1: its GCS, raylet and workers
    then bind only loopback. Ray names its node by the machine's outward address (and binds its
    gRPC servers there) unless this setting, which Ray reads when it is imported (hence the
    module constant too), says single-node."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def replica_size(max_replicas: int, models: list[ModelEntry]) -> tuple[float, int | None]:
    """(CPUs each replica reserves, threads it computes with) on the connected cluster: its
    share of the CPUs (at least one thread, at most a node's CPUs); the threads are None (the
    models' own) when a model's options name `num_threads`."""
    ray, _ = _ray_serve()
    total = float(ray.cluster_resources().get("CPU", 1))
    largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=total)
    share = math.floor(total / max_replicas * 10_000) / 10_000  # Ray counts resources to 1e-4
    given = any(e.options.get("num_threads") is not None for e in models)
    return max(share, 0.0001), None if given else max(1, min(int(share), int(largest)))


def _portable(entry: ModelEntry) -> ModelEntry:
    """The entry as a replica on any node can load it: a relative folder made absolute, a loaded
    classifier by its folder (replicas load their own)."""
    from ..classifier import TextClassifier

    model = entry.model
    if isinstance(model, TextClassifier):
        if model.source is None:
            raise InvalidInputError(
                f"model {entry.name!r}: --engine ray loads the model in each replica: give its folder or name "
                "(this classifier was never saved; clf.save(FOLDER) first)"
            )
        model = model.source
    if isinstance(model, str | Path) and str(model) != "default" and Path(model).exists():
        model = str(Path(model).absolute())
    return dataclasses.replace(entry, model=model)


def deploy(
    entries: list[ModelEntry],
    *,
    scaling: tuple[int, int],
    host: str,
    port: int,
    app_options: dict,
    drain_timeout: float,
):
    """Deploy the models on the connected cluster (`connect` first) and return once every
    replica is loaded and warmed (the application's handle); a model that cannot load fails
    here with its error."""
    _, serve = _ray_serve()
    refused = [k for k, v in app_options.items() if k in ("model_control", "grpc_port") and v not in (None, False)]
    if refused:
        raise InvalidInputError(
            f"--engine ray does not take {' or '.join(refused)}: it would reach one replica only "
            "(redeploy to change the models; gRPC is served by the local engine)"
        )
    if not entries:
        raise InvalidInputError("no model to serve")
    if APP_NAME in applications():
        raise UnifiedNLPError(
            f"this Ray cluster already serves an application {APP_NAME!r} (another `serve --engine ray`): "
            "stop that one first, or serve from another Ray cluster"
        )
    models = [_portable(e) for e in entries]
    cpus, threads = replica_size(scaling[1], models)
    if threads is not None:
        models = [dataclasses.replace(e, options={**e.options, "num_threads": threads}) for e in models]
    options = {**app_options, "drain_timeout": drain_timeout}
    quiet = {"log_level": "WARNING", "enable_access_log": False}  # the app's own access log has the texts and times
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    serve.start(proxy_location="EveryNode", http_options={"host": host, "port": port}, logging_config=quiet)
    deployment = serve.deployment(serve.ingress()(_Replica), name=DEPLOYMENT, **_deployment_options(
        scaling, cpus, threads, options, drain_timeout))  # fmt: skip
    try:
        return serve.run(deployment.bind(models, options), name=APP_NAME, route_prefix="/")
    except RuntimeError as e:  # Ray's deployment failure: the replica's own error is in the status
        why = _deployment_error(serve) or _last_error(str(e))
        serve.delete(APP_NAME)
        raise UnifiedNLPError(f"the models could not be deployed on Ray Serve: {why}") from None


def _deployment_options(scaling, cpus: float, threads: int | None, options: dict, drain_timeout: float) -> dict:
    """Ray Serve's deployment options: replicas, their CPUs, how many requests each takes."""
    queue = int(options.get("max_queue", Limits.max_queue))
    batch = int(options.get("max_batch_size", Limits.max_batch_size))
    low, high = scaling
    chosen: dict = {
        "ray_actor_options": {"num_cpus": cpus},
        "max_ongoing_requests": queue,  # the batcher forms batches of concurrent requests and says 429 past its queue
        "max_queued_requests": queue,  # at the proxy, waiting for a replica; beyond: 503
        "graceful_shutdown_timeout_s": drain_timeout,
        "graceful_shutdown_wait_loop_s": 0.5,
        "health_check_period_s": 2,  # cheap once loaded; finds a dead replica sooner
        # a model that cannot load fails alike in every replica: give up after one try per replica
        # (Ray counts this only until a replica first starts; a replica that dies later always comes back)
        "max_constructor_retry_count": high,
        "logging_config": {"log_level": "WARNING", "enable_access_log": False},
    }
    if threads is not None:  # the frameworks read it too (onnxruntime's, paddle's math libraries)
        chosen["ray_actor_options"]["runtime_env"] = {"env_vars": {"OMP_NUM_THREADS": str(threads)}}
    if low == high:
        chosen["num_replicas"] = low
    else:
        chosen["autoscaling_config"] = {
            "min_replicas": low,
            "initial_replicas": low,
            "max_replicas": high,
            "target_ongoing_requests": batch,  # a full batch in flight per replica
        }
    return chosen


def _deployment_error(serve) -> str | None:
    """Why the deployment failed, as its replicas said (the last error of the status message)."""
    application = serve.status().applications.get(APP_NAME)
    if application is None:
        return None
    deployment = application.deployments.get(DEPLOYMENT)
    return _last_error((deployment.message if deployment is not None else "") or application.message) or None


def _last_error(message: str) -> str:
    """The last line of a traceback that names an error (Ray's messages end with the replica's)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    named = [line for line in lines if "Error:" in line or "Exception:" in line]
    return re.sub(r"^[\w.]+(Error|Exception): ", "", (named or lines or [""])[-1], count=1)


def applications() -> dict:
    """The Serve applications of the connected cluster by name (none where Serve is not running)."""
    ray, serve = _ray_serve()
    try:
        return serve.status().applications
    except (serve.exceptions.RayServeException, ray.exceptions.RayActorError):  # no Serve controller (left)
        return {}


def undeploy() -> None:
    """Delete the application (its replicas drain first); shut Serve down when nothing else runs on it."""
    _, serve = _ray_serve()
    serve.delete(APP_NAME)
    if not applications():
        serve.shutdown()


def _announce(ray, entries: list[ModelEntry], scaling, host: str, port: int, address: str | None) -> None:
    if not log.handlers and not logging.getLogger().handlers:  # the CLI's own configuration wins
        log.addHandler(logging.StreamHandler(sys.stderr))
        log.setLevel(logging.INFO)
    shown = f"[{host}]" if ":" in host else host
    low, high = scaling
    count = counted(low, "replica") if low == high else f"{low} to {high} replicas (autoscaled)"
    models = ", ".join(f"model {e.name!r} (backend {e.backend})" for e in entries)
    where = ray.get_runtime_context().gcs_address if address is None else address
    log.info(
        "serving %s at http://%s:%d through Ray Serve: %s, Ray cluster %s (pid %d)",
        models, shown, port, count, where, os.getpid(),
    )  # fmt: skip


class _Replica:
    """One Ray Serve replica: our ASGI app over the models (`serve.ingress()` wraps this class
    and takes the app from `__serve_build_asgi_app__`, then runs its lifespan, which starts
    loading the models)."""

    def __init__(self, entries: list[ModelEntry], app_options: dict) -> None:
        self.entries, self.app_options = entries, app_options
        self.served_app = None  # (`app` is the wrapper's own property)
        _replica_logging(bool(app_options.get("access_log")))
        _loopback_handle_server()

    def __serve_build_asgi_app__(self):
        from .app import create_app

        self.served_app = create_app(models=self.entries, **self.app_options)
        return self.served_app

    async def check_health(self) -> None:
        """Ray Serve's health check. The first one (before any traffic) waits until every model
        is loaded and warmed; then it fails once a model cannot recover here (a load failed, or
        its worker could not be restarted): Ray replaces the replica."""
        repository = self.served_app.state.repository
        for served in repository.served():
            await served.loaded()
        if not repository.live():
            raise UnifiedNLPError(repository.error() or "a model cannot recover in this replica")

    def describe(self) -> dict:
        """Where this replica runs and with how many threads (for operators and tests)."""
        from .. import threads

        return {
            "pid": os.getpid(),
            "node": os.uname().nodename,
            "threads": threads.requested(),
            "models": [s.name for s in self.served_app.state.repository.served()],
        }


def _replica_logging(access_log: bool) -> None:
    """The server's messages (and its access log, when on) on the replica's stderr, which Ray
    keeps in the replica's log file and shows on the serving command's console."""
    logger = logging.getLogger("unified_nlp.serving")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.INFO)
    logging.getLogger("unified_nlp.serving.access").setLevel(logging.INFO if access_log else logging.WARNING)


def _loopback_handle_server() -> None:
    """On a loopback-only node (a local instance), bind the replica's inter-deployment gRPC server
    on loopback too. Ray Serve 2.60 binds it on every interface ("[::]:0") whatever the node's
    address; it carries handle calls between deployments, not the HTTP traffic, and it starts
    after this constructor. Nothing is changed on a node with an outward address."""
    import ray
    from ray.serve._private import replica

    bind = getattr(replica, "add_port_to_grpc_server", None)
    if bind is None or ray.util.get_node_ip_address() not in LOOPBACK:
        return

    def on_loopback(server, address: str):
        return bind(server, "127.0.0.1:0" if address == "[::]:0" else address)

    replica.add_port_to_grpc_server = on_loopback
