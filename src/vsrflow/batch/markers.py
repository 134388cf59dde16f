"""Done-markers of ``vsrflow run``: one JSON file per input video in ``OUT/.vsrflow-run/``.

A marker is written only after a video's upscale succeeded (and updated after its evaluation). A
rerun treats the upscale as done when ALL of these hold, else it redoes it:

* the marker parses and has this module's ``VERSION``;
* the input's byte size and mtime (ns) equal the recorded ones (a replaced input is redone);
* the model id and scale equal this run's;
* the output file exists with the recorded size and mtime, and probes as a video with the
  recorded frame count (a truncated or replaced output is redone).

An evaluation is reused when the marker holds one for the same reference file (name, size,
mtime). Markers are written atomically (temporary file + rename).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vsrflow.errors import VsrError
from vsrflow.files import atomic_write_json
from vsrflow.media.probe import probe

VERSION = 1
#: Directory (inside the output directory) holding markers, child logs and evaluation JSON.
STATE_DIR = ".vsrflow-run"


@dataclass(frozen=True)
class FileStamp:
    """Identity of a file for resume decisions: name, byte size, modification time in ns."""

    name: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileStamp:
        st = path.stat()
        return cls(path.name, st.st_size, st.st_mtime_ns)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "mtime_ns": self.mtime_ns}

    @classmethod
    def from_json(cls, data: Any) -> FileStamp | None:
        try:
            return cls(str(data["name"]), int(data["size"]), int(data["mtime_ns"]))
        except (TypeError, KeyError, ValueError):
            return None

    def matches(self, path: Path) -> bool:
        return path.is_file() and FileStamp.of(path) == self


def marker_path(out_dir: Path, input_path: Path) -> Path:
    """Where the marker of ``input_path`` lives (named after the input's file name)."""
    return out_dir / STATE_DIR / f"{input_path.name}.json"


def read_marker(path: Path) -> dict[str, Any] | None:
    """The marker's content, or None when absent, unreadable or of another version."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return None
    return data


def write_marker(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` (plus the version) to ``path`` atomically (:func:`vsrflow.files.atomic_write_json`).

    OSError -> VsrError naming ``path``.
    """
    try:
        atomic_write_json(path, {**data, "version": VERSION}, make_parents=True)
    except OSError as err:
        raise VsrError(f"{path}: cannot write the resume marker: {err.strerror or err}") from err


def upscale_record(
    input_path: Path, output_path: Path, model: str, scale: float, seconds: float
) -> dict[str, Any]:
    """A fresh marker for a finished upscale (probes the output for its frame count)."""
    return {
        "input": FileStamp.of(input_path).to_json(),
        "model": model,
        "scale": scale,
        "output": {**FileStamp.of(output_path).to_json(), "frames": probe(output_path).frame_count},
        "upscale_seconds": round(seconds, 3),
        "evaluation": None,
    }


def upscale_is_done(
    marker: dict[str, Any] | None, input_path: Path, output_path: Path, model: str, scale: float
) -> bool:
    """True when ``marker`` proves ``output_path`` is this run's finished upscale (module rules)."""
    if marker is None or marker.get("model") != model or marker.get("scale") != scale:
        return False
    stamp = FileStamp.from_json(marker.get("input"))
    out = marker.get("output")
    out_stamp = FileStamp.from_json(out)
    if stamp is None or out_stamp is None or not isinstance(out, dict):
        return False
    if stamp.name != input_path.name or not stamp.matches(input_path):
        return False
    if out_stamp.name != output_path.name or not out_stamp.matches(output_path):
        return False
    try:
        return probe(output_path).frame_count == out.get("frames")
    except VsrError:
        return False


def reusable_evaluation(marker: dict[str, Any] | None, reference: Path) -> dict[str, Any] | None:
    """The recorded evaluation metrics when they were measured against this exact ``reference``."""
    if marker is None or not isinstance(marker.get("evaluation"), dict):
        return None
    evaluation = marker["evaluation"]
    stamp = FileStamp.from_json(evaluation.get("reference"))
    if stamp is None or stamp.name != reference.name or not stamp.matches(reference):
        return None
    metrics = evaluation.get("metrics")
    return metrics if isinstance(metrics, dict) else None
