"""The provenance sidecar: round trip, the path rule, and clear errors for a broken file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vsrflow.errors import InputError
from vsrflow.media.sidecar import FORMAT, Provenance, read_sidecar, sidecar_path, write_sidecar

GUARD = {"policy": "fallback", "checked": 10, "tripped": 3, "redone": 2, "bicubic": 1, "kept": 0,
         "frames": [1, 4, 7], "fallback": "realesr-animevideov3", "worst": "output range -3..4"}  # fmt: skip


def _prov() -> Provenance:
    return Provenance(
        model="SPAN_x2_ch48 (sha256 abc)", model_id="SPAN_x2_ch48", preset="fidelity", scale=2.0,
        colour_fix="off", on_artifact="fallback", guard=dict(GUARD), input="in.mp4", frames=10,
    )  # fmt: skip


def test_round_trip_next_to_the_output(tmp_path: Path) -> None:
    out = tmp_path / "movie.mp4"
    path = write_sidecar(out, _prov())
    assert path == tmp_path / "movie.mp4.vsrflow.json" == sidecar_path(out)
    assert json.loads(path.read_text())["format"] == FORMAT
    assert read_sidecar(out) == _prov()
    assert not list(tmp_path.glob(".*"))  # atomic write leaves no temporary file behind


def test_missing_sidecar_is_none(tmp_path: Path) -> None:
    assert read_sidecar(tmp_path / "other.mp4") is None


def test_guard_summary_names_counts_and_frames() -> None:
    text = _prov().guard_summary()
    assert text == (
        "10 frames checked, 3 tripped (frames 1, 4, 7): 2 redone with realesr-animevideov3, "
        "1 redone with bicubic"
    )
    clean = Provenance("m", "m", None, 4.0, "off", "keep", {**GUARD, "tripped": 0, "redone": 0, "bicubic": 0})
    assert clean.guard_summary() == "10 frames checked, 0 tripped"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{not json", "cannot be read as JSON"),
        ('{"format": "other"}', "expected an object with format"),
        (json.dumps({**_prov().to_json(), "guard": {**GUARD, "tripped": -1}}), "guard tripped -1"),
        (json.dumps({**_prov().to_json(), "scale": 0}), "scale 0"),
        (json.dumps({**_prov().to_json(), "model": None}), "model None"),
    ],
)
def test_broken_sidecar_is_named(tmp_path: Path, text: str, fragment: str) -> None:
    out = tmp_path / "movie.mp4"
    sidecar_path(out).write_text(text)
    with pytest.raises(InputError) as err:
        read_sidecar(out)
    assert fragment in err.value.message and "movie.mp4.vsrflow.json" in err.value.message
