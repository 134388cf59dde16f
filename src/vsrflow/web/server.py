"""Run the page with uvicorn: bind, say where it is, serve until interrupted."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from vsrflow.config import Settings
from vsrflow.files import atomic_write_text
from vsrflow.web.app import UiConfig, create_app
from vsrflow.web.security import Access
from vsrflow.web.uploads import DEFAULT_MAX_UPLOAD_BYTES

log = logging.getLogger(__name__)


def make_config(
    *,
    mode: str,
    settings: Settings,
    access: Access,
    state_dir: Path,
    jobs_root: Path,
    max_upload: int | None = None,
    chunk_seconds: float | None = None,
) -> UiConfig:
    """The :class:`UiConfig` of a mode (an S3 client from :mod:`vsrflow.aws` for the S3 modes)."""
    s3 = None
    if mode != "local":
        from vsrflow.aws.clients import AwsClients

        s3 = AwsClients(settings.aws).s3
    state_dir.mkdir(parents=True, exist_ok=True)
    return UiConfig(
        mode=mode,
        settings=settings,
        state_dir=state_dir.resolve(),
        jobs_root=jobs_root.expanduser().resolve(),
        max_upload=max_upload or DEFAULT_MAX_UPLOAD_BYTES,
        access=access,
        chunk_seconds=chunk_seconds,
        s3=s3,
    )


def serve(
    *,
    mode: str,
    settings: Settings,
    access: Access,
    port: int,
    state_dir: Path,
    jobs_root: Path,
    max_upload: int | None,
    chunk_seconds: float | None,
    port_file: Path | None = None,
) -> int:
    """Serve until interrupted; returns 0. The socket is bound before the first line is printed."""
    import uvicorn

    config = make_config(
        mode=mode,
        settings=settings,
        access=access,
        state_dir=state_dir,
        jobs_root=jobs_root,
        max_upload=max_upload,
        chunk_seconds=chunk_seconds,
    )
    family = socket.AF_INET6 if ":" in access.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((access.host, port))
    sock.listen(128)  # connections queue from here on, so the printed address works at once
    bound = sock.getsockname()[1]
    host = f"[{access.host}]" if ":" in access.host else access.host
    print(f"vsrflow ui ({mode}): http://{host}:{bound}/", flush=True)
    if port_file is not None:
        atomic_write_text(port_file, f"{bound}\n")
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), log_level="warning", timeout_graceful_shutdown=3, access_log=False)
    )
    server.run(sockets=[sock])
    return 0
