"""Plain progress lines (what a log or a pipe gets): counts, rate, ETA, and the last line."""

from __future__ import annotations

import logging

import pytest

from vsrflow.engine import progress as progress_mod
from vsrflow.engine.progress import ProgressDisplay, format_eta, progress_line


def test_eta_and_line_formats() -> None:
    assert [format_eta(s) for s in (0, 42.4, 185, 7620, float("inf"))] == [
        "0 s",
        "42 s",
        "3 min 05 s",
        "2 h 07 min",
        "?",
    ]
    assert (
        progress_line("upscale a.mp4", 50, 200, 10.0)
        == "upscale a.mp4: 50/200 frames (25%), 5.00 fps, ETA 30 s"
    )
    assert progress_line("bench", 1, 3, 2.0, "measurements").endswith("0.50 measurements/s, ETA 4 s")
    assert progress_line("x", 0, 10, 0.0).endswith("ETA ?")


def test_display_off_a_terminal_logs_lines_then_the_totals(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress_mod.sys.stderr, "isatty", lambda: False)
    clock = iter(float(t) for t in range(100))
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: next(clock))
    display = ProgressDisplay("job 1", interval=2.0)
    with caplog.at_level(logging.INFO, logger="vsrflow.engine.progress"):
        for done in (10, 20, 30, 40):
            display(done, 40)
        display.close()
        display.close()  # idempotent
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("job 1: 20/40 frames (50%)")  # the first call only started the clock
    assert lines[-1].startswith("job 1: 40/40 frames (100%)") and lines[-1].endswith("ETA 0 s")
    assert len(lines) == 2 and all("fps" in line for line in lines)  # 30/40 came within 2 s


def test_disabled_display_is_silent(caplog: pytest.LogCaptureFixture) -> None:
    display = ProgressDisplay("x", enabled=False)
    with caplog.at_level(logging.INFO):
        display(5, 10)
        display.close()
    assert caplog.records == []
