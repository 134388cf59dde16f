"""Quality on every kind of content: footage, anime-style frames, graphics, flat colour patches.

Measures, for each offline model at its native scale, what the sanity guard sees on each frame
(pre-clamp range, consistency PSNRs: :func:`vsrflow.engine.guard.check_frames`), and the output's
Y-PSNR / SSIM-Y against the high-resolution original and its flat-patch colour shift with each
colour fix (``off``, ``wavelet``, ``gaussian``); plus the guard's and the colour fix's cost per
frame. ``bench/content_quality.py`` runs it and renders the section of docs/quality.md.

Sources (high resolution; the model input is the MATLAB-compatible bicubic downscale):
footage from the sample clips (lossy h264), one with a burnt-in subtitle; synthetic anime-style
frames (:func:`anime_frame`); lavfi test patterns rendered straight to RGB with exact 0/255
primaries (:func:`pattern_frames`); flat BT.709-ish colour patches.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vsrflow.config import Settings
from vsrflow.errors import ExternalToolError

PATTERNS = ("testsrc2", "smptebars", "smptehdbars", "rgbtestsrc", "mandelbrot")
FLAT_COLOURS = ((48, 112, 176), (128, 128, 128))
COLOUR_FIXES = ("off", "wavelet", "gaussian")


def pattern_frames(
    pattern: str, size: tuple[int, int], frames: int = 1, *, ffmpeg: str = "ffmpeg"
) -> np.ndarray:
    """(frames, H, W, 3) uint8 RGB of a lavfi pattern (testsrc2, smptebars, ...) rendered in RGB
    (exact 0/255 primaries: no YUV round trip softens the saturated edges)."""
    width, height = size
    source = f"{pattern}=size={width}x{height}:rate=25"
    argv = [ffmpeg, "-nostdin", "-v", "error", "-f", "lavfi", "-i", source,
            "-frames:v", str(frames), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, check=False)
    if proc.returncode != 0:
        raise ExternalToolError(argv, proc.returncode, proc.stderr.decode(errors="replace"), what="ffmpeg")
    return np.frombuffer(proc.stdout, np.uint8).reshape(frames, height, width, 3).copy()


def burn_subtitle(frame: np.ndarray, text: str = "Subtitles burnt in") -> np.ndarray:
    """A copy of ``frame`` (H, W, 3 uint8) with white text and a black border near the bottom."""
    out = np.ascontiguousarray(frame.copy())
    h, w = out.shape[:2]
    org, scale = (w // 8, h - max(4, h // 12)), max(0.3, h / 300)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), max(2, h // 60), cv2.LINE_AA)
    cv2.putText(
        out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), max(1, h // 200), cv2.LINE_AA
    )
    return out


def anime_frame(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a synthetic anime-style frame: a gradient sky, flat-shaded shapes
    with dark outlines, and a burnt-in white subtitle with a black border; drawn at 4x and
    area-downscaled (anti-aliased edges like a rendered cel)."""
    width, height = size
    rng = np.random.default_rng(seed)
    big_w, big_h = width * 4, height * 4
    t = np.linspace(0.0, 1.0, big_h)[:, None, None]
    top, bottom = rng.integers(60, 255, 3), rng.integers(0, 200, 3)
    img = np.ascontiguousarray(
        np.broadcast_to(top * (1 - t) + bottom * t, (big_h, big_w, 3)).astype(np.uint8)
    )
    for _ in range(8):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        pts = (rng.random((int(rng.integers(3, 7)), 2)) * [big_w, big_h]).astype(np.int32)
        if rng.random() < 0.5:
            cv2.fillPoly(img, [pts], colour, lineType=cv2.LINE_AA)
            cv2.polylines(img, [pts], True, (20, 20, 20), 8, cv2.LINE_AA)
        else:
            centre, radius = (int(pts[0][0]), int(pts[0][1])), int(rng.integers(10, height))
            cv2.circle(img, centre, radius, colour, -1, cv2.LINE_AA)
            cv2.circle(img, centre, radius, (20, 20, 20), 8, cv2.LINE_AA)
    text, org, scale = "Burnt-in subtitle 123", (big_w // 8, big_h - 40), big_h / 240
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 14, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 5, cv2.LINE_AA)
    return np.asarray(cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA))


