"""The local Slurm emulator (slurm/emulator): real slurmctld/slurmd daemons on this machine.

One emulator per module, in a temporary state dir on free ports: a cpu partition (1 node) and a
gpu partition (2 nodes x 2 fake GPUs). Needs the Debian packages from ``make slurm-deps``; when
they are missing the tests fail (they never skip), because the Slurm executor depends on them.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from vsrflow.localstack.slurm import SlurmLayout, emulator_env, free_port_block, search_path

# Slow (real Slurm daemons): `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EMU = REPO / "slurm" / "emulator"
SEARCH_PATH = search_path()
TERMINAL = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
}
GPUS_PER_NODE = 2
#: The tests' cluster (cpu1, gpu1, gpu2): start.sh's default CPUs and ClusterName, a shorter timeout.
LAYOUT = SlurmLayout(
    cpu_nodes=1,
    gpu_nodes=2,
    gpus_per_node=GPUS_PER_NODE,
    cpus_per_node=4,
    cluster="vsrflow",
    start_timeout_s=45,
)
N_NODES = LAYOUT.node_count


@dataclass
class Slurm:
    env: dict[str, str]
    state: Path
    work: Path
    bin_dir: Path

    def run(self, *argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.bin_dir / argv[0]), *argv[1:]],
            env=self.env,
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def sbatch(self, *args: str) -> str:
        out = self.run("sbatch", "--parsable", "-D", str(self.work), *args).stdout.strip()
        return out.split(";")[0]

    def jobs(self, job_id: str) -> list[dict[str, str]]:
        """``scontrol show job -o`` records (one per array task or pending task range)."""
        out = self.run("scontrol", "show", "job", "-o", job_id).stdout
        return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.splitlines() if line.strip()]

    def wait_done(self, *job_ids: str, timeout: float = 30) -> dict[str, list[dict[str, str]]]:
        """Poll until every task of every job is in a terminal state; fail with the queue otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            records = {jid: self.jobs(jid) for jid in job_ids}
            if all(r and all(t["JobState"] in TERMINAL for t in r) for r in records.values()):
                return records
            if time.monotonic() > deadline:
                queue = self.run("squeue", "-o", "%i %T %r %E", check=False).stdout
                raise AssertionError(f"jobs {job_ids} not finished after {timeout}s:\n{queue}\n{records}")
            time.sleep(0.2)

    def script(self, name: str, body: str) -> Path:
        path = self.work / name
        path.write_text("#!/bin/bash\nset -eu\n" + body)
        path.chmod(0o755)
        return path


@contextlib.contextmanager
def running_emulator(root: Path, base_port: int) -> Iterator[Slurm]:
    """A started emulator (state and work dirs under ``root``) for the workflow tests; stopped after."""
    sinfo = shutil.which("sinfo", path=SEARCH_PATH)
    if not shutil.which("slurmctld", path=SEARCH_PATH) or not sinfo:
        pytest.fail("Slurm is not installed: run `make slurm-deps`", pytrace=False)
    state, work = root / "state", root / "work"
    work.mkdir(parents=True)
    env = emulator_env(state, base_port, LAYOUT)
    run: dict[str, Any] = {"capture_output": True, "text": True, "stdin": subprocess.DEVNULL, "check": False}
    start = time.monotonic()
    proc = subprocess.run(["bash", str(EMU / "start.sh")], env=env, timeout=90, **run)
    try:
        assert proc.returncode == 0, f"start.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        conf = state / "etc" / "slurm.conf"
        assert f"export SLURM_CONF={conf}" in proc.stdout
        print(f"\nslurm emulator: start to idle {time.monotonic() - start:.2f}s")
        env["SLURM_CONF"] = str(conf)
        yield Slurm(env=env, state=state, work=work, bin_dir=Path(sinfo).parent)
    finally:
        stop = subprocess.run(["bash", str(EMU / "stop.sh")], env=env, timeout=300, **run)
        assert stop.returncode == 0, f"stop.sh failed:\n{stop.stdout}\n{stop.stderr}"
        leftover = list((state / "run").glob("*.pid")) if (state / "run").exists() else []
        assert not leftover, f"pid files left behind: {leftover}"


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slurm]:
    ctld = shutil.which("slurmctld", path=SEARCH_PATH)
    sinfo = shutil.which("sinfo", path=SEARCH_PATH)
    if not ctld or not shutil.which("slurmd", path=SEARCH_PATH) or not sinfo:
        pytest.fail(
            "Slurm is not installed (slurmctld/slurmd/sinfo not found on PATH or /usr/sbin): "
            "run `make slurm-deps` (Debian packages slurmctld slurmd slurm-client)",
            pytrace=False,
        )
    with running_emulator(tmp_path_factory.mktemp("slurm"), free_port_block(1 + N_NODES)) as emulator:
        yield emulator


