"""Per-frame line charts as inline SVG (no plotting library: a few dozen lines of markup).

A chart has one or more series over the frame index, "nice" y ticks, and vertical markers for the
worst and best frames. ``None`` and non-finite values (tOF of frame 0, infinite PSNR of an identical
frame) break the line instead of distorting the axis. Long videos are reduced to a min/max envelope
per horizontal pixel, so the SVG stays small and every dip stays visible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 900, 260
#: Margins (px): TOP holds the title row and, under it, the marker labels, so no text is drawn
#: over the plotted lines.
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 52, 38
FONT_SIZE = 15
FONT = f"font-family='system-ui, sans-serif' font-size='{FONT_SIZE}'"
#: Rough advance of one character at FONT_SIZE (no text metrics in plain SVG), for legend layout.
CHAR_W = 8.5


@dataclass(frozen=True)
class Series:
    """A named line: ``values[i]`` is the value at frame ``i`` (None: no value)."""

    name: str
    values: Sequence[float | None]
    colour: str


@dataclass(frozen=True)
class Marker:
    """A labelled vertical line at frame ``index``."""

    index: int
    label: str
    colour: str


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten)."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks: list[float] = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 10))
    return ticks


def _finite(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _envelope(values: Sequence[float | None], buckets: int) -> list[tuple[float, float | None]]:
    """(x, value) points; with more values than ``2 * buckets``, each bucket's min and max only."""
    if len(values) <= 2 * buckets:
        return [(float(i), v) for i, v in enumerate(values)]
    points: list[tuple[float, float | None]] = []
    size = len(values) / buckets
    for b in range(buckets):
        start, stop = int(b * size), int((b + 1) * size)
        chunk = _finite(values[start:stop])
        if not chunk:
            points.append((float(start), None))
            continue
        points += [(float(start), min(chunk)), ((start + stop - 1) / 2, max(chunk))]
    return points


def _format_tick(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step))) if step > 0 else 0
    return f"{value:.{decimals}f}"


def _marker_labels(markers: Sequence[Marker], sx: Callable[[float], float], right: float) -> list[str]:
    """Marker labels in the row between the title and the plot, left to right, never overlapping.

    A label starts at its marker; one that would run into the previous label moves right, and one
    past the plot's right edge is right-aligned there (the dashed line still marks the frame).
    """
    parts: list[str] = []
    free = 0.0  # first x not yet covered by a label
    for m in sorted(markers, key=lambda m: m.index):
        width = CHAR_W * len(m.label)
        x = max(sx(m.index) - width / 2, free, 0.0)
        x = min(x, right - width)
        parts.append(f"<text x='{x:.1f}' y='{TOP - 10}' {FONT} fill='{m.colour}'>{escape(m.label)}</text>")
        free = x + width + CHAR_W
    return parts


def line_chart(title: str, series: Sequence[Series], markers: Sequence[Marker], frames: int) -> str:
    """An ``<svg>`` element (string) plotting ``series`` over ``frames`` frame indices.

    Returns a short "no data" chart when no series has a finite value (e.g. tOF of one frame).
    """
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    values = [v for s in series for v in _finite(s.values)]
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {WIDTH} {HEIGHT}' class='chart' role='img' "
        f"aria-label='{escape(title)}'>",
        f"<text x='{LEFT}' y='20' {FONT} font-weight='600'>{escape(title)}</text>",
    ]
    if not values:
        parts.append(f"<text x='{LEFT}' y='{TOP + 40}' {FONT} fill='#777'>no values to plot</text></svg>")
        return "".join(parts)
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or max(abs(hi) * 0.01, 0.01)
    ticks = nice_ticks(lo - pad, hi + pad)
    y0, y1 = ticks[0], ticks[-1]
    last = max(frames - 1, 1)

    def sx(x: float) -> float:
        return LEFT + plot_w * x / last

    def sy(v: float) -> float:
        return TOP + plot_h * (1 - (v - y0) / (y1 - y0))

    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    for t in ticks:  # horizontal grid and y labels
        parts.append(
            f"<line x1='{LEFT}' x2='{LEFT + plot_w}' y1='{sy(t):.1f}' y2='{sy(t):.1f}' stroke='#e4e4e8'/>"
        )
        parts.append(
            f"<text x='{LEFT - 6}' y='{sy(t) + 5:.1f}' {FONT} text-anchor='end' fill='#555'>"
            f"{_format_tick(t, step)}</text>"
        )
    for t in nice_ticks(0, last, 8):  # x labels (frame numbers)
        if t <= last and float(t).is_integer():
            parts.append(
                f"<text x='{sx(t):.1f}' y='{HEIGHT - BOTTOM + 19}' {FONT} text-anchor='middle' "
                f"fill='#555'>{int(t)}</text>"
            )
    parts.append(
        f"<text x='{LEFT + plot_w}' y='{HEIGHT - 4}' {FONT} text-anchor='end' fill='#777'>frame</text>"
    )
    for m in markers:
        x = sx(m.index)
        parts.append(
            f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{TOP}' y2='{TOP + plot_h}' stroke='{m.colour}' "
            "stroke-dasharray='4 3'/>"
        )
    for s in series:
        segments: list[list[str]] = [[]]
        for x, v in _envelope(s.values, plot_w):
            if v is None or not math.isfinite(v):
                segments.append([])
                continue
            segments[-1].append(f"{sx(x):.1f},{sy(v):.1f}")
        for seg in segments:
            if len(seg) == 1:  # a lone value (e.g. 2-frame tOF) still shows, as a dot
                cx, cy = seg[0].split(",")
                parts.append(f"<circle cx='{cx}' cy='{cy}' r='3' fill='{s.colour}'/>")
            elif seg:
                parts.append(
                    f"<polyline fill='none' stroke='{s.colour}' stroke-width='1.6' points='{' '.join(seg)}'/>"
                )
    legend_x = WIDTH - RIGHT
    for s in reversed(series):  # legend, right-aligned in the title row
        label = escape(s.name)
        width = round(CHAR_W * len(s.name)) + 26
        legend_x -= width
        parts.append(f"<rect x='{legend_x}' y='12' width='14' height='4' fill='{s.colour}'/>")
        parts.append(f"<text x='{legend_x + 18}' y='20' {FONT} fill='#333'>{label}</text>")
    parts += _marker_labels(markers, sx, LEFT + plot_w)
    parts.append("</svg>")
    return "".join(parts)
