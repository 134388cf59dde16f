"""Typed description of a built model: what the engine needs to feed it correctly.

This is the contract between ``vsrflow.models`` (which builds networks) and ``vsrflow.engine``
(which pads, tiles and batches frames for them). It holds no torch objects.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelDescriptor:
    """What an architecture instance needs from its input and gives as output.

    Attributes:
        arch: architecture name (``rrdbnet``, ``srvgg``, ``span``).
        scale: native integer scale factor; output is ``(H*scale, W*scale)`` for input ``(H, W)``.
        in_channels: input channels (3, RGB).
        out_channels: output channels (3, RGB).
        size_multiple: input height and width must be multiples of this (e.g. 4 for RRDBNet x1
            which pixel-unshuffles by 4; 1 for plain convolutional nets). The engine pads.
        min_size: smallest input side (pixels, after padding) the network accepts.
        receptive_radius: pixels of context on each side that influence one output pixel, at
            input resolution. Tiles overlapping by at least this much are seamless (exact for
            purely local operators, up to float rounding). ``None`` means unbounded (global ops).
        input_range: (low, high) of the expected input tensor values, float32, usually (0, 1).
        default_tile: tile core side (input pixels) the engine uses when the caller does not
            choose one; ``None`` = whole frames. Set for models whose activation memory at 1080p
            would not fit a GPU (transformers), so the default run stays bounded.
        temporal: the module is recurrent over frames (see ``vsrflow.models.arch.egvsr``): it
            has ``step(x, state) -> (y, state)`` and is fed frames in display order, whole (never
            tiled), carrying state; ``forward`` is not used by the engine.
        warmup_frames: for temporal models, how many frames before a chunk's first frame to run
            (outputs discarded) so the recurrent state at the chunk start matches an unchunked run.
    """

    arch: str
    scale: int
    in_channels: int = 3
    out_channels: int = 3
    size_multiple: int = 1
    min_size: int = 1
    receptive_radius: int | None = None
    input_range: tuple[float, float] = (0.0, 1.0)
    default_tile: int | None = None
    temporal: bool = False
    warmup_frames: int = 0
