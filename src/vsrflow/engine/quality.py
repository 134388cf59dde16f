"""Quality options of a run and the per-frame guard's report: plain Python, no torch.

The per-frame sanity guard (:mod:`vsrflow.engine.guard`, the torch side) checks every model output
before it is clamped; this module owns what the CLI, the job spec, the chunk records and the
reports share about it, so the workflow and Lambda layers can use it without importing torch:

* :data:`ON_ARTIFACT` / :data:`DEFAULT_ON_ARTIFACT`: what happens to a frame that trips the guard
  (``fallback``: redo it with the fallback model, or bicubic when there is none or it trips too;
  ``fail``: the run fails naming the frames; ``keep``: keep it, with a warning).
* :data:`COLOUR_FIX` / ``"off"``: the colour fix (:mod:`vsrflow.engine.colourfix`).
* :class:`GuardThresholds`: the calibrated limits (see docs/quality.md for how they were measured).
* :class:`GuardReport`: the counts of one clip, chunk or job (JSON round trip, merge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from vsrflow.errors import InputError, ModelError

ON_ARTIFACT = ("fallback", "fail", "keep")
DEFAULT_ON_ARTIFACT = "fallback"
COLOUR_FIX = ("off", "wavelet", "gaussian")
DEFAULT_COLOUR_FIX = "off"
#: The built-in last resort of ``--on-artifact fallback``: antialiased bicubic (cannot blow up).
BICUBIC = "bicubic"
#: Frame numbers kept in a report (the counts stay exact beyond it).
MAX_LISTED_FRAMES = 100


def check_choice(option: str, value: object, choices: tuple[str, ...]) -> str:
    """``value`` when it is one of ``choices``; InputError naming ``option`` otherwise."""
    if not isinstance(value, str) or value not in choices:
        raise InputError(f"{option} {value!r} is not one of {', '.join(choices)}", hint=f"use {choices[0]}")
    return value


@dataclass(frozen=True)
class GuardThresholds:
    """Limits past which a model output frame is a blow-up (values in [0, 1] units, dB).

    Attributes:
        min_value, max_value: allowed range of the model's output BEFORE clamping: the main test.
            Normal outputs of every offline model on footage (also with heavy grain), anime-style
            frames, burnt-in subtitles and graphics overshoot by at most 1.01 (SPAN ringing on thin
            dark outlines); SPAN's blow-ups on saturated graphics, white noise and heavy grain
            reach -9.4 .. -930 / +11 .. +660. The limits sit about 3x from both.
        min_psnr_db: PSNR of the clamped output, area-downscaled to the input size, against the
            input (the model's consistency with its input). Normal: >= 14.4 dB (a GAN removing
            sigma-40 grain), >= 22 dB on clean content; in-range garbage (a GAN washing out random
            confetti or white noise, a black or inverted frame) scores 3 .. 6 dB.
        min_block_psnr_db: the same PSNR over the worst ``block`` x ``block`` input-pixel block:
            catches garbage confined to part of the frame. Normal: >= 10.4 dB.
        block: block side in input pixels.
    """

    min_value: float = -3.0
    max_value: float = 4.0
    min_psnr_db: float = 12.0
    min_block_psnr_db: float = 6.0
    block: int = 8


@dataclass(frozen=True)
class FrameCheck:
    """The guard's measurement of one output frame (see :class:`GuardThresholds` for units)."""

    lo: float
    hi: float
    psnr_db: float
    block_psnr_db: float

    def problems(self, limits: GuardThresholds) -> list[str]:
        """Why this frame is a blow-up (empty: it is not). NaN/inf outputs are always one."""
        out = []
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)):
            out.append("non-finite output")
        elif self.lo < limits.min_value or self.hi > limits.max_value:
            out.append(f"output range {self.lo:.3g}..{self.hi:.3g}")
        if not self.psnr_db >= limits.min_psnr_db:
            out.append(f"{self.psnr_db:.1f} dB from the input")
        if not self.block_psnr_db >= limits.min_block_psnr_db:
            out.append(f"worst block {self.block_psnr_db:.1f} dB from the input")
        return out


def _frames_text(frames: list[int], total: int) -> str:
    shown = ", ".join(map(str, frames[:20]))
    return shown + (f" and {total - min(20, len(frames))} more" if total > min(20, len(frames)) else "")


