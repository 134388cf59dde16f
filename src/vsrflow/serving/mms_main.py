"""``python -m vsrflow.serving.mms_main``: start Multi Model Server the way a SageMaker container does.

Run by :class:`vsrflow.serving.server.Endpoint` in its own session, with a per-instance ``TMPDIR``
(MMS's pid file), ``SAGEMAKER_BASE_DIR`` (the model dir holding ``endpoint.json``),
``SAGEMAKER_BIND_TO_PORT`` and ``LOG_LOCATION``. It calls the toolkit's ``start_model_server``
with three per-instance adjustments the toolkit has no setting for (the toolkit reads
its settings from fixed host-wide places, which two servers on one host would share):

* the server config goes to ``--config`` instead of the host-wide ``/etc/sagemaker-mms.properties``;
* the inference address binds ``--host`` (127.0.0.1 by default) instead of 0.0.0.0, and the
  config gets ``number_of_gpu`` and ``max_response_size`` (frame batches are large);
* the management API is NOT on the inference port. The toolkit gives both APIs the same address
  (``SAGEMAKER_BIND_TO_PORT``), so ``GET /models`` answered there and ``POST /models?url=...``
  loaded and ran any model archive, i.e. code execution for whoever reaches the endpoint's port.
  Here it binds :data:`MANAGEMENT_ADDRESS`, 127.0.0.1 port 0: a separate port the kernel picks
  per instance, never the service port and never another address, whatever ``--host`` is.
  MMS 1.x cannot switch the API off; nothing in vsrflow calls it (the toolkit registers the
  model with ``--models`` on the command line), so nobody needs to know that port. The
  ``MMS_INFERENCE_ADDRESS``/``MMS_MANAGEMENT_ADDRESS`` overrides MMS would read from the
  environment (``enable_envvars_config=true``) are dropped so they cannot undo this;
* the toolkit finds "its" Java server by scanning every process and refuses when there are two:
  here it picks the one started with this instance's config file.

Blocks until the server exits; stop it by signalling the whole process group. If the process
that started it dies without stopping it (SIGKILL, OOM killer), a watchdog kills the group, so no
orphaned endpoint keeps holding the port and a GPU.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

HANDLER_SERVICE = "vsrflow.serving.handler_service"
#: Where MMS's management API (register/scale/unregister models) binds: loopback only, on a port
#: the kernel picks (so never the inference port nor another endpoint's).
MANAGEMENT_ADDRESS = "http://127.0.0.1:0"
#: Environment variables MMS reads over its config file (``enable_envvars_config=true``) that
#: could move an API back onto a reachable address; removed before MMS starts.
ADDRESS_OVERRIDES = ("MMS_INFERENCE_ADDRESS", "MMS_MANAGEMENT_ADDRESS")


def server_config(text: str, *, host: str, gpus: int, max_bytes: int) -> str:
    """The toolkit's generated MMS config ``text``, adjusted for one vsrflow endpoint.

    The inference address binds ``host``; ``management_address`` is replaced by
    :data:`MANAGEMENT_ADDRESS` (exactly one such line in the result); ``number_of_gpu``,
    ``max_request_size`` and ``max_response_size`` are set (each once).
    """
    drop = ("max_request_size=", "max_response_size=", "number_of_gpu=", "management_address=")
    lines = [ln for ln in text.splitlines() if not ln.startswith(drop)]
    lines = [
        ln.replace("http://0.0.0.0:", f"http://{host}:") if ln.startswith("inference_address=") else ln
        for ln in lines
    ]
    lines += [
        f"management_address={MANAGEMENT_ADDRESS}",
        f"number_of_gpu={gpus}",
        f"max_request_size={max_bytes}",
        f"max_response_size={max_bytes}",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vsrflow.serving.mms_main")
    parser.add_argument("--config", required=True, help="per-instance MMS config file to write")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--gpus", type=int, default=0, help="number_of_gpu for MMS (0 on CPU)")
    parser.add_argument("--max-bytes", type=int, default=1 << 30, help="max request/response size")
    args = parser.parse_args(argv)
    _watch_parent(os.getppid())

    import psutil
    from sagemaker_inference import model_server

    config_path = str(args.config)
    for name in ADDRESS_OVERRIDES:
        os.environ.pop(name, None)
    original = model_server._generate_mms_config_properties

    def generate(env: Any, handler_service: Any = None) -> str:
        text: str = original(env, handler_service)
        return server_config(text, host=args.host, gpus=args.gpus, max_bytes=args.max_bytes)

    def retrieve() -> Any:
        for proc in psutil.process_iter():
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                cmdline = proc.cmdline()
            except psutil.Error:
                continue
            if model_server.MMS_NAMESPACE in cmdline and config_path in cmdline:
                return proc
        raise RuntimeError(f"the model server for {config_path} is not running (yet)")

    model_server.MMS_CONFIG_FILE = config_path
    model_server._generate_mms_config_properties = generate
    model_server._retrieve_mms_server_process = retrieve
    model_server.start_model_server(handler_service=HANDLER_SERVICE)
    return 0


def _watch_parent(parent: int, interval: float = 1.0) -> None:
    """Kill this process group once ``parent`` is gone (we were re-parented)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        print(f"vsrflow.serving.mms_main: parent {parent} exited; stopping the server group", flush=True)
        os.killpg(os.getpgid(0), signal.SIGKILL)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
