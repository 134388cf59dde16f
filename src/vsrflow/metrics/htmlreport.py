"""The evaluation report folder: ``index.html`` plus the PNGs it shows and the per-frame CSV.

Layout of ``DIR`` after :func:`write_report`::

    index.html         self-contained page (inline CSS and SVG charts); links only to the files below
    worst_frame.png    close-ups of the frame with the lowest Y-PSNR, around its largest error
    best_frame.png     close-ups of the frame with the highest Y-PSNR, where the reference has detail
    contact_sheet.png  (output | reference) thumbnails spread over the video
    frames.csv         every frame's scores (same columns as ``--csv``)

Memory: the evaluation kept no pixels; this module re-reads each source once
(:func:`vsrflow.metrics.picks.pick_frames`) and keeps only the worst/best frames at full size and
small thumbnails, so memory does not grow with the video length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from vsrflow.media.sidecar import SUFFIX, Provenance
from vsrflow.metrics.closeups import Region, closeup_strip
from vsrflow.metrics.contact import contact_sheet, thumb_size
from vsrflow.metrics.panels import write_png
from vsrflow.metrics.picks import pick_frames, spread_indices
from vsrflow.metrics.report import write_csv
from vsrflow.metrics.results import EvaluationResult, MetricStats
from vsrflow.metrics.svgplot import Marker, Series, line_chart

#: Thumbnails on the contact sheet (the worst and best frames are added when not among them).
SHEET_FRAMES = 12
WORST_COLOUR, BEST_COLOUR = "#d64541", "#2e9e4f"

_LABELS = {
    "psnr_y": ("PSNR Y", "dB", "higher is better"),
    "psnr_rgb": ("PSNR RGB", "dB", "higher is better"),
    "ssim_y": ("SSIM Y", "", "higher is better"),
    "ssim_rgb": ("SSIM RGB", "", "higher is better"),
    "tof": ("tOF", "px", "lower is better"),
}


@dataclass(frozen=True)
class ReportInputs:
    """What was compared: paths as the user gave them, the reference frame size, the --input factor."""

    output: Path
    reference: Path
    input: Path | None
    reference_size: tuple[int, int]
    input_scale: int | None = None
    provenance: Provenance | None = None


#: What the report says when the output has no provenance sidecar (not made by ``vsrflow upscale``).
UNKNOWN = f"unknown (no vsrflow sidecar {SUFFIX})"
#: Why no perceptual metric is shown beside PSNR/SSIM (see docs/quality.md).
PERCEPTUAL_NOTE = (
    "no perceptual metric: ffmpeg here has no libvmaf (VMAF model files) and LPIPS needs "
    "torchvision's ImageNet backbone downloaded at run time, so neither works offline"
)


def provenance_rows(provenance: Provenance | None) -> list[tuple[str, str]]:
    """(label, text) pairs naming the model, preset, scale, colour fix and guard counts."""
    if provenance is None:
        return [(k, UNKNOWN) for k in ("model", "preset", "scale", "colour fix", "guard")]
    p = provenance
    return [
        ("model", p.model),
        ("preset", p.preset or "none (the model was chosen directly)"),
        ("scale", f"x{p.scale:g}"),
        ("colour fix", p.colour_fix),
        ("guard", f"{p.guard_summary()} (--on-artifact {p.on_artifact})"),
    ]


def provenance_lines(provenance: Provenance | None) -> list[str]:
    """The terminal lines of :func:`provenance_rows` (``model : ...``)."""
    return [f"{k:<10}: {v}" for k, v in provenance_rows(provenance)]


def provenance_json(provenance: Provenance | None) -> dict[str, Any]:
    """The JSON summary's ``provenance`` object: the sidecar's fields, or ``known: false``."""
    if provenance is None:
        return {"known": False, "note": UNKNOWN}
    return {"known": True, **provenance.to_json()}


@dataclass(frozen=True)
class Closeup:
    """One close-up picture written to the report (file name, frame, region kind, box)."""

    file: str
    index: int
    region: Region
    box: tuple[int, int, int, int]


def _num(value: float, unit: str) -> str:
    if not math.isfinite(value):
        return "&infin;"
    text = f"{value:.2f}" if unit in ("dB", "px") else f"{value:.4f}"
    return f"{text} {unit}".strip()


def _stats_rows(result: EvaluationResult) -> str:
    rows = []
    for name, (label, unit, better) in _LABELS.items():
        stats: MetricStats | None = result.summary.stats.get(name)
        if stats is None:
            rows.append(
                f"<tr><th>{label}</th><td colspan='3'>n/a (needs 2 frames)</td><td>{better}</td></tr>"
            )
            continue
        note = f" ({stats.infinite} identical frames excluded)" if stats.infinite else ""
        rows.append(
            f"<tr><th>{label}</th><td>{_num(stats.mean, unit)}{note}</td><td>{_num(stats.min, unit)}</td>"
            f"<td>{_num(stats.max, unit)}</td><td>{better}</td></tr>"
        )
    return "\n".join(rows)


def _charts(result: EvaluationResult) -> str:
    frames = result.frames
    worst, best = result.summary.worst_frame, result.summary.best_frame
    markers = [Marker(worst, f"worst {worst}", WORST_COLOUR), Marker(best, f"best {best}", BEST_COLOUR)]
    n = len(frames)
    psnr = line_chart(
        "PSNR per frame (dB)",
        [
            Series("Y", [f.psnr_y for f in frames], "#1f6fb4"),
            Series("RGB", [f.psnr_rgb for f in frames], "#e08a1e"),
        ],
        markers,
        n,
    )
    ssim = line_chart(
        "SSIM per frame",
        [
            Series("Y", [f.ssim_y for f in frames], "#1f6fb4"),
            Series("RGB", [f.ssim_rgb for f in frames], "#e08a1e"),
        ],
        markers,
        n,
    )
    tof = line_chart(
        "tOF per frame step (px, lower is better)", [Series("tOF", [f.tof for f in frames], "#7a4fb5")], [], n
    )
    return psnr + ssim + tof


def _pictures(
    result: EvaluationResult, inputs: ReportInputs, folder: Path, sheet: list[int]
) -> list[Closeup]:
    """Second pass: write the close-up PNGs and the contact sheet; return what the close-ups show."""
    worst, best = result.summary.worst_frame, result.summary.best_frame
    wanted = sorted({worst, best})
    size = inputs.reference_size
    tsize = thumb_size(*size)
    ref = pick_frames(inputs.reference, full=wanted, thumbs=sheet, size=size, thumb_size=tsize)
    out = pick_frames(inputs.output, full=wanted, thumbs=sheet, size=size, thumb_size=tsize)
    low = None
    if inputs.input is not None:
        low = pick_frames(inputs.input, full=wanted, thumbs=(), size=size, thumb_size=tsize)
    label = f"x{inputs.input_scale}" if inputs.input_scale else "upscaled"
    written: list[Closeup] = []
    plan: list[tuple[str, int, Region]] = [("worst_frame.png", worst, "error")]
    if best != worst:
        plan.append(("best_frame.png", best, "detail"))
    for file, index, region in plan:
        strip, box = closeup_strip(
            index=index,
            output=out.full[index],
            reference=ref.full[index],
            upscaled_input=low.full.get(index) if low is not None else None,
            scale_label=label,
            crop=result.scale_crop,
            region=region,
        )
        write_png(folder / file, strip)
        written.append(Closeup(file, index, region, box))
    psnr_y = {f.index: f.psnr_y for f in result.frames}
    image = contact_sheet(sheet, out.thumbs, ref.thumbs, psnr_y, worst=worst, best=best)
    write_png(folder / "contact_sheet.png", image)
    return written


_CSS = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1720px;padding:0 16px;color:#222}
h1{font-size:1.5em;margin-bottom:4px} h2{font-size:1.15em;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}
th,td{padding:4px 12px;border-bottom:1px solid #eee;text-align:left}
td{font-variant-numeric:tabular-nums} .muted{color:#666} .notes li{color:#8a5a00}
.chart{width:100%;max-width:900px;display:block;margin:8px 0}
/* Pictures at their own size (scrolling sideways if the window is narrower): shrinking them
   would shrink their labels and blur the pixels a close-up is there to show. */
.pic{overflow-x:auto;margin:8px 0} .pic img{max-width:none;display:block;image-rendering:pixelated}
code{background:#f3f3f5;padding:1px 4px;border-radius:3px}
"""