@dataclass
class GuardReport:
    """What the guard did over one clip/chunk/job (mutable accumulator, JSON round trip).

    Attributes:
        policy: the ``--on-artifact`` choice.
        checked: frames measured.
        tripped: frames past a threshold (each counted once, whatever was done with it).
        redone: tripped frames replaced by the fallback model's output.
        bicubic: tripped frames replaced by bicubic (no fallback model, or it tripped too).
        kept: tripped frames written as the model made them (``keep``, or ``fail`` before failing).
        frames: the first :data:`MAX_LISTED_FRAMES` tripped frame numbers (source frame indices).
        fallback: the fallback model id (or ``bicubic``) configured for ``fallback``.
        worst: the first problem seen, for messages ("output range -219..206").
    """

    policy: str = DEFAULT_ON_ARTIFACT
    checked: int = 0
    tripped: int = 0
    redone: int = 0
    bicubic: int = 0
    kept: int = 0
    frames: list[int] = field(default_factory=list)
    fallback: str | None = None
    worst: str | None = None

    def add_tripped(self, frame_numbers: list[int], problem: str) -> None:
        self.tripped += len(frame_numbers)
        room = MAX_LISTED_FRAMES - len(self.frames)
        self.frames.extend(frame_numbers[: max(0, room)])
        if self.worst is None:
            self.worst = problem

    def merge(self, other: GuardReport) -> GuardReport:
        """A new report with both reports' counts (frames sorted, first ones kept)."""
        merged = GuardReport(
            policy=self.policy,
            checked=self.checked + other.checked,
            tripped=self.tripped + other.tripped,
            redone=self.redone + other.redone,
            bicubic=self.bicubic + other.bicubic,
            kept=self.kept + other.kept,
            frames=sorted(self.frames + other.frames)[:MAX_LISTED_FRAMES],
            fallback=self.fallback or other.fallback,
            worst=self.worst or other.worst,
        )
        return merged

    def summary(self) -> str:
        """One line for the run summary: ``250 frames checked, 3 tripped (frames 4, 5, 9): ...``."""
        if not self.tripped:
            return f"{self.checked} frames checked, none tripped"
        done = []
        if self.redone:
            done.append(f"{self.redone} redone with {self.fallback}")
        if self.bicubic:
            done.append(f"{self.bicubic} redone with bicubic")
        if self.kept:
            done.append(f"{self.kept} kept as the model made them")
        return (
            f"{self.checked} frames checked, {self.tripped} tripped "
            f"(frames {_frames_text(self.frames, self.tripped)}; {self.worst}): {', '.join(done)}"
        )

    def error(self) -> ModelError:
        """The error of ``--on-artifact fail``: names the frames and the first problem."""
        return ModelError(
            f"model output blew up on {self.tripped} of {self.checked} frames "
            f"(frames {_frames_text(self.frames, self.tripped)}; {self.worst})",
            hint="use --on-artifact fallback (redo them with the fallback model) or another --model/--preset",
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "checked": self.checked,
            "tripped": self.tripped,
            "redone": self.redone,
            "bicubic": self.bicubic,
            "kept": self.kept,
            "frames": list(self.frames),
            "fallback": self.fallback,
            "worst": self.worst,
        }

    @classmethod
    def from_json(cls, data: object) -> GuardReport:
        """Parse a report written by :meth:`to_json`; InputError for anything else."""
        keys = set(cls().to_json())
        if not isinstance(data, dict) or set(data) != keys:
            raise InputError(f"guard report: expected the keys {', '.join(sorted(keys))}, got {data!r}")
        counts = ("checked", "tripped", "redone", "bicubic", "kept")
        for name in counts:
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"guard report: {name} {value!r} is not a count")
        frames = data["frames"]
        if not isinstance(frames, list) or not all(isinstance(f, int) and f >= 0 for f in frames):
            raise InputError(f"guard report: frames {frames!r} is not a list of frame numbers")
        return cls(**data)


@dataclass(frozen=True)
class QualityOptions:
    """The quality choices of one run or job (the CLI flags; a job spec records them).

    Attributes:
        on_artifact: one of :data:`ON_ARTIFACT`.
        fallback: model id (or weight-file path) that redoes tripped frames; None: bicubic.
        colour_fix: one of :data:`COLOUR_FIX`.
        guard: False turns the guard off (library use and benchmarks of raw models only).
    """

    on_artifact: str = DEFAULT_ON_ARTIFACT
    fallback: str | None = None
    colour_fix: str = DEFAULT_COLOUR_FIX
    guard: bool = True

    def __post_init__(self) -> None:
        check_choice("--on-artifact", self.on_artifact, ON_ARTIFACT)
        check_choice("--colour-fix", self.colour_fix, COLOUR_FIX)
        if self.fallback is not None and (not isinstance(self.fallback, str) or not self.fallback):
            raise InputError(f"fallback model {self.fallback!r} is not a model id", hint="use a registry id")
