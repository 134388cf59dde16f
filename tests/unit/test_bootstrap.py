"""bootstrap/*.sh: shellcheck clean, and the node scripts run for real in dry-run mode under a
temporary root (DRY_RUN=1 + VSRFLOW_BOOTSTRAP_ROOT): files are written there, commands with effects
outside it are recorded, and the GPU endpoints' readiness is checked for real against stand-ins
that a tiny fake systemd starts from the unit files the script wrote."""

from __future__ import annotations

import hashlib
import http.server
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from vsrflow.cluster.render import render_values
from vsrflow.config import Settings
from vsrflow.localstack.slurm import free_port_block

BOOTSTRAP = REPO / "bootstrap"
# The arguments the cluster template really passes (values/dev.yaml): scripts and template agree.
DEV = render_values(REPO / "infra" / "cluster" / "values" / "dev.yaml").config
QUEUES = {q["Name"]: q for q in DEV["Scheduling"]["SlurmQueues"]}
HEAD_ARGS: list[str] = DEV["HeadNode"]["CustomActions"]["OnNodeConfigured"]["Args"]
CPU_ARGS: list[str] = QUEUES["cpu"]["CustomActions"]["OnNodeConfigured"]["Args"]
GPU_ARGS: list[str] = QUEUES["gpu"]["CustomActions"]["OnNodeConfigured"]["Args"]
COMMON_ARGS = HEAD_ARGS


def _with(args: list[str], **changes: str) -> list[str]:
    """``args`` with flag values replaced: ``_with(a, base_port="9000")`` sets ``--base-port 9000``."""
    out = list(args)
    for name, value in changes.items():
        flag = "--" + name.replace("_", "-")
        out[out.index(flag) + 1] = value
    return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


LIB_SHA256 = _sha((BOOTSTRAP / "lib.sh").read_bytes())
#: What a dry run finds where its recorded `aws s3 cp` would have put the wheel and its lock file.
WHEEL_BYTES = b"PK\x03\x04 stand-in for vsrflow-0.1.0-py3-none-any.whl"
LOCK_BYTES = b"pip==24.2 \\\n    --hash=sha256:" + b"a" * 64 + b"\n"


def _stage(root: Path, *, wheel: bytes = WHEEL_BYTES, lock: bytes = LOCK_BYTES) -> Path:
    """Put a wheel and a requirements file where the node's downloads land under ``root``."""
    wheels = root / "opt" / "vsrflow" / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    (wheels / "vsrflow-0.1.0-py3-none-any.whl").write_bytes(wheel)
    (wheels / "vsrflow-0.1.0-requirements.lock").write_bytes(lock)
    return wheels


def _pinned(args: list[str]) -> list[str]:
    """``args`` with the sha256 of the staged artifacts and of this checkout's lib.sh."""
    pins = {
        "--wheel-sha256": _sha(WHEEL_BYTES),
        "--requirements-sha256": _sha(LOCK_BYTES),
        "--lib-sha256": LIB_SHA256,
    }
    return [pins.get(args[i - 1], a) if i else a for i, a in enumerate(args)]


