"""The one Matroska fact probing needs from the raw bytes: is the file shorter than it says?

A finalised Matroska file states the size of its Segment (the element that holds everything after
the EBML header); a muxer that could not seek back (a live recording, a pipe) writes "unknown"
instead. A file whose bytes end before the stated Segment end was cut short (an incomplete upload
or copy). That is the witness the DURATION tags alone cannot give: a track whose last frame is held
long (an animated GIF's final delay) also declares more time than its packets' default durations
add up to, and is whole.
"""

from __future__ import annotations

from pathlib import Path

_EBML_ID = b"\x1a\x45\xdf\xa3"
_SEGMENT_ID = b"\x18\x53\x80\x67"


def _vint(data: bytes, at: int) -> tuple[int | None, int]:
    """(value, length) of the EBML variable-size integer at ``data[at]``; value None for the
    reserved all-ones "unknown size". Raises ValueError on a malformed or clipped integer."""
    if at >= len(data) or data[at] == 0:
        raise ValueError("no EBML size here")
    first = data[at]
    length = 8 - first.bit_length() + 1
    if at + length > len(data):
        raise ValueError("clipped EBML size")
    value = first & ((1 << (8 - length)) - 1)
    for byte in data[at + 1 : at + length]:
        value = (value << 8) | byte
    return (None if value == (1 << (7 * length)) - 1 else value), length


def segment_is_cut(path: Path) -> bool | None:
    """True when ``path`` (a Matroska/WebM file) ends before its Segment's stated end; False when
    it holds all of it; None when it states no size (unfinalised) or is not laid out as expected."""
    with Path(path).open("rb") as handle:
        head = handle.read(64)
        handle.seek(0, 2)
        size = handle.tell()
    try:
        if head[:4] != _EBML_ID:
            return None
        header_size, length = _vint(head, 4)
        if header_size is None:
            return None
        at = 4 + length + header_size
        if head[at : at + 4] != _SEGMENT_ID:
            return None
        segment_size, length = _vint(head, at + 4)
    except ValueError:
        return None
    if segment_size is None:
        return None
    return at + 4 + length + segment_size > size
