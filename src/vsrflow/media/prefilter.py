"""Pre-filters before the model: deblock, denoise, crop of borders, square pixels (ffmpeg's filters).

Off by default; the ``sd`` preset (``--prefilter sd``) turns on what a legacy SD source usually
needs. This module owns the options, the preset, their validation and what each one does; it is
pure (standard library only: the job spec and the Lambda package import it). The filters run in
:class:`vsrflow.media.condition.Conditioner` (PyAV's filter graph, in-process), in the graph
order below. Black-border detection runs ffmpeg's ``cropdetect`` through the CLI (PyAV's LGPL
libavfilter does not ship it): :func:`detect_crop`.

==================  ==========================================================  ===============
option              ffmpeg filter and arguments                                 frames it needs
==================  ==========================================================  ===============
``--deblock weak``  ``deblock=filter=weak:block=8``                             that frame
``--deblock strong`` ``deblock=filter=strong:block=8``                          that frame
``--denoise nlmeans`` ``nlmeans=`` light ``s=2``, medium ``s=4``, strong ``s=8``,  that frame
                    all ``p=7:r=9`` (spatial non-local means: 7x7 patches, 9x9 search)
``--denoise atadenoise`` ``atadenoise=`` light ``s=5`` (thresholds 0.02/0.04),  +-s//2 frames
                    medium ``s=9`` (0.04/0.08), strong ``s=15`` (0.08/0.16)
``--crop``          ``crop=W:H:X:Y`` (even values)                              that frame
``--square-pixels`` ``scale=W':H:flags=lanczos+accurate_rnd+full_chroma_int,setsar=1``  that frame
==================  ==========================================================  ===============

Graph order: ``deblock`` (on the decoder's 8x8 block grid, before anything moves it), then the
deinterlace / inverse telecine, then ``denoise`` (on progressive frames), then ``crop``, then the
square-pixel ``scale``. Every filter is deterministic, so a chunk decoded with enough context
frames gives the single pass's pixels; ``hqdn3d`` is not offered: PyAV's libavfilter lacks it and
its temporal part is recursive (each output depends on every earlier frame), which no finite
context can reproduce in a chunk.

Geometry: the crop rectangle is in source pixels, with every value even (4:2:0 and 4:2:2 chroma
and field pairs stay whole; X and W multiples of 4 for 4:1:1). ``--square-pixels`` keeps the
height and resamples the width to ``W * SAR`` rounded to the nearest even number (720 x 16:15 ->
768, 720 x 64:45 -> 1024, 704 x 10:11 -> 640); the output's SAR is 1:1. A source already square
is left alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from types import MappingProxyType

from vsrflow.errors import InputError
from vsrflow.media.info import VideoInfo

log = logging.getLogger(__name__)

#: ``--denoise`` filters, ``--denoise-strength`` levels, ``--deblock`` levels, ``--prefilter`` presets.
DENOISE_FILTERS = ("off", "nlmeans", "atadenoise")
STRENGTHS = ("light", "medium", "strong")
DEBLOCK_LEVELS = ("off", "weak", "strong")
CROP_HELP = "auto, off or W:H:X:Y (even numbers, in source pixels)"
SQUARE_PIXELS = ("on", "off")

#: Filter arguments per denoise filter and strength (see the module table).
DENOISE_ARGS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "nlmeans": MappingProxyType(
            {"light": "s=2:p=7:r=9", "medium": "s=4:p=7:r=9", "strong": "s=8:p=7:r=9"}
        ),
        "atadenoise": MappingProxyType(
            {
                "light": "0a=0.02:0b=0.04:1a=0.02:1b=0.04:2a=0.02:2b=0.04:s=5",
                "medium": "0a=0.04:0b=0.08:1a=0.04:1b=0.08:2a=0.04:2b=0.08:s=9",
                "strong": "0a=0.08:0b=0.16:1a=0.08:1b=0.16:2a=0.08:2b=0.16:s=15",
            }
        ),
    }
)
#: Frames each side a temporal denoiser looks at (atadenoise: s // 2).
DENOISE_RADIUS: Mapping[str, Mapping[str, int]] = MappingProxyType(
    {"atadenoise": MappingProxyType({"light": 2, "medium": 4, "strong": 7})}
)
SCALE_FLAGS = "lanczos+accurate_rnd+full_chroma_int"


@dataclass(frozen=True)
class PrefilterRequest:
    """What the user asked for (``None``: the preset's choice, else off).

    Attributes:
        preset: a name of :data:`PRESETS` ('off' or 'sd').
        denoise, strength, deblock: one of :data:`DENOISE_FILTERS`, :data:`STRENGTHS`,
            :data:`DEBLOCK_LEVELS`.
        crop: 'auto', 'off' or 'W:H:X:Y'.
        square_pixels: 'on' or 'off'.
    """

    preset: str = "off"
    denoise: str | None = None
    strength: str | None = None
    deblock: str | None = None
    crop: str | None = None
    square_pixels: str | None = None

    def __post_init__(self) -> None:
        check_option("--prefilter", self.preset, tuple(PRESETS))
        check_option("--denoise", self.denoise, DENOISE_FILTERS)
        check_option("--denoise-strength", self.strength, STRENGTHS)
        check_option("--deblock", self.deblock, DEBLOCK_LEVELS)
        check_option("--square-pixels", self.square_pixels, SQUARE_PIXELS)
        if self.crop is not None:
            parse_crop(self.crop)

    def effective(self) -> PrefilterRequest:
        """Every field set: the user's value, else the preset's, else off (strength: light)."""
        base = PRESETS[self.preset]
        return PrefilterRequest(
            preset=self.preset,
            denoise=self.denoise or base.get("denoise", "off"),
            strength=self.strength or base.get("strength", "light"),
            deblock=self.deblock or base.get("deblock", "off"),
            crop=self.crop or base.get("crop", "off"),
            square_pixels=self.square_pixels or base.get("square_pixels", "off"),
        )

    @property
    def any_on(self) -> bool:
        """Some pre-filter is on (before the source is known: ``--crop auto`` and square pixels count)."""
        eff = self.effective()
        return (eff.denoise, eff.deblock, eff.crop, eff.square_pixels) != ("off", "off", "off", "off")

    def to_json(self) -> dict[str, str]:
        """The options the user set (job spec keys; absent = not given)."""
        out = {"prefilter": self.preset} if self.preset != "off" else {}
        for key in ("denoise", "deblock", "crop", "square_pixels"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.strength is not None:
            out["denoise_strength"] = self.strength
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> PrefilterRequest:
        """Inverse of :meth:`to_json` (keys other than its own are ignored)."""
        values: dict[str, str | None] = {}
        for key, field_name in JSON_KEYS.items():
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise InputError(f"{key}: {value!r} is not a text", hint=f"use one of the {key} values")
            values[field_name] = value
        return cls(preset=values.pop("preset") or "off", **values)


#: Job spec keys of :meth:`PrefilterRequest.to_json` -> field names.
JSON_KEYS = MappingProxyType(
    {
        "prefilter": "preset",
        "denoise": "denoise",
        "denoise_strength": "strength",
        "deblock": "deblock",
        "crop": "crop",
        "square_pixels": "square_pixels",
    }
)

#: ``--prefilter`` presets: the one owner of what each turns on (field -> value; explicit options
#: override them). ``sd``: DVD, broadcast and tape transfers.
PRESETS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "off": MappingProxyType({}),
        "sd": MappingProxyType(
            {
                "denoise": "nlmeans",
                "strength": "light",
                "deblock": "weak",
                "crop": "auto",
                "square_pixels": "on",
            }
        ),
    }
)


def check_option(option: str, value: str | None, accepted: Sequence[str]) -> None:
    """InputError (exit 2) naming ``option`` and the accepted values unless ``value`` is one of them."""
    if value is not None and value not in accepted:
        raise InputError(
            f"{option} {value!r} is not one of {', '.join(accepted)}", hint=f"use {option} {accepted[0]}"
        )


_CROP = re.compile(r"^(\d+):(\d+):(\d+):(\d+)$")


def parse_crop(text: str) -> tuple[int, int, int, int] | str:
    """'auto' / 'off' as they are, or the (W, H, X, Y) of 'W:H:X:Y' (InputError naming ``--crop``)."""
    if text in ("auto", "off"):
        return text
    match = _CROP.match(text)
    if match is None:
        raise InputError(
            f"--crop {text!r} is not one of {CROP_HELP}", hint="e.g. --crop auto or --crop 704:560:8:8"
        )
    w, h, x, y = (int(v) for v in match.groups())
    if w <= 0 or h <= 0 or any(v % 2 for v in (w, h, x, y)):
        raise InputError(
            f"--crop {text}: width and height must be positive and every value even",
            hint="round the rectangle to even pixels (4:2:0 chroma and field pairs need it)",
        )
    return w, h, x, y


@dataclass(frozen=True)
class Prefilters:
    """The pre-filters decided for one source (crop and square-pixel size resolved).

    Attributes:
        deblock: 'off', 'weak' or 'strong'.
        denoise: 'off', 'nlmeans' or 'atadenoise'; ``strength`` its level.
        crop: (W, H, X, Y) in source pixels, or None.
        crop_basis: 'auto' (cropdetect) or 'manual' when ``crop`` is set.
        square_width: the width the cropped picture is resampled to for square pixels, or None.
        sar: the source's SAR (what ``square_width`` was computed from).
    """

    deblock: str = "off"
    denoise: str = "off"
    strength: str = "light"
    crop: tuple[int, int, int, int] | None = None
    crop_basis: str = "manual"
    square_width: int | None = None
    sar: Fraction = Fraction(1)

    @property
    def active(self) -> bool:
        filters = self.deblock != "off" or self.denoise != "off"
        return filters or self.crop is not None or self.square_width is not None

    @property
    def radius(self) -> int:
        """Conditioned frames each side the temporal filters look at (0: all spatial)."""
        return DENOISE_RADIUS.get(self.denoise, {}).get(self.strength, 0)

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The picture size after the pre-filters, for a ``width`` x ``height`` source."""
        if self.crop is not None:
            width, height = self.crop[0], self.crop[1]
        return (self.square_width or width), height

    def head_chain(self) -> list[tuple[str, str]]:
        """Filters before the scan-type conditioning (on the decoded frames)."""
        return [("deblock", f"filter={self.deblock}:block=8")] if self.deblock != "off" else []

    def tail_chain(self) -> list[tuple[str, str]]:
        """Filters after the scan-type conditioning (on progressive frames)."""
        chain: list[tuple[str, str]] = []
        if self.denoise != "off":
            chain.append((self.denoise, DENOISE_ARGS[self.denoise][self.strength]))
        if self.crop is not None:
            w, h, x, y = self.crop
            chain.append(("crop", f"w={w}:h={h}:x={x}:y={y}:exact=1"))
        if self.square_width is not None:
            chain.append(("scale", f"w={self.square_width}:h=ih:flags={SCALE_FLAGS}"))
            chain.append(("setsar", "1"))
        return chain

    def to_text(self) -> str:
        """';'-separated parts (after the scan-type part of the conditioning text), '' when off."""
        parts = []
        if self.deblock != "off":
            parts.append(f"deblock={self.deblock}")
        if self.denoise != "off":
            parts.append(f"denoise={self.denoise}:{self.strength}")
        if self.crop is not None:
            parts.append(f"crop={':'.join(map(str, self.crop))}:{self.crop_basis}")
        if self.square_width is not None:
            parts.append(f"square={self.square_width}:{self.sar.numerator}/{self.sar.denominator}")
        return ";".join(parts)

    @classmethod
    def from_text(cls, parts: Sequence[str]) -> Prefilters:
        out = cls()
        for part in parts:
            key, _, value = part.partition("=")
            if key == "deblock":
                out = replace(out, deblock=value)
            elif key == "denoise":
                name, _, strength = value.partition(":")
                out = replace(out, denoise=name, strength=strength)
            elif key == "crop":
                *rect, basis = value.split(":")
                w, h, x, y = (int(v) for v in rect)
                out = replace(out, crop=(w, h, x, y), crop_basis=basis)
            elif key == "square":
                width, _, sar = value.partition(":")
                out = replace(out, square_width=int(width), sar=Fraction(sar))
            else:
                raise ValueError(f"unknown pre-filter {part!r}")
        return out

    def describe(self) -> list[str]:
        """One phrase per pre-filter that runs (summary, probe, logs)."""
        out = []
        if self.deblock != "off":
            out.append(f"deblock {self.deblock} (deblock=filter={self.deblock}:block=8)")
        if self.denoise != "off":
            out.append(
                f"denoise {self.denoise} {self.strength} ({DENOISE_ARGS[self.denoise][self.strength]})"
            )
        if self.crop is not None:
            w, h, x, y = self.crop
            out.append(f"crop {w}x{h} at {x},{y} ({self.crop_basis})")
        if self.square_width is not None:
            sar = f"{self.sar.numerator}:{self.sar.denominator}"
            out.append(f"square pixels: SAR {sar} -> 1:1, width {self.square_width}")
        return out

    def to_json(self) -> list[dict[str, str]]:
        """Each filter that runs with its ffmpeg arguments, in graph order (the sidecar's record)."""
        return [{"filter": name, "args": args} for name, args in self.head_chain() + self.tail_chain()]


def square_width(width: int, sar: Fraction) -> int:
    """``width * sar`` rounded to the nearest even number (at least 2)."""
    return max(2, 2 * round(Fraction(width) * sar / 2))


def resolve(
    request: PrefilterRequest,
    *,
    width: int,
    height: int,
    sar: Fraction,
    detected_crop: tuple[int, int, int, int] | None = None,
    align: tuple[int, int] = (2, 2),
) -> Prefilters:
    """The :class:`Prefilters` for a ``width`` x ``height`` source of ``sar`` (crop auto: ``detected_crop``).

    ``align`` is the (horizontal, vertical) multiple a crop must keep for the pixel format's
    chroma (:func:`vsrflow.media.condition.crop_alignment`: 2 for 4:2:0, 4 across for 4:1:1 DV).

    Raises:
        InputError: a manual crop that does not fit inside the picture or is off the chroma grid
            (names ``--crop``).
    """
    eff = request.effective()
    assert eff.crop is not None and eff.denoise and eff.deblock and eff.strength
    crop: tuple[int, int, int, int] | None = None
    basis = "manual"
    parsed = parse_crop(eff.crop)
    if isinstance(parsed, tuple):
        w, h, x, y = parsed
        if x + w > width or y + h > height:
            raise InputError(
                f"--crop {eff.crop}: the rectangle leaves the {width}x{height} picture",
                hint="use --crop auto, or W:H:X:Y with X+W <= width and Y+H <= height",
            )
        ax, ay = align
        if x % ax or w % ax or y % ay or h % ay:
            raise InputError(
                f"--crop {eff.crop}: this source's chroma ({width}x{height}) needs X and W multiples "
                f"of {ax}, Y and H multiples of {ay}",
                hint="round the rectangle to those multiples, or use --crop auto",
            )
        crop = parsed
    elif parsed == "auto" and detected_crop is not None:
        crop, basis = detected_crop, "auto"
    if crop == (width, height, 0, 0):
        crop = None
    out_w = crop[0] if crop is not None else width
    square = None
    if eff.square_pixels == "on" and sar != 1:
        square = square_width(out_w, sar)
    return Prefilters(
        deblock=eff.deblock,
        denoise=eff.denoise,
        strength=eff.strength,
        crop=crop,
        crop_basis=basis,
        square_width=square,
        sar=sar if square is not None else Fraction(1),
    )


#: A detected picture smaller than this share of the frame (either side) is not trusted: dark
#: content (a night scene, a fade) looks like borders to ``cropdetect``.
MIN_CROP_SHARE = Fraction(1, 2)
_CROPDETECT = re.compile(r"crop=(\d+):(\d+):(\d+):(\d+)")


def detect_crop(
    path: object, info: VideoInfo, ffmpeg: str = "ffmpeg", align: tuple[int, int] = (2, 2)
) -> tuple[int, int, int, int] | None:
    """Black borders of ``path``'s video as a (W, H, X, Y) rectangle, or None (no borders).

    ffmpeg's ``cropdetect`` (default black threshold 24/255, no frames skipped, never reset) runs
    over the same sample windows as the scan-type check (:mod:`vsrflow.media.scan`: the whole
    video when short, else three windows of 40 frames); the rectangle is the union of the
    windows' picture areas, shrunk inward to multiples of ``align`` (see :func:`resolve`).
    Decided once per source (the chunked job at extract time), never per chunk.

    Raises:
        ExternalToolError: ffmpeg failed on the file.
    """
    from vsrflow.media.ffmpeg import run_ffmpeg
    from vsrflow.media.scan import SAMPLE_FRAMES, _window_starts

    starts = _window_starts(info)
    length = info.frame_count if len(starts) == 1 else SAMPLE_FRAMES
    box: list[int] | None = None  # x1, y1, x2, y2
    for start in starts:
        seek = ["-ss", f"{float(start / info.frame_rate):.6f}"] if start > 0 else []
        stream = f"0:{info.video_stream_index}"
        stderr = run_ffmpeg(
            [ffmpeg, "-hide_banner", "-nostats", *seek, "-i", str(path), "-map", stream,
             "-frames:v", str(length), "-vf", "cropdetect=round=2:reset=0:skip=0", "-f", "null", "-"],
            what=f"{path}: detecting black borders (cropdetect) failed",
        )  # fmt: skip
        found = _CROPDETECT.findall(stderr)
        if not found:
            continue  # every frame black: this window says nothing
        w, h, x, y = (int(v) for v in found[-1])
        window = [x, y, x + w, y + h]
        if box is None:
            box = window
        else:
            box = [min(box[0], x), min(box[1], y), max(box[2], x + w), max(box[3], y + h)]
    if box is None:
        return None
    ax, ay = align
    x1, y1 = -(-box[0] // ax) * ax, -(-box[1] // ay) * ay
    x2, y2 = min(box[2], info.width) // ax * ax, min(box[3], info.height) // ay * ay
    w, h = x2 - x1, y2 - y1
    if w < info.width * MIN_CROP_SHARE or h < info.height * MIN_CROP_SHARE:
        log.warning(
            "%s: --crop auto: cropdetect found only %dx%d of %dx%d non-black (dark content?); not "
            "cropping (give --crop W:H:X:Y to crop anyway)",
            path, w, h, info.width, info.height,
        )  # fmt: skip
        return None
    if (w, h) == (info.width, info.height):
        return None
    return w, h, x1, y1
