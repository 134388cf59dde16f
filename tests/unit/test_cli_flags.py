"""One spelling per flag across commands, whole names only, and "did you mean" for typos."""

from __future__ import annotations

import pytest

from vsrflow.cli import build_parser


def _parse(argv: list[str]) -> object:
    return build_parser().parse_args(argv)


ENCODING = {
    "upscale": ["upscale", "in.mp4", "-o", "out.mp4"],
    "submit": ["submit", "in.mp4", "-o", "out.mp4"],
    "bench": ["bench"],
}


@pytest.mark.parametrize("command", list(ENCODING))
def test_encoder_preset_is_spelled_the_same_everywhere(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parse([*ENCODING[command], "--encoder-preset", "slow"])
    assert args.encoder_preset == "slow"  # type: ignore[attr-defined]
    assert capsys.readouterr().err == ""
    for old in ("--preset-x264", "--x264-preset"):
        args = _parse([*ENCODING[command], old, "fast"])
        assert args.encoder_preset == "fast"  # type: ignore[attr-defined]
        assert f"{old} is deprecated; use --encoder-preset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse([*ENCODING[command], "--help"])
    shown = capsys.readouterr().out
    assert "--encoder-preset" in shown and "--preset-x264" not in shown and "--x264-preset" not in shown


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["upscale", "a", "-o", "b", "--presetx264", "slow"],
            "--presetx264 (did you mean --encoder-preset?)",
        ),
        (["upscale", "a", "-o", "b", "--overwite"], "--overwite (did you mean --overwrite?)"),
        (["--quite", "probe", "a"], "--quite (did you mean --quiet?)"),
        (["models", "lst"], "did you mean 'list'?"),
        (["upscle", "a"], "did you mean 'upscale'?"),
    ],
)
def test_unknown_flags_get_a_suggestion(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        _parse(argv)
    assert info.value.code == 2
    assert expected in capsys.readouterr().err


def test_abbreviations_are_not_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    """`--pre` is not silently `--preset` (nor `--overw` `--overwrite`): a typo is an error."""
    for flag in (["--pre", "anime"], ["--overw"]):
        with pytest.raises(SystemExit):
            _parse(["upscale", "a", "-o", "b", *flag])
        assert "unrecognized arguments" in capsys.readouterr().err


def test_scale_defaults_to_the_models_native_scale_everywhere() -> None:
    for argv in (
        ["upscale", "a", "-o", "b"],
        ["submit", "a", "-o", "b"],
        ["run", "--input-dir", "i", "--output-dir", "o"],
    ):
        assert _parse(argv).scale is None  # type: ignore[attr-defined]