def test_partitions_and_nodes(slurm: Slurm) -> None:
    out = slurm.run("sinfo", "-h", "-o", "%R %D %G %t").stdout.split("\n")
    rows = {line.split()[0]: line.split()[1:] for line in out if line.strip()}
    assert set(rows) == {"cpu", "gpu"}, out
    assert rows["cpu"][0] == "1" and rows["gpu"][0] == "2", rows
    assert rows["gpu"][1] == f"gpu:{GPUS_PER_NODE}", rows
    default = slurm.run("sinfo", "-h", "-o", "%P").stdout.split()
    assert "cpu*" in default, default
    assert all(row[2] == "idle" for row in rows.values()), rows
    for dev in (slurm.state / "dev").iterdir():
        assert dev.is_char_device(), dev


def test_start_is_idempotent(slurm: Slurm) -> None:
    pids = sorted(p.read_text() for p in (slurm.state / "run").glob("*.pid"))
    assert len(pids) == 1 + N_NODES
    proc = subprocess.run(
        ["bash", str(EMU / "start.sh")],
        env=slurm.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.read_text() for p in (slurm.state / "run").glob("*.pid")) == pids


def test_cpu_job_writes_output(slurm: Slurm) -> None:
    out = slurm.work / "cpu.out"
    job = slurm.sbatch("-p", "cpu", "-o", str(out), "--wrap", "echo hello from $SLURMD_NODENAME")
    records = slurm.wait_done(job)
    assert records[job][0]["JobState"] == "COMPLETED", records
    assert out.read_text().strip() == "hello from cpu1"


def test_gpu_array_throttle_and_devices(slurm: Slurm) -> None:
    outdir = slurm.work / "array"
    outdir.mkdir()
    task = slurm.script(
        "gpu_task.sh",
        "start=$(date +%s.%N)\nsleep 2\nend=$(date +%s.%N)\n"
        'echo "cvd=${CUDA_VISIBLE_DEVICES:-} $start $end $SLURMD_NODENAME"'
        f" > {outdir}/$SLURM_ARRAY_TASK_ID.txt\n",
    )
    job = slurm.sbatch(
        "-p", "gpu", "--gres=gpu:1", "--array=0-3%2", "-o", str(outdir / "%A_%a.log"), str(task)
    )
    records = slurm.wait_done(job, timeout=300)
    assert {t["JobState"] for t in records[job]} == {"COMPLETED"}, records
    intervals = []
    for i in range(4):
        cvd, start, end, node = (outdir / f"{i}.txt").read_text().split()
        assert cvd != "cvd=", f"task {i} saw no CUDA_VISIBLE_DEVICES"
        assert node in {"gpu1", "gpu2"}
        intervals.append((float(start), float(end)))
    events = sorted(
        [(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1])
    )
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    # 4 free GPUs: only the %2 throttle keeps it at 2; and 2 tasks do run side by side.
    assert peak == 2, intervals


