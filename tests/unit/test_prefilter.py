"""Pre-filter options, preset, text form and geometry (pure: no media)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from vsrflow.errors import InputError
from vsrflow.media.condition import Conditioning
from vsrflow.media.prefilter import (
    PRESETS,
    PrefilterRequest,
    Prefilters,
    parse_crop,
    resolve,
    square_width,
)
from vsrflow.workflow.job.spec import JobSpec


def test_sd_preset_turns_everything_on_and_explicit_options_win() -> None:
    sd = PrefilterRequest(preset="sd").effective()
    assert (sd.denoise, sd.strength, sd.deblock, sd.crop, sd.square_pixels) == (
        "nlmeans", "light", "weak", "auto", "on",
    )  # fmt: skip
    mixed = PrefilterRequest(preset="sd", denoise="atadenoise", square_pixels="off").effective()
    assert (mixed.denoise, mixed.deblock, mixed.square_pixels) == ("atadenoise", "weak", "off")
    off = PrefilterRequest().effective()
    assert (off.denoise, off.deblock, off.crop, off.square_pixels) == ("off", "off", "off", "off")
    assert set(PRESETS) == {"off", "sd"}
    assert PrefilterRequest(preset="sd").any_on and PrefilterRequest(crop="auto").any_on
    assert (
        not PrefilterRequest().any_on
        and not PrefilterRequest(
            preset="sd", denoise="off", deblock="off", crop="off", square_pixels="off"
        ).any_on
    )


@pytest.mark.parametrize(
    ("field", "value", "option"),
    [
        ("denoise", "hqdn3d", "--denoise"),
        ("strength", "max", "--denoise-strength"),
        ("deblock", "on", "--deblock"),
        ("preset", "vhs", "--prefilter"),
        ("crop", "704x480", "--crop"),
        ("crop", "703:480:0:0", "--crop"),
        ("square_pixels", "yes", "--square-pixels"),
    ],
)
def test_bad_values_name_the_option(field: str, value: str, option: str) -> None:
    with pytest.raises(InputError, match=option):
        PrefilterRequest(**{field: value})


def test_crop_text() -> None:
    assert parse_crop("auto") == "auto" and parse_crop("off") == "off"
    assert parse_crop("704:560:8:8") == (704, 560, 8, 8)
    with pytest.raises(InputError, match="even"):
        parse_crop("704:560:7:8")


@pytest.mark.parametrize(
    ("width", "sar", "expected"),
    [(720, Fraction(16, 15), 768), (720, Fraction(64, 45), 1024), (704, Fraction(10, 11), 640),
     (720, Fraction(8, 9), 640), (720, Fraction(32, 27), 854), (96, Fraction(16, 15), 102)],
)  # fmt: skip
def test_square_width_rounds_to_even(width: int, sar: Fraction, expected: int) -> None:
    assert square_width(width, sar) == expected


def test_resolve_geometry_and_refusals() -> None:
    pf = resolve(
        PrefilterRequest(preset="sd"),
        width=720,
        height=576,
        sar=Fraction(16, 15),
        detected_crop=(704, 560, 8, 8),
    )
    assert (pf.crop, pf.crop_basis, pf.square_width) == ((704, 560, 8, 8), "auto", 750)
    assert pf.size(720, 576) == (750, 560)
    # A square source is not resampled; a whole-frame crop is no crop.
    flat = resolve(PrefilterRequest(preset="sd"), width=640, height=480, sar=Fraction(1), detected_crop=None)
    assert (flat.crop, flat.square_width) == (None, None) and flat.active  # denoise + deblock
    assert resolve(PrefilterRequest(crop="640:480:0:0"), width=640, height=480, sar=Fraction(1)).crop is None
    with pytest.raises(InputError, match="--crop 640:480:2:0"):
        resolve(PrefilterRequest(crop="640:480:2:0"), width=640, height=480, sar=Fraction(1))


def test_conditioning_text_round_trip_and_context() -> None:
    pf = Prefilters(deblock="weak", denoise="atadenoise", strength="strong", crop=(704, 560, 8, 8),
                    crop_basis="auto", square_width=750, sar=Fraction(16, 15))  # fmt: skip
    for mode, parity, context in [
        ("none", None, 7),
        ("bwdif", "tff", 9),
        ("bwdif-field", "bff", 6),
        ("ivtc", "tff", 15),
    ]:
        cond = Conditioning(mode, parity, pf)
        assert Conditioning.from_text(cond.to_text()) == cond
        assert cond.context == context and cond.active
        # IVTC chunks start on whole 5-frame cycles.
        assert mode != "ivtc" or cond.context % 5 == 0
    assert Conditioning.from_text("bwdif:tff") == Conditioning("bwdif", "tff")
    assert Conditioning().to_text() == "none" and not Conditioning().active
    names = [f["filter"] for f in Conditioning("bwdif", "tff", pf).to_json()["filters"]]  # type: ignore[index]
    assert names == ["deblock", "bwdif", "atadenoise", "crop", "scale", "setsar"]


def test_job_spec_carries_the_request_and_keeps_old_ids() -> None:
    base = {"source": "/in.mpg", "destination": "/out.mkv", "model": "realesr-animevideov3"}
    plain = JobSpec(**base)
    assert "prefilter" not in plain.to_json() and "crop" not in plain.to_json()
    request = PrefilterRequest(preset="sd", crop="704:560:8:8", strength="medium")
    spec = JobSpec(**base, prefilter=request)
    data = spec.to_json()
    assert (data["prefilter"], data["crop"], data["denoise_strength"]) == ("sd", "704:560:8:8", "medium")
    assert JobSpec.from_json(data) == spec
    assert spec.job_id() != plain.job_id()
    with pytest.raises(InputError, match=r"prefilter.*--deblock"):
        JobSpec.from_json({**data, "deblock": "on"})


def test_crop_keeps_the_chroma_grid() -> None:
    from vsrflow.media.condition import crop_alignment

    assert [crop_alignment(p) for p in ("yuv420p", "yuv422p10le", "yuv444p", "yuv411p", "yuv410p")] == [
        (2, 2), (2, 2), (2, 2), (4, 2), (4, 4),
    ]  # fmt: skip
    dv = {"width": 720, "height": 480, "sar": Fraction(8, 9), "align": (4, 2)}
    assert resolve(PrefilterRequest(crop="704:480:8:0"), **dv).crop == (704, 480, 8, 0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="multiples of 4"):
        resolve(PrefilterRequest(crop="702:480:6:0"), **dv)  # type: ignore[arg-type]
