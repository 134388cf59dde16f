"""Quick previews: a few seconds of an upload upscaled with two or three candidate models.

A preview cuts ``seconds`` (at most :data:`MAX_SECONDS`) from ``start`` of a local upload into a
lossless clip (ffmpeg CLI, video only), then runs the single-pass pipeline
(:func:`vsrflow.engine.pipeline.upscale_video`, what ``vsrflow upscale`` runs) once per model,
one after another in a background thread. Files: ``<root>/<preview id>/source.mp4`` and
``<model>.mp4``; the state is in memory (a preview is disposable).
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.errors import InputError, VsrError
from vsrflow.web.uploads import check_upload_id

log = logging.getLogger(__name__)

MAX_SECONDS = 5.0
MAX_MODELS = 3


class Previews:
    """Preview jobs of this server (see the module docstring)."""

    def __init__(self, settings: Settings, root: Path, uploads_dir: Path) -> None:
        self.settings = settings
        self.root = root
        self.uploads_dir = uploads_dir
        self._state: dict[str, dict[str, Any]] = {}
        self._queue: queue.Queue[tuple[str, Path, list[str], float, float, float] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self, body: dict[str, Any]) -> str:
        """Queue a preview of ``{upload_id, models: [ids], scale, start, seconds}``; its id."""
        from vsrflow.models.registry import REGISTRY

        upload_id = check_upload_id(str(body.get("upload_id", "")))
        folder = self.uploads_dir / upload_id
        sources = [p for p in folder.iterdir() if p.suffix != ".json"] if folder.is_dir() else []
        if len(sources) != 1:
            raise InputError(f"upload {upload_id} not found", hint="upload the file again")
        models = body.get("models")
        if not isinstance(models, list) or not 1 <= len(models) <= MAX_MODELS:
            raise InputError(f"choose 1 to {MAX_MODELS} models to compare", hint="tick them in the list")
        for model in models:
            if not isinstance(model, str) or model not in REGISTRY:
                raise InputError(f"model {model!r} is not a known model id", hint="pick one from the list")
        try:
            scale = float(body.get("scale", 2))
            start = float(body.get("start", 0))
            seconds = float(body.get("seconds", 2))
        except (TypeError, ValueError) as err:
            raise InputError("scale, start and seconds must be numbers", hint="e.g. 2, 0, 2") from err
        if not 0 < seconds <= MAX_SECONDS or start < 0 or scale not in (2.0, 4.0):
            raise InputError(
                f"a preview is 0-{MAX_SECONDS:g} s from a start >= 0 at scale 2 or 4",
                hint="shorten the preview",
            )
        preview_id = secrets.token_hex(8)
        self._state[preview_id] = {
            "id": preview_id,
            "state": "queued",
            "models": {m: {"state": "queued", "error": None} for m in models},
            "error": None,
        }
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="vsrflow-ui-previews", daemon=True)
            self._thread.start()
        self._queue.put((preview_id, sources[0], list(models), scale, start, seconds))
        return preview_id

    def view(self, preview_id: str) -> dict[str, Any]:
        state = self._state.get(preview_id)
        if state is None:
            raise InputError(f"preview {preview_id!r} not found", hint="start a new preview")
        return state

    def file(self, preview_id: str, name: str) -> Path:
        """``source.mp4`` or ``<model>.mp4`` of a preview; InputError for anything else."""
        state = self.view(preview_id)
        allowed = {"source.mp4"} | {f"{m}.mp4" for m, s in state["models"].items() if s["state"] == "done"}
        if name not in allowed:
            raise InputError(f"{name!r} is not a file of preview {preview_id}", hint="wait until it is done")
        return self.root / preview_id / name

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            preview_id, source, models, scale, start, seconds = item
            state = self._state[preview_id]
            state["state"] = "running"
            try:
                self._run(preview_id, source, models, scale, start, seconds)
                state["state"] = "done"
            except Exception as exc:
                state["state"], state["error"] = "failed", str(exc)
                if not isinstance(exc, VsrError):
                    log.exception("preview %s failed", preview_id)

    def _run(
        self, preview_id: str, source: Path, models: list[str], scale: float, start: float, secs: float
    ) -> None:
        from vsrflow.engine.cache import UpscalerCache
        from vsrflow.engine.pipeline import upscale_video
        from vsrflow.media.ffmpeg import run_ffmpeg
        from vsrflow.media.writer import EncoderOptions

        folder = self.root / preview_id
        folder.mkdir(parents=True, exist_ok=True)
        clip = folder / "clip.mkv"
        cut = ["-ss", f"{start:.3f}", "-t", f"{secs:.3f}", "-i", str(source), "-map", "0:v:0", "-an", "-sn"]
        ffmpeg = self.settings.ffmpeg
        run_ffmpeg(
            [ffmpeg, "-nostdin", "-v", "error", "-y", *cut, "-c:v", "ffv1", str(clip)],
            what="cutting the preview",
        )
        run_ffmpeg(
            [ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(clip), "-c:v", "libx264", "-crf", "18",
             "-pix_fmt", "yuv420p", str(folder / "source.mp4")],
            what="encoding the preview source",
        )  # fmt: skip
        state = self._state[preview_id]["models"]
        cache = UpscalerCache(self.settings, max_models=1)
        for model in models:
            state[model]["state"] = "running"
            try:
                upscale_video(
                    clip,
                    folder / f"{model}.mp4",
                    upscaler=cache.get(model, scale),
                    encoder=EncoderOptions(codec="libx264", crf=18, preset="veryfast", pix_fmt="yuv420p"),
                    progress=False,
                    ffmpeg=ffmpeg,
                )
                state[model]["state"] = "done"
            except VsrError as exc:
                state[model]["state"], state[model]["error"] = "failed", str(exc)
