"""File-name rules for videos: which suffixes vsrflow reads and writes (the one list of each).

Suffixes are lower case with the leading dot; comparisons are case-insensitive (``X.MP4`` is an
MP4). Standard library only: the Lambda package imports it.
"""

from __future__ import annotations

from pathlib import PurePath

from vsrflow.errors import InputError

#: Containers of final outputs (:data:`vsrflow.media.assemble.MUXERS` holds their muxers).
OUTPUT_SUFFIXES: tuple[str, ...] = (".mp4", ".mkv", ".mov", ".m4v")
#: The output container when the input's own cannot be written (Matroska holds every stream kind).
FALLBACK_OUTPUT_SUFFIX = ".mkv"
#: Video files a folder scan (``vsrflow run``) or an upload picks up by default.
INPUT_SUFFIXES: tuple[str, ...] = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")
#: Still images ``vsrflow upscale`` reads and writes (a file, or every such file of a folder).
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
#: Image formats that hold 16 bits per channel (PNG, TIFF); others get 8 bits.
SIXTEEN_BIT_IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".tif", ".tiff")
#: Uploads the S3 trigger accepts unless ``VSRFLOW_AWS_SUFFIXES`` says otherwise.
DEFAULT_UPLOAD_SUFFIXES: tuple[str, ...] = OUTPUT_SUFFIXES


def suffix_of(name: str) -> str:
    """Lower-case suffix of the last path component of ``name`` ('' when it has none)."""
    base = name.rpartition("/")[2]
    stem, dot, ext = base.rpartition(".")
    return "." + ext.lower() if dot and stem and ext else ""


def output_suffix_for(source_name: str) -> str:
    """The output container for a source called ``source_name``: its own suffix if writable, else mkv."""
    suffix = suffix_of(source_name)
    return suffix if suffix in OUTPUT_SUFFIXES else FALLBACK_OUTPUT_SUFFIX


def check_output_suffix(path: PurePath | str) -> str:
    """The lower-case suffix of an output path; InputError naming the path when it cannot be written."""
    suffix = suffix_of(str(path))
    if suffix not in OUTPUT_SUFFIXES:
        raise InputError(
            f"output {path} has an unsupported extension",
            hint=f"use {', '.join(OUTPUT_SUFFIXES[:-1])} or {OUTPUT_SUFFIXES[-1]}",
        )
    return suffix
