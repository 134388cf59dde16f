"""Colour metadata: FFmpeg enum numbers <-> names, and the matrix/range used for RGB conversion.

Names are the ones ffmpeg/ffprobe print and accept (``-colorspace bt709``, ``-color_range tv``), so
they can be passed straight to the CLI. Conversion choices (documented contract of the media layer):

* The YUV<->RGB matrix is the stream's tagged matrix. Untagged streams use BT.601 for SD
  (width < 1280 and height <= 576) and BT.709 otherwise, the convention players follow.
* The range is the tagged range; untagged YUV is limited ("tv") except ``yuvj*`` formats ("pc").
* RGB pixel formats (gbrp, rgb24, ...) have no matrix: conversion is a repack.
"""

from __future__ import annotations

from av.video.reformatter import ColorRange, Colorspace, Interpolation

#: swscale flags for YUV -> RGB (reader). ACCURATE_RND rounds instead of truncating (the default
#: reads flat colours up to 2 levels dark); FULL_CHR_H_INT interpolates chroma at full resolution;
#: BITEXACT gives identical pixels on every CPU, so chunks and reruns agree.
READ_SWS_FLAGS = (
    Interpolation.BILINEAR
    | Interpolation.ACCURATE_RND
    | Interpolation.FULL_CHR_H_INT
    | Interpolation.BITEXACT
)

#: READ_SWS_FLAGS for sources deeper than 8 bits (-> rgb48le). swscale's FULL_CHR_H_INT path to
#: rgb48 is broken in PyAV's bundled FFmpeg: a flat (64, 128, 192) 10-bit frame read back as
#: (1, 3, 192), so every 10-bit video came out with wrecked colours. Plain bilinear chroma is correct.
READ_SWS_FLAGS_DEEP = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.BITEXACT

#: swscale flags for RGB -> YUV (writer). Measured on testsrc2: adding FULL_CHR_H_INP here makes the
#: YUV -> RGB -> YUV round trip worse (chroma mean error 7.2 vs 6.1 levels), so it is left out.
WRITE_SWS_FLAGS = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.BITEXACT

#: AVColorPrimaries -> ffmpeg name (unspecified/reserved are absent, i.e. None).
PRIMARIES: dict[int, str] = {
    1: "bt709",
    4: "bt470m",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "film",
    9: "bt2020",
    10: "smpte428",
    11: "smpte431",
    12: "smpte432",
    22: "ebu3213",
}

#: AVColorTransferCharacteristic -> ffmpeg name.
TRANSFERS: dict[int, str] = {
    1: "bt709",
    4: "gamma22",
    5: "gamma28",
    6: "smpte170m",
    7: "smpte240m",
    8: "linear",
    9: "log100",
    10: "log316",
    11: "iec61966-2-4",
    12: "bt1361e",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    17: "smpte428",
    18: "arib-std-b67",
}

#: AVColorSpace (the YUV matrix) -> ffmpeg name.
MATRICES: dict[int, str] = {
    0: "gbr",
    1: "bt709",
    4: "fcc",
    5: "bt470bg",
    6: "smpte170m",
    7: "smpte240m",
    8: "ycgco",
    9: "bt2020nc",
    10: "bt2020c",
    11: "smpte2085",
    12: "chroma-derived-nc",
    13: "chroma-derived-c",
    14: "ictcp",
}

#: AVColorRange -> ffmpeg name.
RANGES: dict[int, str] = {1: "tv", 2: "pc"}

_SWS_MATRIX: dict[str, Colorspace] = {
    "bt709": Colorspace.ITU709,
    "bt470bg": Colorspace.ITU601,
    "smpte170m": Colorspace.ITU601,
    "smpte240m": Colorspace.SMPTE240M,
    "fcc": Colorspace.FCC,
    "bt2020nc": Colorspace.BT2020,
    "bt2020c": Colorspace.BT2020,
}


#: Luma coefficients (Kr, Kb) per matrix name, for the exact full-range path in the writer.
LUMA_COEFFS: dict[str, tuple[float, float]] = {
    "bt709": (0.2126, 0.0722),
    "bt470bg": (0.299, 0.114),
    "smpte170m": (0.299, 0.114),
    "smpte240m": (0.212, 0.087),
    "fcc": (0.30, 0.11),
    "bt2020nc": (0.2627, 0.0593),
    "bt2020c": (0.2627, 0.0593),
}


def name_of(table: dict[int, str], value: int | None) -> str | None:
    """Name for an FFmpeg enum value, or None when unspecified/unknown."""
    if value is None:
        return None
    return table.get(int(value))


def value_of(table: dict[int, str], name: str | None) -> int | None:
    """Inverse of :func:`name_of` (None when the name is None or unknown)."""
    if name is None:
        return None
    for key, val in table.items():
        if val == name:
            return key
    return None


def effective_matrix(color_matrix: str | None, width: int, height: int) -> str:
    """The matrix name used for conversion: the tag, else BT.601 for SD and BT.709 for HD."""
    if color_matrix in _SWS_MATRIX:
        return color_matrix
    return "bt709" if width >= 1280 or height > 576 else "smpte170m"


def effective_range(color_range: str | None, pix_fmt: str) -> str:
    """The range name used for conversion: the tag, else 'pc' for yuvj* formats and 'tv' otherwise."""
    if color_range in ("tv", "pc"):
        return color_range
    return "pc" if pix_fmt.startswith("yuvj") else "tv"


def sws_matrix(matrix: str) -> Colorspace:
    """swscale matrix constant for a matrix name from :func:`effective_matrix`."""
    return _SWS_MATRIX[matrix]


def sws_range(range_name: str) -> ColorRange:
    """swscale range constant for 'tv' / 'pc'."""
    return ColorRange.JPEG if range_name == "pc" else ColorRange.MPEG
