"""``python -m vsrflow.serving.mms_main``: start Multi Model Server the way a SageMaker container does.

Run by :class:`vsrflow.serving.server.Endpoint` in its own session, with a per-instance ``TMPDIR``
(MMS's pid file), ``SAGEMAKER_BASE_DIR`` (the model dir holding ``endpoint.json``),
``SAGEMAKER_BIND_TO_PORT`` and ``LOG_LOCATION``. It calls the toolkit's ``start_model_server``
with three per-instance adjustments the toolkit has no setting for (FIELD-NOTES.md section 6):

* the server config goes to ``--config`` instead of the host-wide ``/etc/sagemaker-mms.properties``;
* the addresses bind ``--host`` (127.0.0.1 by default) instead of 0.0.0.0, and the config gets
  ``number_of_gpu`` and ``max_response_size`` (frame batches are large);
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
    original = model_server._generate_mms_config_properties

    def generate(env: Any, handler_service: Any = None) -> str:
        text: str = original(env, handler_service)
        text = text.replace("http://0.0.0.0:", f"http://{args.host}:")
        lines = [ln for ln in text.splitlines() if not ln.startswith("max_request_size=")]
        lines += [
            f"number_of_gpu={args.gpus}",
            f"max_request_size={args.max_bytes}",
            f"max_response_size={args.max_bytes}",
        ]
        return "\n".join(lines) + "\n"

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