def flat_frame(rgb: tuple[int, int, int], size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8: a flat patch of ``rgb`` with a dark frame border (so it is not all one colour)."""
    width, height = size
    out = np.empty((height, width, 3), np.uint8)
    out[:] = rgb
    b = max(2, height // 10)
    out[:b], out[-b:], out[:, :b], out[:, -b:] = 20, 20, 20, 20
    return out


def _clip_frames(settings: Settings, name: str, size: tuple[int, int], count: int) -> np.ndarray:
    from vsrflow.bench.clips import sample_path

    src = sample_path(settings, name)
    argv = [settings.ffmpeg, "-nostdin", "-v", "error", "-i", str(src), "-vf",
            f"select='not(mod(n,30))',scale={size[0]}:{size[1]}:flags=area", "-fps_mode", "passthrough",
            "-frames:v", str(count), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, check=False)
    if proc.returncode != 0:
        raise ExternalToolError(argv, proc.returncode, proc.stderr.decode(errors="replace"), what="ffmpeg")
    return np.frombuffer(proc.stdout, np.uint8).reshape(-1, size[1], size[0], 3).copy()


def contents(settings: Settings, frames: int = 2) -> dict[str, tuple[str, np.ndarray]]:
    """name -> (kind, high-resolution frames (N, H, W, 3) uint8); sides divisible by 4."""
    out: dict[str, tuple[str, np.ndarray]] = {}
    for name, size in (("bikes", (320, 136)), ("carphone", (176, 144)), ("bigbuckbunny", (320, 180))):
        out[name] = ("footage", _clip_frames(settings, name, size, frames))
    out["bikes+subtitle"] = ("footage", np.stack([burn_subtitle(f) for f in out["bikes"][1][:1]]))
    out["anime"] = ("anime", np.stack([anime_frame((320, 240), seed) for seed in range(frames)]))
    for pattern in PATTERNS:
        out[pattern] = ("graphics", pattern_frames(pattern, (320, 240), ffmpeg=settings.ffmpeg))
    for rgb in FLAT_COLOURS:
        out[f"flat {rgb}"] = ("flat", flat_frame(rgb, (160, 120))[None])
    return out


def downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB-compatible antialiased bicubic downscale of uint8 frames (the quality table's LR)."""
    from vsrflow.media.degrade import bicubic_downscale

    lows = [np.clip(np.round(bicubic_downscale(f.astype(np.float64), scale)), 0, 255) for f in hr]
    return np.stack(lows).astype(np.uint8)


def flat_shift(out: np.ndarray, rgb: tuple[int, int, int]) -> float:
    """Largest per-channel |mean - rgb| (levels) over the centre half of every output frame."""
    _, h, w, _ = out.shape
    centre = out[:, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].reshape(-1, 3).astype(np.float64)
    return float(np.abs(centre.mean(axis=0) - np.array(rgb)).max())


def _scores(out: np.ndarray, ref: np.ndarray, crop: int) -> tuple[float, float]:
    from vsrflow.metrics.image import psnr, ssim

    p = [psnr(a, b, crop=crop, channel="y") for a, b in zip(out, ref, strict=True)]
    s = [ssim(a, b, crop=crop, channel="y") for a, b in zip(out, ref, strict=True)]
    return float(np.mean(p)), float(np.mean(s))


def measure(
    settings: Settings,
    models: Sequence[str],
    *,
    device: str = "cpu",
    frames: int = 2,
    slow_models: Sequence[str] = (),
) -> dict[str, Any]:
    """Rows per (model, content, colour fix) plus bicubic rows; ``slow_models`` see footage,
    anime, one pattern and the flat patches only."""
    import torch

    from vsrflow.engine.cache import UpscalerCache
    from vsrflow.engine.colourfix import apply_colour_fix
    from vsrflow.engine.guard import bicubic, check_frames
    from vsrflow.engine.quality import GuardThresholds, QualityOptions

    limits = GuardThresholds()
    cache = UpscalerCache(settings, max_models=1)
    data = contents(settings, frames)
    rows: list[dict[str, Any]] = []
    for model in models:
        from vsrflow.models.registry import get_spec

        scale = get_spec(model).scale
        for name, (kind, hr) in data.items():
            if model in slow_models and kind == "graphics" and name != "testsrc2":
                continue
            lr = downscale(hr, scale)
            x = torch.from_numpy(lr).permute(0, 3, 1, 2).float().div(255)
            raw_view = cache.get(model, scale, QualityOptions(guard=False))
            t0 = time.perf_counter()
            with torch.inference_mode():
                y = raw_view._upscale_float(x, raw_view.output_size(lr.shape[1], lr.shape[2]))
            seconds = (time.perf_counter() - t0) / len(lr)
            checks = check_frames(x, y, limits)
            base = {"model": model, "scale": scale, "content": name, "kind": kind, "frames": len(lr),
                    "lo": min(c.lo for c in checks), "hi": max(c.hi for c in checks),
                    "guard_psnr_db": min(c.psnr_db for c in checks),
                    "guard_block_psnr_db": min(c.block_psnr_db for c in checks),
                    "tripped": sum(bool(c.problems(limits)) for c in checks),
                    "model_s_per_frame": seconds}  # fmt: skip
            for fix in COLOUR_FIXES:
                # What the Upscaler does with --on-artifact keep --colour-fix FIX, from the one model run.
                fixed = y if fix == "off" else apply_colour_fix(y, x, fix)
                out = fixed.mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
                rows.append({**base, **_row_scores(out, hr, scale, name, kind), "colour_fix": fix})
        cache = UpscalerCache(settings, max_models=1)  # release the model before the next one
    for scale in (2, 4):
        for name, (kind, hr) in data.items():
            lr = downscale(hr, scale)
            x = torch.from_numpy(lr).permute(0, 3, 1, 2).float().div(255)
            out = (bicubic(x, hr.shape[1:3]) * 255).round().permute(0, 2, 3, 1).numpy().astype(np.uint8)
            rows.append({"model": "bicubic", "scale": scale, "content": name, "kind": kind, "frames": len(lr),
                         "colour_fix": "off", **_row_scores(out, hr, scale, name, kind)})  # fmt: skip
    return {"rows": rows}


def guarded_scores(settings: Settings, result: dict[str, Any]) -> None:
    """Add ``guarded_psnr_y`` / ``guarded_ssim_y`` (what a default run writes: the preset's guard
    fallback, bicubic as the last resort) to every colour-fix-off row whose frames tripped."""
    import torch

    from vsrflow.engine.cache import UpscalerCache
    from vsrflow.engine.quality import QualityOptions
    from vsrflow.models.registry import REGISTRY, resolve_fallback

    data = contents(settings, max(r["frames"] for r in result["rows"]))
    cache = UpscalerCache(settings)
    for row in result["rows"]:
        if row["model"] == "bicubic" or row["colour_fix"] != "off" or not row.get("tripped"):
            continue
        spec = REGISTRY[row["model"]]
        preset = next((t for t in spec.tags if t in ("fidelity", "anime", "live-action")), "")
        fallback = resolve_fallback(preset, spec, scale=row["scale"])
        hr = data[row["content"]][1][: row["frames"]]
        lr = downscale(hr, row["scale"])
        up = cache.get(
            spec.id, row["scale"], QualityOptions(fallback=None if fallback is None else fallback.id)
        )
        up.reset()
        with torch.inference_mode():
            out = up.upscale_frames(lr)
        psnr_y, ssim_y = _scores(out, hr, row["scale"])
        row.update({"guarded_psnr_y": psnr_y, "guarded_ssim_y": ssim_y, "guard_fallback": up.report.fallback})


def _row_scores(out: np.ndarray, hr: np.ndarray, scale: int, name: str, kind: str) -> dict[str, Any]:
    psnr_y, ssim_y = _scores(out, hr, scale)
    row: dict[str, Any] = {"psnr_y": psnr_y, "ssim_y": ssim_y}
    if kind == "flat":
        rgb = tuple(int(v) for v in name.removeprefix("flat (").removesuffix(")").split(", "))
        row["flat_shift_levels"] = flat_shift(out, rgb)  # type: ignore[arg-type]
    return row


def overhead(
    settings: Settings, model: str, *, size: tuple[int, int] = (640, 360), repeat: int = 5
) -> dict[str, Any]:
    """Per-frame CPU/device cost (ms) of the guard and each colour fix at ``size`` input, next to
    the model's own time on the same frame (median of ``repeat``; the model once)."""
    import torch

    from vsrflow.engine.cache import UpscalerCache
    from vsrflow.engine.colourfix import apply_colour_fix
    from vsrflow.engine.guard import check_frames
    from vsrflow.engine.quality import GuardThresholds, QualityOptions

    up = UpscalerCache(settings).get(model, 2.0, QualityOptions(guard=False))
    w, h = size
    x = torch.rand(1, 3, h, w)
    with torch.inference_mode():
        t0 = time.perf_counter()
        y = up._upscale_float(x, up.output_size(h, w))
        model_ms = (time.perf_counter() - t0) * 1000

        def median_ms(fn: Any) -> float:
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1000)
            return float(np.median(times))

        limits = GuardThresholds()
        result = {"model": model, "input": f"{w}x{h}", "output": f"{y.shape[-1]}x{y.shape[-2]}",
                  "model_ms": model_ms,
                  "guard_ms": median_ms(lambda: check_frames(x, y, limits))}  # fmt: skip
        for fix in ("wavelet", "gaussian"):
            result[f"colour_fix_{fix}_ms"] = median_ms(lambda fix=fix: apply_colour_fix(y, x, fix))
    result["threads"] = torch.get_num_threads()
    return result