def _run(
    script: str,
    args: list[str],
    root: Path | None,
    *,
    dry_run: bool = True,
    timeout: float = 60,
    stage: bool = True,
    script_dir: Path = BOOTSTRAP,
    path: str = "/usr/local/bin:/usr/bin:/bin",
) -> subprocess.CompletedProcess[str]:
    """Run a node script; ``stage``: put the stand-in artifacts under ``root`` and pin their hashes."""
    env = {"PATH": path, "HOME": str(root or "/tmp")}
    if dry_run:
        env["DRY_RUN"] = "1"
    if root is not None:
        env["VSRFLOW_BOOTSTRAP_ROOT"] = str(root)
        if stage:
            _stage(root)
    return subprocess.run(
        ["bash", str(script_dir / script), *(_pinned(args) if stage else args)],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def _commands(root: Path) -> list[str]:
    log = root / "commands.log"
    return log.read_text().splitlines() if log.exists() else []


def _env_file(root: Path) -> dict[str, str]:
    return _env_file_at(root / "etc" / "vsrflow" / "vsrflow.env")


def _env_file_at(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: `make slurm-deps` installs it (Debian package shellcheck)"
    scripts = sorted(str(p) for p in BOOTSTRAP.glob("*.sh"))
    assert len(scripts) == 4
    proc = subprocess.run(
        [shellcheck, "-x", "--severity=style", *scripts], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout


def test_every_script_is_strict() -> None:
    for name in ("head-node.sh", "cpu-node.sh", "gpu-node.sh"):
        text = (BOOTSTRAP / name).read_text()
        assert text.startswith("#!/bin/bash\n") and "\nset -euo pipefail\n" in text, name


@pytest.mark.parametrize(
    ("script", "args", "extras"), [("head-node.sh", HEAD_ARGS, "aws"), ("cpu-node.sh", CPU_ARGS, "aws")]
)
def test_head_and_cpu_nodes_install_the_pinned_version_and_write_settings(
    tmp_path: Path, script: str, args: list[str], extras: str
) -> None:
    proc = _run(script, args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    commands = _commands(tmp_path)
    wheel = f"{tmp_path}/opt/vsrflow/wheels/vsrflow-0.1.0-py3-none-any.whl"
    assert (
        "aws s3 cp --only-show-errors --region us-east-1 "
        f"s3://vsrflow-artifacts-dev/wheels/vsrflow-0.1.0-py3-none-any.whl {wheel}"
    ) in commands
    assert f"python3.11 -m venv {tmp_path}/opt/vsrflow/venv" in commands
    lock = f"{tmp_path}/opt/vsrflow/wheels/vsrflow-0.1.0-requirements.lock"
    assert (
        "aws s3 cp --only-show-errors --region us-east-1 "
        f"s3://vsrflow-artifacts-dev/wheels/vsrflow-0.1.0-requirements.lock {lock}"
    ) in commands
    venv = f"{tmp_path}/opt/vsrflow/venv"
    pip = [c for c in commands if " -m pip " in c]
    assert pip == [
        f"{venv}/bin/python -m pip install --quiet --require-hashes --no-deps -r {lock}",
        f"{venv}/bin/python -m pip install --quiet --no-deps --no-index {wheel}",
        f"{venv}/bin/python -m pip check",
    ], pip
    assert extras in proc.stderr
    assert not any(c.startswith(("systemctl", "nvidia-smi")) for c in commands)

    # The env file speaks Settings' language: what vsrflow on the node will actually use.
    settings = Settings.from_env(_env_file(tmp_path))
    assert settings.slurm.cpu_partition == "cpu" and settings.slurm.gpu_partition == "gpu"
    assert settings.slurm.bin_dir == Path("/opt/slurm/bin")
    assert settings.aws.bucket == "vsrflow-media-dev" and settings.aws.region == "us-east-1"
    assert settings.aws.cluster_name == "vsrflow-dev"
    # Notices go out from the cluster: the topic the template passes reaches Settings.
    assert settings.aws.topic_arn == "arn:aws:sns:us-east-1:123456789012:vsrflow-dev-events"
    assert settings.aws.jobs_root == Path("/fsx/vsrflow/jobs")
    assert settings.cache_dir == Path("/fsx/vsrflow/cache")
    assert settings.endpoint.base_port == 8080 and settings.log_level == "DEBUG"
    # The stack's upload rules, which the head node re-derives every job request with.
    assert settings.aws.upload_prefixes == ("uploads/",) and settings.aws.output_prefix == "outputs/"
    assert settings.aws.preset_for("live-action") == ("live-action", 4.0)
    assert settings.aws.max_object_bytes == 53687091200
    assert (tmp_path / "fsx" / "vsrflow" / "jobs").is_dir()
    assert "ready: vsrflow 0.1.0" in proc.stderr

    # Rerunning (a node replaced, a retried action) converges to the same files.
    before = (tmp_path / "etc" / "vsrflow" / "vsrflow.env").read_text()
    assert _run(script, args, tmp_path).returncode == 0
    assert (tmp_path / "etc" / "vsrflow" / "vsrflow.env").read_text() == before


def test_upload_rules_other_than_the_defaults_reach_the_settings(tmp_path: Path) -> None:
    rules = {"upload_prefix": "in/", "output_prefix": "out/", "presets": "films=live-action:4"}
    args = _with(HEAD_ARGS, **rules, max_object_bytes="99")
    assert _run("head-node.sh", args, tmp_path).returncode == 0
    aws = Settings.from_env(_env_file(tmp_path)).aws
    assert (aws.upload_prefixes, aws.output_prefix, aws.max_object_bytes) == (("in/",), "out/", 99)
    assert aws.presets == (("films", "live-action", 4.0),)
    for bad in ({"presets": "films=x:4;reboot"}, {"upload_prefix": "in"}, {"max_object_bytes": "0"}):
        proc = _run("head-node.sh", _with(HEAD_ARGS, **bad), tmp_path)
        assert proc.returncode != 0 and f"--{next(iter(bad)).replace('_', '-')}=" in proc.stderr, proc.stderr


def test_wrapper_loads_the_configuration_and_passes_arguments_verbatim(tmp_path: Path) -> None:
    assert _run("head-node.sh", COMMON_ARGS, tmp_path).returncode == 0
    fake = tmp_path / "opt" / "vsrflow" / "venv" / "bin" / "vsrflow"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/bash\nprintf "%s\\n" "$VSRFLOW_AWS_BUCKET" "$@"\n')
    fake.chmod(0o755)
    wrapper = tmp_path / "usr" / "local" / "bin" / "vsrflow"
    proc = subprocess.run(
        [str(wrapper), "submit", "--job-id", "a b;$(touch x)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["vsrflow-media-dev", "submit", "--job-id", "a b;$(touch x)"]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--region"], "--region needs a value"),
        (["--colour", "blue"], "unknown argument '--colour'"),
        (["--version", ">=0.1"], "--version='>=0.1' is not an exact version"),
        (["--bucket", "bad bucket; rm -rf /"], "--bucket='bad bucket; rm -rf /' is not an S3 bucket name"),
        (["--shared-dir", "/fsx/$(reboot)"], "--shared-dir="),
        (
            ["--topic-arn", "arn:aws:sns:us-east-1:1:t;id"],
            "--topic-arn='arn:aws:sns:us-east-1:1:t;id' is not",
        ),
        (["--wheel-uri", "s3://b/wheels/vsrflow-9.9.9-py3-none-any.whl"], "wheel"),
    ],
)
def test_bad_arguments_fail_before_anything_runs(tmp_path: Path, args: list[str], message: str) -> None:
    proc = _run("head-node.sh", [*COMMON_ARGS, *args], tmp_path)
    assert proc.returncode == 1
    assert "FATAL" in proc.stderr and message in proc.stderr, proc.stderr
    assert _commands(tmp_path) == []
    assert not (tmp_path / "etc").exists()


def test_gpu_model_id_is_validated(tmp_path: Path) -> None:
    args = _with(GPU_ARGS, model="x;reboot")
    proc = _run("gpu-node.sh", args, tmp_path)
    assert proc.returncode == 1 and "--model='x;reboot' is not a model id" in proc.stderr
    assert _commands(tmp_path) == []


def test_dry_run_needs_a_temporary_root_and_real_runs_refuse_one(tmp_path: Path) -> None:
    proc = _run("cpu-node.sh", COMMON_ARGS, None)
    assert proc.returncode == 1 and "DRY_RUN=1 needs VSRFLOW_BOOTSTRAP_ROOT" in proc.stderr
    proc = _run("cpu-node.sh", COMMON_ARGS, tmp_path, dry_run=False)
    assert proc.returncode == 1 and "only for DRY_RUN=1 tests" in proc.stderr


def test_script_without_lib_and_lib_uri_fails_loudly(tmp_path: Path) -> None:
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(BOOTSTRAP / "cpu-node.sh", alone / "cpu-node.sh")
    i = COMMON_ARGS.index("--lib-uri")
    args = _pinned(COMMON_ARGS[:i] + COMMON_ARGS[i + 2 :])
    proc = subprocess.run(
        ["bash", str(alone / "cpu-node.sh"), *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1 and "no lib.sh next to" in proc.stderr


# --- supply chain: lib.sh, the wheel and its requirements are checked before use ---------------


def _fake_aws(bin_dir: Path, served: Path) -> str:
    """A PATH whose `aws s3 cp URI DEST` copies ``served`` to DEST (what S3 would hand out)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    aws = bin_dir / "aws"
    aws.write_text(f'#!/bin/bash\nset -eu\ncp {served} "${{@: -1}}"\n')
    aws.chmod(0o755)
    return f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"


@pytest.mark.parametrize("script", ["head-node.sh", "cpu-node.sh", "gpu-node.sh"])
def test_downloaded_lib_is_sourced_only_when_its_sha256_matches(tmp_path: Path, script: str) -> None:
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(BOOTSTRAP / script, alone / script)
    args = GPU_ARGS if script == "gpu-node.sh" else COMMON_ARGS
    marker = tmp_path / "sourced"
    tampered = tmp_path / "s3-lib.sh"
    tampered.write_text((BOOTSTRAP / "lib.sh").read_text() + f"\ntouch {marker}\n")
    root = tmp_path / "root"
    root.mkdir()
    path = _fake_aws(tmp_path / "bin", tampered)
    proc = _run(script, args, root, script_dir=alone, path=path)
    assert proc.returncode == 1, proc.stderr
    assert "does not match --lib-sha256" in proc.stderr and "not sourcing it" in proc.stderr
    assert not marker.exists() and _commands(root) == []  # nothing of lib.sh ran

    if script != "gpu-node.sh":  # the genuine file passes (GPU nodes need endpoints: tested below)
        path = _fake_aws(tmp_path / "bin", BOOTSTRAP / "lib.sh")
        proc = _run(script, args, root, script_dir=alone, path=path)
        assert proc.returncode == 0, proc.stderr
        assert "ready: vsrflow 0.1.0" in proc.stderr


def test_local_lib_is_checked_too_and_the_pin_is_required(tmp_path: Path) -> None:
    here = tmp_path / "scripts"
    here.mkdir()
    shutil.copy(BOOTSTRAP / "cpu-node.sh", here / "cpu-node.sh")
    (here / "lib.sh").write_text((BOOTSTRAP / "lib.sh").read_text() + "\n# edited\n")
    root = tmp_path / "root"
    root.mkdir()
    proc = _run("cpu-node.sh", COMMON_ARGS, root, script_dir=here)
    assert proc.returncode == 1 and "does not match --lib-sha256" in proc.stderr
    i = COMMON_ARGS.index("--lib-sha256")
    for bad in ([*COMMON_ARGS[:i], *COMMON_ARGS[i + 2 :]], _with(COMMON_ARGS, lib_sha256="ABC")):
        proc = _run("cpu-node.sh", bad, root, stage=False)
        assert proc.returncode == 1 and "--lib-sha256 must be the 64-hex sha256" in proc.stderr
    assert _commands(root) == []


@pytest.mark.parametrize(
    ("script", "args"), [("head-node.sh", HEAD_ARGS), ("cpu-node.sh", CPU_ARGS), ("gpu-node.sh", GPU_ARGS)]
)
@pytest.mark.parametrize("which", ["wheel", "lock"])
def test_tampered_wheel_or_requirements_stop_the_node_before_any_install(
    tmp_path: Path, script: str, args: list[str], which: str
) -> None:
    # The pins are those of the genuine files; the node finds tampered ones.
    wheels = _stage(tmp_path, **{which: (WHEEL_BYTES if which == "wheel" else LOCK_BYTES) + b"evil"})
    proc = _run(script, _pinned(args), tmp_path, stage=False)
    assert proc.returncode == 1, proc.stderr
    name = "vsrflow-0.1.0-py3-none-any.whl" if which == "wheel" else "vsrflow-0.1.0-requirements.lock"
    assert f"{wheels / name} does not match its pinned sha256" in proc.stderr
    commands = _commands(tmp_path)
    assert not any(c.startswith(("python3.11 -m venv", "systemctl")) or " -m pip " in c for c in commands), (
        commands
    )


def test_wheel_and_requirements_pins_are_validated(tmp_path: Path) -> None:
    for flag in ("wheel_sha256", "requirements_sha256"):
        proc = _run("head-node.sh", _with(_pinned(COMMON_ARGS), **{flag: "f" * 63}), tmp_path, stage=False)
        assert proc.returncode == 1 and f"--{flag.replace('_', '-')}=" in proc.stderr
    assert not any(" -m pip " in c for c in _commands(tmp_path))


def test_requirements_without_a_pip_pin_are_refused(tmp_path: Path) -> None:
    lock = b"numpy==2.0.0 --hash=sha256:" + b"b" * 64 + b"\n"
    _stage(tmp_path, lock=lock)
    args = _with(_pinned(COMMON_ARGS), requirements_sha256=_sha(lock))
    proc = _run("cpu-node.sh", args, tmp_path, stage=False)
    assert proc.returncode == 1 and "pins no pip version" in proc.stderr


# --- GPU nodes: endpoints, one per GPU, must come up warm --------------------------------------


def _free_port_pair() -> int:
    """Two consecutive free ports where endpoints may listen (below Multi Model Server's limit)."""
    return free_port_block(2)


class _Ping(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ping" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


class FakeSystemd:
    """Stands in for systemd + ``vsrflow serve``: for every instance of the template unit the
    script enables (seen in the recorded commands), it reads the unit file, expands ``%i``, serves
    /ping on the port ``vsrflow serve --gpu I`` would use (``VSRFLOW_ENDPOINT_BASE_PORT`` of the
    unit's EnvironmentFile + I) and, if ``warm``, appends the ``ready:`` line to the unit's
    StandardOutput log as vsrflow serve does."""

    def __init__(self, root: Path, *, warm: bool) -> None:
        self.root, self.warm = root, warm
        self.started: list[tuple[int, int]] = []  # (gpu, port)
        self.servers: list[http.server.HTTPServer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> FakeSystemd:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def _watch(self) -> None:
        while not self._stop.is_set():
            for line in _commands(self.root):
                m = re.fullmatch(r"systemctl enable --now vsrflow-serve@(\d+)\.service", line)
                if m and int(m.group(1)) not in {g for g, _ in self.started}:
                    self._start("vsrflow-serve@.service", int(m.group(1)))
            time.sleep(0.05)

    def _start(self, unit: str, gpu: int) -> None:
        text = (self.root / "etc" / "systemd" / "system" / unit).read_text().replace("%i", str(gpu))
        exec_start = re.search(r"^ExecStart=(.*)$", text, re.M)
        log = re.search(r"^StandardOutput=append:(.*)$", text, re.M)
        env_file = re.search(r"^EnvironmentFile=(.*)$", text, re.M)
        assert exec_start and log and env_file, text
        argv = exec_start.group(1).split()
        assert argv[1:3] == ["serve", "--model"] and argv[argv.index("--gpu") + 1] == str(gpu), argv
        assert "--port" not in argv  # vsrflow serve --gpu I: base port + I
        env = Settings.from_env(_env_file_at(Path(env_file.group(1))))
        assert env.endpoint.base_port is not None
        port = env.endpoint.base_port + gpu
        server = http.server.HTTPServer(("127.0.0.1", port), _Ping)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        self.started.append((gpu, port))
        if self.warm:
            with open(log.group(1), "a") as fh:
                fh.write(f"ready: http://127.0.0.1:{port} model {argv[3]} on GPU {gpu}\n")


@pytest.fixture()
def base_port() -> Iterator[int]:
    yield _free_port_pair()


def test_gpu_node_starts_one_warm_endpoint_per_gpu(tmp_path: Path, base_port: int) -> None:
    args = _with(GPU_ARGS, gpus="2", base_port=str(base_port), warm_timeout="60")
    with FakeSystemd(tmp_path, warm=True) as systemd:
        proc = _run("gpu-node.sh", args, tmp_path, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert sorted(systemd.started) == [(0, base_port), (1, base_port + 1)]
    assert (
        f"all 2 endpoint(s) of realesr-animevideov3 are warm (ports {base_port}-{base_port + 1})"
        in proc.stderr
    )
    commands = _commands(tmp_path)
    assert commands[0] == "nvidia-smi --list-gpus"
    assert any(" -m pip install --quiet --require-hashes --no-deps -r " in c for c in commands)
    assert "(gpu,serve,aws)" in proc.stderr
    fetch = f"{tmp_path}/usr/local/bin/vsrflow models fetch realesr-animevideov3"
    assert commands.index(fetch) < commands.index("systemctl daemon-reload")
    useradd = "useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vsrflow"
    assert commands.index(useradd) < commands.index("systemctl daemon-reload")
    units = sorted(p.name for p in (tmp_path / "etc" / "systemd" / "system").iterdir())
    assert units == ["vsrflow-serve@.service"]  # one template, an instance per GPU
    unit = _unit_fields(tmp_path / "etc" / "systemd" / "system" / "vsrflow-serve@.service")
    assert (unit["User"], unit["Group"]) == (["vsrflow"], ["vsrflow"])  # endpoints never run as root
    (exec_start,) = unit["ExecStart"]
    assert exec_start == (
        f"{tmp_path}/opt/vsrflow/venv/bin/vsrflow serve --model realesr-animevideov3 --gpu %i "
        "--host 127.0.0.1 --ready-timeout 60"
    )
    # A killed endpoint comes back: systemd restarts `vsrflow serve` whatever its exit, after a
    # pause, and a crash loop ends in a failed unit instead of spinning.
    assert (unit["Restart"], unit["RestartSec"]) == (["always"], ["5"])
    assert (unit["StartLimitIntervalSec"], unit["StartLimitBurst"]) == (["600"], ["5"])
    assert unit["KillMode"] == ["control-group"] and unit["StandardOutput"] == [
        f"append:{tmp_path}/var/log/vsrflow/serve-%i.log"
    ]
    assert _env_file(tmp_path)["VSRFLOW_ENDPOINT_BASE_PORT"] == str(base_port)


def _unit_fields(path: Path) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit file, every value of each key in order."""
    fields: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            fields.setdefault(key, []).append(value)
    return fields


def test_endpoint_unit_passes_systemd_analyze_verify(tmp_path: Path, base_port: int) -> None:
    """systemd's own parser accepts the template unit (instantiated for GPU 0)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    args = _with(GPU_ARGS, gpus="1", base_port=str(base_port), warm_timeout="60")
    with FakeSystemd(tmp_path, warm=True):
        assert _run("gpu-node.sh", args, tmp_path, timeout=90).returncode == 0
    text = (tmp_path / "etc" / "systemd" / "system" / "vsrflow-serve@.service").read_text()
    # The paths it names must exist for verify: the dry run wrote the env file, not the venv.
    exe = tmp_path / "opt" / "vsrflow" / "venv" / "bin" / "vsrflow"
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    units = tmp_path / "verify"
    units.mkdir()
    (units / "vsrflow-serve@.service").write_text(
        text.replace("User=vsrflow", "User=root").replace("Group=vsrflow", "Group=root")
    )
    proc = subprocess.run(
        [analyze, "verify", "--man=no", str(units / "vsrflow-serve@.service") .replace("@.", "@0.")],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "SYSTEMD_UNIT_PATH": f"{units}:"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # verify only warns about a misspelt key or a bad value ("..., ignoring"): none allowed here.
    complaints = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "vsrflow-serve@" in ln]
    assert complaints == [], complaints


def test_gpu_endpoint_ports_must_be_ones_the_model_server_accepts(tmp_path: Path) -> None:
    for base, gpus in (("32766", "2"), ("40000", "1")):
        proc = _run("gpu-node.sh", _with(GPU_ARGS, gpus=gpus, base_port=base), tmp_path)
        assert proc.returncode == 1, proc.stderr
        assert (
            "endpoint ports must be in 1024..32766 (Multi Model Server accepts ports up to 32766 only)"
            in (proc.stderr)
        )
        assert not any(c.startswith("systemctl") for c in _commands(tmp_path))


def test_gpu_node_fails_loudly_when_endpoints_do_not_warm(tmp_path: Path, base_port: int) -> None:
    # Endpoint 0 answers /ping but never finishes its warm-up invocation; endpoint 1 never starts.
    args = _with(GPU_ARGS, gpus="2", base_port=str(base_port), warm_timeout="2")
    with FakeSystemd(tmp_path, warm=False):
        start = time.monotonic()
        proc = _run("gpu-node.sh", args, tmp_path, timeout=60)
        elapsed = time.monotonic() - start
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert "FATAL: model endpoint(s) on GPU 0 1 not warm after 2 s" in last, proc.stderr
    assert elapsed < 30
