"""Endpoint ports the model server would reject are refused up front, naming the rule and the fix;
the supervisor's restart policy (backoff, limits)."""

from __future__ import annotations

import ast
import os
import socket
from pathlib import Path

import pytest

from vsrflow.config import (
    MAX_ENDPOINT_PORT,
    endpoint_port_rule,
    privileged_port_rule,
)
from vsrflow.errors import InputError
from vsrflow.localstack.slurm import free_port_block
from vsrflow.serving.server import Endpoint, RestartPolicy
from vsrflow.serving.spec import EndpointSpec

HINT = "use a port in 1024..32766 (default 8080)"


def spec(port: int) -> EndpointSpec:
    return EndpointSpec(
        model="realesr-animevideov3", scale=2.0, device="cpu", cache_dir=Path("/c"), port=port
    )


@pytest.mark.parametrize("port", [1024, 8080, 20000, MAX_ENDPOINT_PORT])
def test_ports_the_model_server_accepts(port: int) -> None:
    assert endpoint_port_rule(port) is None
    assert spec(port).port == port


@pytest.mark.parametrize(
    ("port", "rule"),
    [
        # Multi Model Server's own limit: it exits at start with "Invalid port number".
        (32767, "is refused by Multi Model Server, which accepts ports up to 32766 only"),
        (40000, "is refused by Multi Model Server, which accepts ports up to 32766 only"),
        (65535, "is refused by Multi Model Server, which accepts ports up to 32766 only"),
        (0, "is not a TCP port (1..65535)"),
        (70000, "is not a TCP port (1..65535)"),
    ],
)
def test_ports_the_model_server_rejects_name_the_rule_and_the_fix(port: int, rule: str) -> None:
    assert endpoint_port_rule(port) == rule
    with pytest.raises(InputError) as info:
        spec(port)
    assert str(info.value) == f"endpoint port {port} {rule} ({HINT})"


def _rules_as(uid: int | None) -> tuple[str | None, ...]:
    """``privileged_port_rule`` of 80, 1024 and 8080 in a forked child running as ``uid``."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to uid, answer through the pipe, never return into pytest
        try:
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            os.write(write, repr(tuple(privileged_port_rule(p) for p in (80, 1024, 8080))).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        text = fh.read()
    os.waitpid(pid, 0)
    result: tuple[str | None, ...] = ast.literal_eval(text)
    return result


def test_privileged_ports_need_root() -> None:
    """As an unprivileged user (the nodes' service user) a port below 1024 cannot be bound."""
    first = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text().strip())
    uid = 65534 if os.geteuid() == 0 else os.geteuid()
    rule = f"is privileged (below {first}) and this endpoint runs as uid {uid}, not root"
    assert _rules_as(65534 if os.geteuid() == 0 else None) == (rule if first > 80 else None, None, None)
    if os.geteuid() == 0:
        assert _rules_as(None) == (None, None, None)  # root may bind it


def test_a_port_in_use_is_refused_before_the_server_starts(tmp_path: Path) -> None:
    port = free_port_block(1)  # 12000-30000: a port the server would accept
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        endpoint = Endpoint(spec(port), state_dir=tmp_path / "state")
        with pytest.raises(InputError) as info:
            endpoint.start()
    assert f"endpoint port {port} on 127.0.0.1 is already in use: one server per port" in str(info.value)
    assert "pick another --port" in str(info.value)
    assert endpoint.proc is None and not (tmp_path / "state" / "mms.properties").exists()


def test_restart_backoff_doubles_up_to_its_cap() -> None:
    policy = RestartPolicy(backoff_s=1.0, backoff_max_s=30.0)
    assert [policy.delay(n) for n in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert RestartPolicy(backoff_s=0.0).delay(5) == 0.0


@pytest.mark.parametrize(
    "bad",
    [
        {"max_restarts": -1},
        {"window_s": 0},
        {"backoff_s": 5, "backoff_max_s": 1},
        {"health_interval_s": 0},
        {"health_failures": 0},
    ],
)
def test_restart_policy_refuses_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(InputError):
        RestartPolicy(**bad)  # type: ignore[arg-type]