def _page(result: EvaluationResult, inputs: ReportInputs, closeups: list[Closeup]) -> str:
    s = result.summary
    by_index = {f.index: f for f in result.frames}
    w, h = inputs.reference_size
    notes = "".join(f"<li>{escape(n)}</li>" for n in result.notes)
    sources = [("output", inputs.output), ("reference", inputs.reference)]
    if inputs.input is not None:
        sources.append(("input (low resolution)", inputs.input))
    source_rows = "".join(f"<tr><th>{k}</th><td><code>{escape(str(p))}</code></td></tr>" for k, p in sources)
    made_rows = "".join(
        f"<tr><th>{k}</th><td>{escape(v)}</td></tr>" for k, v in provenance_rows(inputs.provenance)
    )
    shots = []
    for c in closeups:
        rec = by_index[c.index]
        kind = "Worst" if c.region == "error" else "Best"
        why = "around its largest error" if c.region == "error" else "where the reference has the most detail"
        x, y, bw, bh = c.box
        shots.append(
            f"<h2>{kind} frame: {c.index} (Y-PSNR {_num(rec.psnr_y, 'dB')}, SSIM-Y {rec.ssim_y:.4f})</h2>"
            f"<p class='muted'>Region {bw}x{bh} at ({x}, {y}) {why}, enlarged with nearest neighbour so "
            f"pixels stay visible. The heat map is |Y<sub>output</sub> - Y<sub>reference</sub>|.</p>"
            f"<div class='pic'><img src='{c.file}' alt='{kind.lower()} frame {c.index} close-ups'></div>"
        )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vsrflow evaluation: {escape(inputs.output.name)}</title>
