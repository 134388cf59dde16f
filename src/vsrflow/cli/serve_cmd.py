"""``vsrflow serve --model ID [--port P] [--gpu N]``: run one model endpoint in the foreground.

Starts Multi Model Server with the SageMaker inference toolkit (:mod:`vsrflow.serving.server`),
waits for ``/ping`` and one real invocation through the model, then prints one ``ready`` line
and serves until SIGTERM/SIGINT, when it stops the server's whole process group. One endpoint
per GPU: ``--port`` defaults to ``VSRFLOW_ENDPOINT_BASE_PORT`` (8080) + the GPU index, which is
the port ``vsrflow job upscale-chunk`` calls from an array task on that GPU.

It supervises the server (:class:`vsrflow.serving.server.Supervisor`): a server that exits, is
killed or stops answering ``/ping`` is started again on the same port after a backoff (1 s,
doubling, at most 30 s) and prints a new ``ready`` line once warm; more than ``--max-restarts``
restarts within ``--restart-window`` seconds end ``vsrflow serve`` with exit 1 and the reason.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from vsrflow.config import DEFAULT_ENDPOINT_BASE_PORT, Settings
from vsrflow.errors import InputError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a model endpoint (SageMaker inference toolkit + Multi Model Server)",
        description=(
            "Start Multi Model Server with the SageMaker inference toolkit, wait for /ping and one real "
            "invocation through the model, print one 'ready' line, and serve until SIGTERM/SIGINT (which "
            "stops the whole server process group). One endpoint per GPU: --port defaults to "
            "VSRFLOW_ENDPOINT_BASE_PORT (8080) + the GPU index, the port `vsrflow job upscale-chunk` calls "
            "from an array task on that GPU."
        ),
    )
    p.add_argument("--model", required=True, help="registry model id, loaded once (`vsrflow models list`)")
    p.add_argument("--port", type=int, default=None, help="port (default: base port + GPU index)")
    p.add_argument("--gpu", type=int, default=None, help="GPU index this endpoint owns (default: CPU)")
    p.add_argument("--scale", type=float, default=None, help="scale to warm up (default: the model's)")
    p.add_argument(
        "--host", default=None, help="address to bind (default VSRFLOW_ENDPOINT_HOST or 127.0.0.1)"
    )
    p.add_argument("--state-dir", type=Path, default=None, help="per-instance directory (default: temp)")
    p.add_argument("--ready-timeout", type=float, default=300.0, help="seconds to wait for the warm-up")
    p.add_argument(
        "--ready-file", type=Path, default=None, help="file created once warm, removed on stop (healthchecks)"
    )
    p.add_argument(
        "--max-restarts",
        type=int,
        default=5,
        help="restarts of a dead server within --restart-window before giving up (default 5; 0: never)",
    )
    p.add_argument(
        "--restart-window", type=float, default=300.0, help="seconds a restart counts (default 300)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from vsrflow.models.registry import get_spec
    from vsrflow.models.store import WeightStore
    from vsrflow.serving.server import Endpoint, RestartPolicy, Supervisor, WarmUp
    from vsrflow.serving.spec import EndpointSpec

    model = get_spec(args.model)  # InputError for an unknown id
    if not WeightStore(settings.weights_dir).has(model):
        raise InputError(
            f"no weights for {model.id} in {settings.weights_dir}",
            hint=f"run `vsrflow models fetch {model.id}` (or import-ncnn), or set VSRFLOW_CACHE_DIR",
        )
    if args.gpu is not None and args.gpu < 0:
        raise InputError(f"--gpu {args.gpu} must be >= 0")
    base = settings.endpoint.base_port or DEFAULT_ENDPOINT_BASE_PORT
    port = args.port if args.port is not None else base + (args.gpu or 0)
    spec = EndpointSpec(
        model=model.id,
        scale=float(args.scale if args.scale is not None else model.scale),
        device="cpu" if args.gpu is None else "cuda:0",
        cache_dir=settings.cache_dir.resolve(),
        port=port,
        gpu=args.gpu,
    )
    host = args.host or settings.endpoint.host
    endpoint = Endpoint(
        spec, host=host, state_dir=args.state_dir, response_timeout=settings.endpoint.read_timeout
    )

    policy = RestartPolicy(max_restarts=args.max_restarts, window_s=args.restart_window)
    where = f"GPU {args.gpu}" if args.gpu is not None else "CPU"

    def on_ready(warm: WarmUp, restarts: int) -> None:
        if args.ready_file is not None:  # before the ready line: whoever reads the line may look
            args.ready_file.write_text(f"{endpoint.url}\n")
        again = f", restart {restarts}" if restarts else ""
        print(
            f"ready: {endpoint.url} model {spec.model} x{spec.scale:g} on {where} (ping "
            f"{warm.ping_seconds:.1f} s, first invocation {warm.first_invocation_seconds:.1f} s{again}; "
            f"log {endpoint.log_path})",
            flush=True,
        )

    def on_down(reason: str) -> None:
        if args.ready_file is not None:
            args.ready_file.unlink(missing_ok=True)
        print(
            f"vsrflow: endpoint {endpoint.url} {reason}; see {endpoint.log_path}", file=sys.stderr, flush=True
        )

    supervisor = Supervisor(
        endpoint, policy, ready_timeout=args.ready_timeout, on_ready=on_ready, on_down=on_down
    )
    stopping: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)
        if not supervisor.serving:  # starting or restarting: abandon it (the finally stops the tree)
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    clean = False
    try:
        supervisor.run(lambda: bool(stopping))
        clean = True
        return 0
    finally:
        if args.ready_file is not None:
            args.ready_file.unlink(missing_ok=True)
        endpoint.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if clean and args.state_dir is None:  # our temporary state dir; kept (with its logs) on failure
            shutil.rmtree(endpoint.state_dir, ignore_errors=True)