#: docs/quality.md keeps everything from this line on when bench/quality_table.py rewrites the page.
SECTION_MARKER = "<!-- content quality: written by bench/content_quality.py -->"


def keep_section(page: str, old_page: str) -> str:
    """``page`` plus the content-quality section of ``old_page`` (if it has one)."""
    at = old_page.find(SECTION_MARKER)
    return page if at < 0 else page.rstrip("\n") + "\n\n" + old_page[at:]


def replace_section(old_page: str, section: str) -> str:
    """``old_page`` with its content-quality section (from the marker on) replaced by ``section``."""
    at = old_page.find(SECTION_MARKER)
    head = old_page if at < 0 else old_page[:at]
    return head.rstrip("\n") + "\n\n" + SECTION_MARKER + "\n\n" + section.strip("\n") + "\n"


def _f(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def section_markdown(result: dict[str, Any]) -> str:
    """The Markdown of the content-quality section from :func:`measure` + :func:`overhead` results."""
    from vsrflow.engine.quality import GuardThresholds

    rows = result["rows"]
    t = GuardThresholds()
    lines = [
        "## Content beyond footage: the sanity guard and the colour fix",
        "",
        "### The per-frame sanity guard",
        "",
        "SPAN (the `fidelity` preset) is excellent on footage but blows up on saturated graphics: on "
        "test patterns with exact 0/255 primaries its raw output reaches hundreds of times the valid "
        "range (speckle over every saturated edge), also on white noise and heavy grain. Every frame of "
        "every run (`vsrflow upscale`, chunked jobs, model endpoints: one code path, the Upscaler) is "
        "therefore checked on the device before it is clamped:",
        "",
        f"- **range**: the raw output must stay within {t.min_value:g} .. {t.max_value:g} (valid: 0 .. 1);",
        f"- **consistency**: the clamped output, area-downscaled to the input size, must be within "
        f"{t.min_psnr_db:g} dB PSNR of the input over the frame and {t.min_block_psnr_db:g} dB over its "
        f"worst {t.block}x{t.block} block (a faithful upscale, bicubic included, scores 30-50 dB on "
        "pictures; this is the low-resolution form of the distance from a bicubic upscale).",
        "",
        "A frame past a limit is a blow-up. `--on-artifact fallback` (the default) redoes it with the "
        "preset's fallback model (`fidelity`: realesr-animevideov3, which stays in range on graphics), "
        "and with bicubic where that trips too or there is none (`--model` runs, the GAN presets); "
        "`--on-artifact fail` fails the run (or the chunk) after the last frame, naming the frames, and "
        "writes nothing; `keep` keeps the frame with a warning. The counts are in the `vsrflow upscale` "
        "summary (`guard : ...`), in every chunk record and in `vsrflow status` for chunked jobs.",
        "",
        "How the limits were set: the table below (and a wider calibration run with the same code on "
        "white noise, sigma 20/40 grain, random colour confetti and frames at 64x48 .. 320x240) puts "
        "every normal output (any model on footage, anime-style frames, burnt-in subtitles; the GAN "
        "models on every pattern) within -1.01 .. 1.7 and at >= 14.4 dB (>= 10.4 dB per block), and "
        "every SPAN blow-up outside -9.4 .. 11. The range limits sit about 3x from both; the consistency "
        "limits only catch in-range garbage (a GAN washing out random confetti or white noise scores "
        "3-6 dB, a black or inverted frame less). To recalibrate for a new model, run this page's script "
        "with `--models NEW_MODEL` and read the range and consistency columns: normal frames must stay "
        "well inside the limits.",
        "",
        f"Measured by `{result['command']}` on {result['machine']}, torch {result['torch']}, commit "
        f"`{result['git_commit'][:12]}`, {result['date']}. Raw numbers: `{result['results_file']}`.",
        "",
        "Sources: a few frames of each sample clip (lossy h264 footage; `bikes+subtitle` has a burnt-in "
        "subtitle), synthetic anime-style frames (flat cels, dark outlines, a burnt-in subtitle), lavfi "
        "test patterns rendered straight to RGB (exact 0/255 primaries, as a graphics master has) and "
        "flat colour patches; each at 320x240 or the clip's size, downscaled by the model's native scale "
        "with the MATLAB-compatible bicubic as the model input. Y-PSNR/SSIM-Y against that original "
        "(border crop = scale). Guard columns: the raw model output's range before clamping and its "
        "consistency PSNR (output area-downscaled vs input; worst 8x8 block in brackets); tripped = "
        "frames past the thresholds, and for those the Y-PSNR / SSIM-Y of what a default run writes "
        "(`--on-artifact fallback`); the colour-fix columns are the raw model's.",
        "",
        "| model (x) | content | kind | range before clamp | consistency dB (block) | tripped | "
        "Y-PSNR off / wavelet / gaussian | SSIM-Y off / wavelet / gaussian | "
        "flat shift (levels) off / wavelet / gaussian |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    models = list(dict.fromkeys(r["model"] for r in rows if r["model"] != "bicubic"))
    for model in models:
        for content in dict.fromkeys(r["content"] for r in rows if r["model"] == model):
            by_fix = {r["colour_fix"]: r for r in rows if r["model"] == model and r["content"] == content}
            r = by_fix["off"]
            psnrs = " / ".join(_f(by_fix[f]["psnr_y"]) for f in COLOUR_FIXES)
            ssims = " / ".join(_f(by_fix[f]["ssim_y"], 4) for f in COLOUR_FIXES)
            shifts = " / ".join(_f(by_fix[f].get("flat_shift_levels")) for f in COLOUR_FIXES)
            tripped = f"{r['tripped']}/{r['frames']}"
            if "guarded_psnr_y" in r:
                tripped += (
                    f": redone with {r['guard_fallback']}, **{r['guarded_psnr_y']:.2f} dB** / "
                    f"{r['guarded_ssim_y']:.4f}"
                )
            lines.append(
                f"| {model} (x{r['scale']}) | {content} | {r['kind']} | {r['lo']:.3g} .. {r['hi']:.3g} | "
                f"{r['guard_psnr_db']:.1f} ({r['guard_block_psnr_db']:.1f}) | {tripped} | "
                f"{psnrs} | {ssims} | {shifts} |"
            )
    lines += [
        "",
        "Bicubic on the same inputs (Y-PSNR dB, x2 / x4):",
        "",
        "| content | x2 | x4 |",
        "|---|---|---|",
    ]
    for content in dict.fromkeys(r["content"] for r in rows if r["model"] == "bicubic"):
        cells = {r["scale"]: r for r in rows if r["model"] == "bicubic" and r["content"] == content}
        lines.append(f"| {content} | {_f(cells[2]['psnr_y'])} | {_f(cells[4]['psnr_y'])} |")
    for o in result.get("overhead", []):
        lines += [
            "",
            f"Cost per frame on this machine ({o['threads']} torch threads), {o['input']} input -> "
            f"{o['output']} output: {o['model']} {o['model_ms']:.0f} ms; guard {o['guard_ms']:.1f} ms "
            f"({100 * o['guard_ms'] / o['model_ms']:.1f} % of the model); colour fix wavelet "
            f"{o['colour_fix_wavelet_ms']:.1f} ms, gaussian {o['colour_fix_gaussian_ms']:.1f} ms.",
        ]
    auto = result.get("auto")
    if auto:
        right = sum(c["right"] for c in auto)
        lines += [
            "",
            "### `--preset auto`",
            "",
            f"`auto` samples 6 frames spread over the video and measures their flatness (the share of 4x4 "
            f"blocks spanning at most 2 grey levels); a median of 0.4 or more is cartoon/graphics (preset "
            f"`anime`), below is footage (preset `fidelity`). It chose right on {right} of {len(auto)} clips "
            "(footage: the sample clips as shipped and bikes with a burnt-in subtitle; the others are "
            "libx264 crf 18 copies of synthetic anime-style frames and test patterns):",
            "",
            "| clip | flatness (median of 6) | chose | right answer |",
            "|---|---|---|---|",
        ]
        for c in auto:
            mark = "" if c["right"] else " (wrong)"
            lines.append(f"| {c['clip']} | {c['flatness']:.2f} | {c['chosen']}{mark} | {c['expected']} |")
    return "\n".join(lines) + "\n"


def _encode_frames(settings: Settings, frames: np.ndarray, dest: Path) -> Path:
    """Encode RGB uint8 frames to ``dest`` (libx264 crf 18 yuv420p, 25 fps: a typical lossy copy)."""
    _, h, w, _ = frames.shape
    argv = [settings.ffmpeg, "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
            "-s", f"{w}x{h}", "-r", "25", "-i", "-", "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p",
            str(dest)]  # fmt: skip
    proc = subprocess.run(argv, input=frames.tobytes(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise ExternalToolError(argv, proc.returncode, proc.stderr.decode(errors="replace"), what="ffmpeg")
    return dest


def auto_cases(settings: Settings, workdir: Path) -> list[dict[str, Any]]:
    """What ``--preset auto`` picks for each clip at hand, next to the right answer.

    Footage (the three sample clips, and bikes with a burnt-in subtitle) should get ``fidelity``;
    anime-style and graphics clips (lossy x264 copies, as users have them) ``anime``.
    """
    from vsrflow.bench.clips import sample_path
    from vsrflow.media.content import classify
    from vsrflow.models.registry import CONTENT_PRESETS

    workdir.mkdir(parents=True, exist_ok=True)
    clips: list[tuple[str, Path, str]] = [
        (n, sample_path(settings, n), "fidelity") for n in ("bikes", "carphone", "bigbuckbunny")
    ]
    bikes = _clip_frames(settings, "bikes", (640, 272), 8)  # full size: a downscale would smooth the grain
    subbed = np.stack([burn_subtitle(f) for f in bikes])
    clips.append(("bikes+subtitle", _encode_frames(settings, subbed, workdir / "bikes-sub.mp4"), "fidelity"))
    anime = np.stack([anime_frame((320, 240), seed) for seed in range(8)])
    clips.append(("anime-style", _encode_frames(settings, anime, workdir / "anime.mp4"), "anime"))
    for pattern in PATTERNS:
        frames = pattern_frames(pattern, (320, 240), 8, ffmpeg=settings.ffmpeg)
        clips.append((pattern, _encode_frames(settings, frames, workdir / f"{pattern}.mp4"), "anime"))
    out = []
    for name, path, expected in clips:
        guess = classify(path)
        chosen = CONTENT_PRESETS[guess.kind]
        out.append({"clip": name, "expected": expected, "chosen": chosen, "flatness": guess.flatness,
                    "per_frame": list(guess.per_frame), "right": chosen == expected})  # fmt: skip
    return out
