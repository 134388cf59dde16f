"""Side by side before a long run: chosen frames of an input (bicubic to the output's size) next to
the same frames of its upscale, as one PNG strip or a self-contained HTML page with a slider.

Contract: frames are matched by display index (``vsrflow upscale`` is frame-exact); the input panel
is the same bicubic enlargement the evaluation report shows (:mod:`vsrflow.metrics.picks`); every
pixel of the output panel is the output's own (no resize). Indices past either source's end are
an InputError naming the index and the frame counts.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from vsrflow.errors import InputError
from vsrflow.files import atomic_write_bytes
from vsrflow.media.images import Image, write_image
from vsrflow.metrics.picks import close_frames, pick_frames, spread_indices
from vsrflow.metrics.sources import iter_frames

#: Pixels of neutral grey between panels and rows of the strip.
GAP = 4


def frame_count(path: Path) -> int:
    """Frames of ``path`` (a video, an image: 1, or a folder of images)."""
    from vsrflow.media.images import is_image, list_images
    from vsrflow.media.probe import probe

    if path.is_dir():
        return len(list_images(path))
    if is_image(path):
        return 1
    return probe(path).frame_count


def _size_of(path: Path) -> tuple[int, int]:
    frames = iter_frames(path)
    try:
        first = next(frames)
    except StopIteration:
        raise InputError(f"{path} has no frames", hint="check the file") from None
    finally:
        close_frames(frames)
    return first.shape[1], first.shape[0]


def compare_frames(
    source: Path, upscaled: Path, indices: Sequence[int] | None = None, count: int = 3
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``(index, input bicubic to the output size, output)`` RGB uint8 for each chosen frame.

    ``indices`` (default: ``count`` frames spread evenly, first and last included) index both files.
    """
    n_in, n_out = frame_count(source), frame_count(upscaled)
    wanted = list(indices) if indices else spread_indices(min(n_in, n_out), count)
    bad = [i for i in wanted if not 0 <= i < min(n_in, n_out)]
    if bad:
        raise InputError(
            f"frame {bad[0]} is not in both files ({source}: {n_in} frames, {upscaled}: {n_out})",
            hint=f"choose frames 0..{min(n_in, n_out) - 1}",
        )
    size = _size_of(upscaled)
    before = pick_frames(source, full=wanted, thumbs=(), size=size, thumb_size=(1, 1)).full
    after = pick_frames(upscaled, full=wanted, thumbs=(), size=size, thumb_size=(1, 1)).full
    return [(i, before[i], after[i]) for i in wanted]


def write_strip(path: Path, frames: Sequence[tuple[int, np.ndarray, np.ndarray]]) -> None:
    """One row per frame: input (bicubic) | output, ``GAP`` grey pixels between; a PNG (or any image)."""
    h, w = frames[0][1].shape[:2]
    grey = np.full((h, GAP, 3), 128, np.uint8)
    rows = [np.hstack([a, grey, b]) for _, a, b in frames]
    sep = np.full((GAP, 2 * w + GAP, 3), 128, np.uint8)
    strip = rows[0]
    for row in rows[1:]:
        strip = np.vstack([strip, sep, row])
    write_image(path, Image(np.ascontiguousarray(strip), None, False))


def _data_url(rgb: np.ndarray) -> str:
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode()


def write_slider(
    path: Path, frames: Sequence[tuple[int, np.ndarray, np.ndarray]], source: Path, upscaled: Path
) -> None:
    """A self-contained HTML page (images inline): per frame, drag to wipe from input to output."""
    h, w = frames[0][1].shape[:2]
    blocks = []
    for index, before, after in frames:
        blocks.append(
            f'<figure><div class="wipe" style="width:{w}px;height:{h}px">'
            f'<img src="{_data_url(before)}" alt="input frame {index}">'
            f'<img class="top" src="{_data_url(after)}" alt="output frame {index}"></div>'
            f'<input type="range" min="0" max="100" value="50" aria-label="wipe frame {index}">'
            f"<figcaption>frame {index}: left input (bicubic), right output</figcaption></figure>"
        )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vsrflow compare</title>
<style>
body {{ font-family: sans-serif; background: #222; color: #ddd; }}
.wipe {{ position: relative; image-rendering: pixelated; }}
.wipe img {{ position: absolute; left: 0; top: 0; width: 100%; height: 100%; }}
.wipe .top {{ clip-path: inset(0 0 0 50%); }}
input[type=range] {{ width: {w}px; }}
</style></head><body>
<h1>{html.escape(source.name)} &rarr; {html.escape(upscaled.name)}</h1>
{"".join(blocks)}
<script>
for (const fig of document.querySelectorAll("figure")) {{
  const top = fig.querySelector(".top"), range = fig.querySelector("input");
  range.addEventListener("input", () => {{ top.style.clipPath = `inset(0 0 0 ${{range.value}}%)`; }});
}}
</script></body></html>
"""
    atomic_write_bytes(path, page.encode())
