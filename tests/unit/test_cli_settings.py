"""The settings every command shares: downloads, log format, progress interval, quiet."""

from __future__ import annotations

from pathlib import Path

import pytest

from vsrflow.cli import _settings, build_parser
from vsrflow.cli.logs import json_logs
from vsrflow.config import Settings
from vsrflow.errors import InputError, ModelError
from vsrflow.models.registry import get_spec
from vsrflow.models.store import WeightsMissingError, WeightStore


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"VSRFLOW_CACHE_DIR": str(tmp_path), "PATH": "", **extra}


def test_defaults_and_environment(tmp_path: Path) -> None:
    s = Settings.from_env(_env(tmp_path))
    assert (s.no_download, s.log_format, s.progress_interval, s.quiet) == (False, "auto", 5.0, False)
    s = Settings.from_env(
        _env(tmp_path, VSRFLOW_NO_DOWNLOAD="1", VSRFLOW_LOG_FORMAT="JSON", VSRFLOW_PROGRESS_INTERVAL="0.5")
    )
    assert (s.no_download, s.log_format, s.progress_interval) == (True, "json", 0.5)
    with pytest.raises(InputError, match="VSRFLOW_LOG_FORMAT"):
        Settings.from_env(_env(tmp_path, VSRFLOW_LOG_FORMAT="yaml"))
    with pytest.raises(InputError, match="VSRFLOW_PROGRESS_INTERVAL"):
        Settings.from_env(_env(tmp_path, VSRFLOW_PROGRESS_INTERVAL="0"))
    with pytest.raises(InputError, match="VSRFLOW_NO_DOWNLOAD"):
        Settings.from_env(_env(tmp_path, VSRFLOW_NO_DOWNLOAD="maybe"))


def test_log_format_auto_is_json_only_inside_slurm(tmp_path: Path) -> None:
    assert not json_logs(Settings.from_env(_env(tmp_path)))
    assert json_logs(Settings.from_env(_env(tmp_path, SLURM_JOB_ID="42")))
    assert not json_logs(Settings.from_env(_env(tmp_path, SLURM_JOB_ID="42", VSRFLOW_LOG_FORMAT="text")))
    assert json_logs(Settings.from_env(_env(tmp_path, VSRFLOW_LOG_FORMAT="json")))


@pytest.mark.parametrize(
    "argv",
    [
        ["--quiet", "--no-download", "--log-format", "json", "probe", "x"],
        ["probe", "x", "--quiet", "--no-download", "--log-format", "json"],
        ["-q", "models", "--no-download", "list", "--log-format", "json"],
    ],
)
def test_global_options_before_or_after_the_command(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VSRFLOW_CACHE_DIR", str(tmp_path))
    for name in ("VSRFLOW_NO_DOWNLOAD", "VSRFLOW_QUIET", "VSRFLOW_LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    s = _settings(build_parser().parse_args(argv))
    assert (s.quiet, s.no_download, s.log_format) == (True, True, "json")
    plain = _settings(build_parser().parse_args(["probe", "x"]))
    assert (plain.quiet, plain.no_download, plain.log_format) == (False, False, "auto")


def test_missing_weights_are_an_input_error_naming_the_fix(tmp_path: Path) -> None:
    settings = Settings.from_env(_env(tmp_path, VSRFLOW_NO_DOWNLOAD="1"))
    store = WeightStore.from_settings(settings)
    assert not store.obtain
    with pytest.raises(WeightsMissingError) as info:
        store.require(get_spec("SPAN_x4_ch48"))
    assert isinstance(info.value, InputError) and isinstance(info.value, ModelError)
    assert "downloads are off" in info.value.message
    assert info.value.hint and "vsrflow models import-ncnn SPAN_x4_ch48" in info.value.hint
    assert WeightStore.from_settings(Settings.from_env(_env(tmp_path))).obtain
