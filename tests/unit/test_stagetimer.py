"""StageTimer: per-stage seconds and counts across threads, the synchronising mode, the null timer."""

from __future__ import annotations

import threading
import time

import pytest

from vsrflow.engine.stagetimer import NULL_TIMER, StageTimer


def test_stage_accumulates_seconds_and_calls() -> None:
    t = StageTimer()
    for _ in range(3):
        with t.stage("model"):
            time.sleep(0.01)
    t.add("encode", 0.5, count=2)
    s = t.summary()
    assert list(s) == ["model", "encode"]
    assert s["model"]["calls"] == 3 and s["model"]["seconds"] >= 0.03
    assert s["encode"] == {"seconds": 0.5, "calls": 2, "ms_per_call": 250.0}


def test_stage_counts_a_call_that_raises() -> None:
    t = StageTimer()
    with pytest.raises(ZeroDivisionError), t.stage("model"):
        _ = 1 / 0
    assert t.summary()["model"]["calls"] == 1


def test_iterate_times_each_item_and_passes_them_through() -> None:
    t = StageTimer()
    assert list(t.iterate("decode", iter([1, 2, 3]))) == [1, 2, 3]
    assert t.summary()["decode"]["calls"] == 3  # the final StopIteration adds time, not a call


def test_threads_add_without_losing_updates() -> None:
    t = StageTimer()

    def work() -> None:
        for _ in range(500):
            t.add("x", 0.001)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert t.summary()["x"]["calls"] == 2000
    assert t.summary()["x"]["seconds"] == pytest.approx(2.0)


def test_sync_runs_at_both_ends_of_a_stage() -> None:
    calls: list[str] = []
    t = StageTimer(sync=lambda: calls.append("sync"))
    with t.stage("h2d"):
        calls.append("body")
    assert calls == ["sync", "body", "sync"]


def test_negative_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        StageTimer().add("x", -1.0)


def test_null_timer_records_nothing() -> None:
    with NULL_TIMER.stage("model"):
        pass
    assert list(NULL_TIMER.iterate("decode", [1, 2])) == [1, 2]
    assert NULL_TIMER.summary() == {}