<style>{_CSS}</style></head><body>
<h1>vsrflow evaluation: <code>{escape(inputs.output.name)}</code></h1>
<p class="muted">{len(result.frames)} frame pairs compared at {w}x{h}, border crop {result.scale_crop} px.
Per-frame scores: <a href="frames.csv">frames.csv</a>.</p>
<table>{source_rows}</table>
<h2>How the output was made</h2>
<table class="provenance">{made_rows}</table>
{f'<h2>Notes</h2><ul class="notes">{notes}</ul>' if notes else ""}
<h2>Summary</h2>
<table><tr><th>metric</th><th>mean</th><th>min</th><th>max</th><th></th></tr>
{_stats_rows(result)}</table>
<p class="muted">{PERCEPTUAL_NOTE}.</p>
<p>Worst frame (lowest Y-PSNR): <b>{s.worst_frame}</b>; best frame: <b>{s.best_frame}</b>.</p>
<h2>Per frame</h2>
{_charts(result)}
{"".join(shots)}
<h2>Contact sheet</h2>
<p class="muted">Output (left) and reference (right) of frames spread over the sequence.</p>
<div class="pic"><img src="contact_sheet.png" alt="contact sheet: output and reference thumbnails"></div>
<h2>How this was measured</h2>
<ul class="muted">
<li>Border crop of {result.scale_crop} px on every side; frames as 8-bit RGB.</li>
<li>Y is BT.601: 16 + 65.481 R + 128.553 G + 24.966 B (RGB in [0, 1]), not rounded.</li>
<li>PSNR = 10 log10(255&sup2; / MSE) per frame; the mean is over frames with finite PSNR.</li>
<li>SSIM: 11x11 Gaussian window, sigma 1.5, C1 = (0.01&middot;255)&sup2;, C2 = (0.03&middot;255)&sup2;;
RGB is the mean of the per-channel SSIMs.</li>
<li>tOF: mean |flow(output) - flow(reference)| with OpenCV Farneback (0.5, 3, 15, 3, 5, 1.2, 0)
on grey frames; lower is better.</li>
</ul>
</body></html>
"""


def write_report(result: EvaluationResult, folder: Path, inputs: ReportInputs) -> Path:
    """Write the report folder (see module) for an evaluation of ``inputs``; return ``index.html``.

    Re-reads the sources by index (second pass). Raises :class:`InputError` when a source can no
    longer be read, OSError when ``folder`` cannot be written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    summary = result.summary
    sheet = sorted(
        {*spread_indices(len(result.frames), SHEET_FRAMES), summary.worst_frame, summary.best_frame}
    )
    closeups = _pictures(result, inputs, folder, sheet)
    write_csv(result, folder / "frames.csv")
    page = folder / "index.html"
    page.write_text(_page(result, inputs, closeups), encoding="utf-8")
    return page
