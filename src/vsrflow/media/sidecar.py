"""The provenance sidecar: ``<output>.vsrflow.json`` next to every video ``vsrflow upscale`` writes.

It says how the output was made, so that ``vsrflow evaluate`` (and a person) can name the model,
the preset, the scale, the colour fix and what the sanity guard did without the run's log.
Written atomically after the output is complete (a sidecar never describes a half-written file).

Fields (JSON object, ``format`` = :data:`FORMAT`):
    model: the model's provenance line (id, weight file and digest), as the run summary prints it.
    model_id: the registry id (or ``None`` for a path to a weight file outside the registry).
    preset: the content preset that picked the model (``None`` when ``--model`` was given).
    scale: the output scale factor (float, e.g. 2.0).
    colour_fix: ``off``, ``wavelet`` or ``gaussian``.
    on_artifact: the guard's ``--on-artifact`` choice.
    guard: the guard's counts, the object ``GuardReport.to_json()`` writes: ``checked``,
        ``tripped``, ``redone``, ``bicubic``, ``kept`` (frame counts), ``frames`` (first tripped
        frame numbers), ``fallback``, ``policy``, ``worst``.
    input: the source path as given.
    frames: output frame count.
    damage: ``None`` for a whole source; for a cut-short one upscaled with ``--accept-damaged``,
        what it lacked (``Damage.to_json()``: ``declared_seconds``, ``readable_seconds``,
        ``lost_seconds``, ``lost_frames``, ``lost_frames_estimated``, ``basis``).
    conditioning: what ran before the model (``Conditioning.to_json()``): ``text`` (the manifest's
        form, e.g. ``bwdif:tff;denoise=nlmeans:light;crop=704:560:8:8:auto``), ``filters`` (every
        ffmpeg filter with its arguments, in graph order) and ``prefilters`` (the pre-filters
        alone, same form); ``{}`` in sidecars written before it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vsrflow.errors import InputError
from vsrflow.files import atomic_write_json

FORMAT = "vsrflow-output/1"
SUFFIX = ".vsrflow.json"
#: The guard counts a sidecar must carry (non-negative integers).
GUARD_COUNTS = ("checked", "tripped", "redone", "bicubic", "kept")


def sidecar_path(output: Path) -> Path:
    """``movie.mp4`` -> ``movie.mp4.vsrflow.json`` (same folder)."""
    return output.with_name(output.name + SUFFIX)


@dataclass(frozen=True)
class Provenance:
    """How one output was made (see the module for each field)."""

    model: str
    model_id: str | None
    preset: str | None
    scale: float
    colour_fix: str
    on_artifact: str
    guard: dict[str, Any] = field(default_factory=dict)
    input: str = ""
    frames: int = 0
    damage: dict[str, Any] | None = None
    conditioning: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    def guard_summary(self) -> str:
        """``8 frames checked, 0 tripped`` or ``.. 3 tripped (frames 1, 2, 5): 3 redone with X``."""
        g = self.guard
        text = f"{g['checked']} frames checked, {g['tripped']} tripped"
        if not g["tripped"]:
            return text
        done = []
        if g["redone"]:
            done.append(f"{g['redone']} redone with {g.get('fallback') or 'the fallback model'}")
        if g["bicubic"]:
            done.append(f"{g['bicubic']} redone with bicubic")
        if g["kept"]:
            done.append(f"{g['kept']} kept as the model made them")
        frames = ", ".join(str(f) for f in g.get("frames") or [])
        return f"{text} (frames {frames}): {', '.join(done)}"


def write_sidecar(output: Path, provenance: Provenance) -> Path:
    """Write ``provenance`` to :func:`sidecar_path` of ``output`` atomically; return the sidecar path."""
    path = sidecar_path(output)
    atomic_write_json(path, provenance.to_json())
    return path


def _bad(path: Path, what: str) -> InputError:
    return InputError(
        f"provenance sidecar {path}: {what}",
        hint="delete it (the report then says the model is unknown) or rerun vsrflow upscale",
    )


def read_sidecar(output: Path) -> Provenance | None:
    """The sidecar of ``output``, or ``None`` when there is none.

    Raises:
        InputError: the sidecar exists but is not a sidecar this version reads (names the file).
    """
    path = sidecar_path(output)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(path, f"cannot be read as JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _bad(path, f"expected an object with format {FORMAT!r}")
    guard = data.get("guard")
    if not isinstance(guard, dict):
        raise _bad(path, "guard is not an object")
    for name in GUARD_COUNTS:
        value = guard.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _bad(path, f"guard {name} {value!r} is not a count")
    scale = data.get("scale")
    if isinstance(scale, bool) or not isinstance(scale, int | float) or scale <= 0:
        raise _bad(path, f"scale {scale!r} is not a positive number")
    conditioning = data.get("conditioning", {})
    if not isinstance(conditioning, dict):
        raise _bad(path, "conditioning is not an object")
    for name in ("model", "colour_fix", "on_artifact"):
        if not isinstance(data.get(name), str):
            raise _bad(path, f"{name} {data.get(name)!r} is not a string")
    return Provenance(
        model=data["model"],
        model_id=data.get("model_id"),
        preset=data.get("preset"),
        scale=float(scale),
        colour_fix=data["colour_fix"],
        on_artifact=data["on_artifact"],
        guard=guard,
        input=str(data.get("input", "")),
        frames=int(data.get("frames", 0)),
        damage=data.get("damage") if isinstance(data.get("damage"), dict) else None,
        conditioning=conditioning,
    )