def test_afterok_chain_runs_in_order(slurm: Slurm) -> None:
    log = slurm.work / "chain.txt"
    stage = slurm.script(
        "stage.sh",
        f'echo "$1 start $(date +%s.%N)" >> {log}\nsleep 0.5\necho "$1 end $(date +%s.%N)" >> {log}\n',
    )
    t0 = time.monotonic()
    a = slurm.sbatch("-p", "cpu", "-o", "/dev/null", str(stage), "A")
    b = slurm.sbatch("-p", "gpu", "--gres=gpu:1", "-d", f"afterok:{a}", "-o", "/dev/null", str(stage), "B")
    c = slurm.sbatch("-p", "cpu", "-d", f"afterok:{b}", "-o", "/dev/null", str(stage), "C")
    records = slurm.wait_done(a, b, c, timeout=300)
    print(f"\nslurm emulator: 3-stage afterok chain {time.monotonic() - t0:.2f}s")
    assert all(r[0]["JobState"] == "COMPLETED" for r in records.values()), records
    times = {}
    for line in log.read_text().splitlines():
        name, what, stamp = line.split()
        times[(name, what)] = float(stamp)
    assert times[("A", "end")] <= times[("B", "start")]
    assert times[("B", "end")] <= times[("C", "start")]


def test_failed_array_task_kills_afterok_and_runs_afternotok(slurm: Slurm) -> None:
    marks = slurm.work / "fail"
    marks.mkdir()
    task = slurm.script(
        "maybe_fail.sh",
        f'if [ "$SLURM_ARRAY_TASK_ID" = 1 ]; then exit 3; fi\ntouch {marks}/task$SLURM_ARRAY_TASK_ID\n',
    )
    arr = slurm.sbatch("-p", "gpu", "--gres=gpu:1", "--array=0-2", "-o", "/dev/null", str(task))
    dep = ["-p", "cpu", "-o", "/dev/null", "--kill-on-invalid-dep=yes"]
    ok = slurm.sbatch(*dep, "-d", f"afterok:{arr}", "--wrap", f"touch {marks}/afterok")
    notok = slurm.sbatch(*dep, "-d", f"afternotok:{arr}", "--wrap", f"touch {marks}/afternotok")
    anyd = slurm.sbatch(*dep, "-d", f"afterany:{arr}", "--wrap", f"touch {marks}/afterany")
    records = slurm.wait_done(arr, ok, notok, anyd, timeout=300)

    states = {t["ArrayTaskId"]: t["JobState"] for t in records[arr]}
    assert states == {"0": "COMPLETED", "1": "FAILED", "2": "COMPLETED"}, states
    assert records[ok][0]["JobState"] == "CANCELLED", records[ok]
    assert records[ok][0]["Reason"] == "DependencyNeverSatisfied", records[ok]
    assert records[notok][0]["JobState"] == "COMPLETED", records[notok]
    assert records[anyd][0]["JobState"] == "COMPLETED", records[anyd]
    assert sorted(p.name for p in marks.iterdir()) == ["afterany", "afternotok", "task0", "task2"]
    # Nothing hangs: none of these jobs is left in the queue.
    queue = slurm.run("squeue", "-h", "-o", "%i %T", "-j", ",".join((arr, ok, notok, anyd))).stdout
    assert queue.strip() == "", queue
    # No accounting daemon: the jobcomp file keeps each task's end state and exit code.
    jobcomp = (slurm.state / "log" / "jobcomp.txt").read_text()
    assert re.search(r"JobState=FAILED .*ExitCode=3:0", jobcomp), jobcomp


def test_compose_and_dockerfile_use_the_same_template() -> None:
    compose = yaml.safe_load((EMU / "compose.yaml").read_text())
    service = compose["services"]["slurm"]
    assert service["build"]["context"] == "."
    assert (EMU / service["build"]["dockerfile"]).is_file()
    assert "slurm-state" in compose["volumes"]
    assert any(v.startswith("slurm-state:") for v in service["volumes"])
    assert set(service["environment"]) >= {"SLURM_EMU_GPU_NODES", "SLURM_EMU_GPUS_PER_NODE"}
    dockerfile = (EMU / "Dockerfile").read_text()
    assert re.search(r"^FROM debian:12", dockerfile, re.M)
    for name in (
        "slurm.conf.tmpl",
        "render.py",
        "start.sh",
        "stop.sh",
        "slurmctld",
        "slurmd",
        "slurm-client",
    ):
        assert name in dockerfile, name


def test_scripts_are_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        pytest.fail("shellcheck not found: run `make slurm-deps`", pytrace=False)
    proc = subprocess.run(
        [
            shellcheck,
            str(EMU / "start.sh"),
            str(EMU / "stop.sh"),
            *map(str, sorted(EMU.parent.glob("*.sbatch"))),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
