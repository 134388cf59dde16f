"""Fault injection on the local Slurm: kill stages the ways clusters do, check what the job says.

Each case submits one small chunked job (``vsrflow submit --executor slurm``, 50 frames of 64x48
testsrc2, realesr-animevideov3 x2, 25-frame chunks: 2 array tasks) to a fresh local Slurm
(``slurm/emulator``), injects one fault, and waits for ``vsrflow status`` to show a terminal
state. The stage scripts are the real ones; a case that needs a stage to be caught in the middle
copies them and adds a ``sleep`` at the top of that one stage (on its first attempt only), so the
fault lands mid-stage every time, however fast or loaded the machine is.

Cases (expected outcome in brackets):

* ``extract-kill``: extract SIGKILLed mid-stage [failed, Slurm's FAILED 0:9 named, by the guard]
* ``extract-timeout``: extract past its time limit, ``VSRFLOW_SLURM_TIME=1`` [failed, TIMEOUT]
* ``chunk-kill``: array task 1 SIGKILLed [failed naming chunk 1; resubmitting finishes the job]
* ``encode-kill``: encode SIGKILLed [failed, encode FAILED; resubmitting finishes it, chunks kept]
* ``gpu-drained``: every GPU node drained, ``VSRFLOW_SLURM_MAX_WAIT_MINUTES=1`` [status says
  waiting for nodes, then failed with DEADLINE]
* ``node-failure``: the node of a running chunk task goes down [Slurm requeues the task, it reruns
  when the node is back, the job is done]
* ``chain-cancelled``: every job of the chain scancelled by hand, finalize too [``vsrflow status``
  marks the job failed: no job of the chain alive]

Usage: ``python bench/faults.py [--only CASE ...]``; prints the table (case, expected, observed,
ok) and writes ``bench/results/faults-<host>.json``. Takes about 10 minutes (the time limit,
deadline and requeue cases wait for Slurm's own clocks: 1-minute limits, a ~2-minute requeue
delay). Exit status 1 when a case does not match its expectation.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from vsrflow.bench.machine import cpu_name, git_commit, host_tag  # noqa: E402
from vsrflow.localstack.slurm import SlurmLayout, start, stop  # noqa: E402
from vsrflow.workflow.job.slurm import SCRIPTS_DIR  # noqa: E402

MODEL = "realesr-animevideov3"
LAYOUT = SlurmLayout(cpu_nodes=1, gpu_nodes=2, gpus_per_node=1, cpus_per_node=4, cluster="vsrflow-faults")


@dataclass
class Run:
    """One submitted job of a case: its environment, jobs root and the job directory."""

    env: dict[str, str]
    root: Path
    src: Path
    out: Path
    scripts: Path
    job: Path | None = None

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vsrflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def submit(self) -> None:
        proc = self.cli(
            "submit", str(self.src), "-o", str(self.out), "--model", MODEL, "--scale", "2",
            "--jobs-root", str(self.root), "--executor", "slurm", "--chunk-frames", "25",
            "--codec", "ffv1", "--array-throttle", "2",
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"submit failed: {proc.stderr}")
        (self.job,) = [p for p in self.root.iterdir() if p.is_dir()]

    def ids(self) -> dict[str, str]:
        assert self.job is not None
        record = self.job / "logs" / "slurm.json"
        return json.loads(record.read_text()) if record.is_file() else {}

    def slurm(self, *argv: str) -> str:
        tool = Path(self.env["VSRFLOW_SLURM_BIN_DIR"]) / argv[0]
        proc = subprocess.run(
            [str(tool), *argv[1:]], env=self.env, capture_output=True, text=True, timeout=30, check=False
        )
        return proc.stdout + proc.stderr

    def tasks(self, job_id: str) -> list[dict[str, str]]:
        out = self.slurm("scontrol", "show", "job", "-o", job_id)
        return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.splitlines() if "JobState=" in line]

    def status(self) -> str:
        assert self.job is not None
        return self.cli("status", str(self.job)).stdout

    def wait_terminal(self, timeout: float) -> str:
        """``vsrflow status`` once the job is done or failed (the status command reconciles)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.status()
            first = text.splitlines()[0] if text else ""
            if re.search(r": (done|failed|superseded)\b", first):
                return text
            time.sleep(2)
        return f"(not terminal after {timeout:.0f}s) " + self.status()


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not {what} after {timeout:.0f}s")
        time.sleep(0.5)


def _hang(run: Run, stage: str, condition: str = "true", seconds: int = 300) -> None:
    """Make ``stage``'s script sleep first when ``condition`` (a bash test) holds."""
    script = run.scripts / f"{stage}.sbatch"
    lines = script.read_text().splitlines()
    lines.insert(lines.index("set -euo pipefail") + 1, f"if {condition}; then sleep {seconds}; fi")
    script.write_text("\n".join(lines) + "\n")


def _kill(run: Run, job_id: str) -> None:
    """SIGKILL every process of ``job_id``'s batch step (as the OOM killer or a lost node would).

    ``job_id`` is a plain job id (an array task's own id). listpids asks one slurmd: the
    emulator's nodes all run on this host, so it must be told which (the batch host).
    """
    # An array's job id is also the id of one of its tasks: `show job` of it lists every task.
    (task,) = [t for t in run.tasks(job_id) if t["JobId"] == job_id]
    listing = run.slurm("scontrol", "listpids", job_id, task["BatchHost"]).splitlines()[1:]
    for pid in {int(line.split()[0]) for line in listing if line.split() and line.split()[0].isdigit()}:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _running(run: Run, key: str, task: str | None = None) -> Callable[[], bool]:
    def check() -> bool:
        job_id = run.ids().get(key)
        if not job_id:
            return False
        return any(
            t["JobState"] == "RUNNING" and (task is None or t.get("ArrayTaskId") == task)
            for t in run.tasks(job_id)
        )

    return check


def _task_id(run: Run, key: str, task: str) -> str:
    for t in run.tasks(run.ids()[key]):
        if t.get("ArrayTaskId") == task:
            return t["JobId"]
    raise RuntimeError(f"no array task {task}")


def _first(text: str) -> str:
    return text.splitlines()[0] if text else "(no status)"


# ---- the cases ------------------------------------------------------------------------------


def case_extract_kill(run: Run) -> str:
    _hang(run, "extract")
    run.submit()
    _until(_running(run, "extract"), 120, "extract running")
    _kill(run, run.ids()["extract"])
    return _first(run.wait_terminal(180))


def case_extract_timeout(run: Run) -> str:
    _hang(run, "extract")
    run.env["VSRFLOW_SLURM_TIME"] = "1"
    run.submit()
    return _first(run.wait_terminal(300))


def case_chunk_kill(run: Run) -> str:
    _hang(run, "upscale-chunk", '[[ "${SLURM_ARRAY_TASK_ID:-}" == 1 && ! -e "$1/logs/resumed" ]]')
    run.submit()
    _until(_running(run, "array", "1"), 180, "chunk 1 running")
    _kill(run, _task_id(run, "array", "1"))
    failed = _first(run.wait_terminal(300))
    assert run.job is not None
    (run.job / "logs" / "resumed").touch()
    run.submit()
    return f"{failed} || resubmitted: {_first(run.wait_terminal(300))}"


def case_encode_kill(run: Run) -> str:
    _hang(run, "encode", '[[ ! -e "$1/logs/resumed" ]]')
    run.submit()
    _until(_running(run, "encode"), 300, "encode running")
    _kill(run, run.ids()["encode"])
    failed = _first(run.wait_terminal(180))
    assert run.job is not None
    (run.job / "logs" / "resumed").touch()
    run.submit()
    return f"{failed} || resubmitted: {_first(run.wait_terminal(300))}"


def case_gpu_drained(run: Run) -> str:
    run.slurm("scontrol", "update", "nodename=gpu[1-2]", "state=drain", "reason=faults")
    try:
        run.env["VSRFLOW_SLURM_MAX_WAIT_MINUTES"] = "1"
        run.env["VSRFLOW_SLURM_TIME"] = "1"
        run.submit()
        _until(lambda: "waiting for nodes" in run.status(), 180, "waiting for nodes")
        waiting = next(line.strip() for line in run.status().splitlines() if "waiting for nodes" in line)
        return f"{waiting} || {_first(run.wait_terminal(400))}"
    finally:
        run.slurm("scontrol", "update", "nodename=gpu[1-2]", "state=resume")


def case_node_failure(run: Run) -> str:
    _hang(
        run, "upscale-chunk", '[[ "${SLURM_ARRAY_TASK_ID:-}" == 0 && "${SLURM_RESTART_COUNT:-0}" == 0 ]]', 600
    )
    run.submit()
    _until(_running(run, "array", "0"), 180, "chunk 0 running")
    task = next(t for t in run.tasks(run.ids()["array"]) if t.get("ArrayTaskId") == "0")
    node = task["NodeList"]
    run.slurm("scontrol", "update", f"nodename={node}", "state=down", "reason=spot-interruption")
    final = run.wait_terminal(600)
    restarts = [t.get("Restarts") for t in run.tasks(run.ids()["array"]) if t.get("ArrayTaskId") == "0"]
    return f"node {node} down mid-chunk; task 0 restarts={restarts} || {_first(final)}"


def case_chain_cancelled(run: Run) -> str:
    run.slurm("scontrol", "update", "nodename=gpu[1-2]", "state=drain", "reason=faults")
    try:
        run.submit()
        _until(lambda: bool(run.ids().get("finalize")), 180, "chain submitted")
        ids = run.ids()
        run.slurm("scancel", ids["finalize"])
        run.slurm("scancel", ids["array"])
        time.sleep(3)
        return _first(run.wait_terminal(120))
    finally:
        run.slurm("scontrol", "update", "nodename=gpu[1-2]", "state=resume")


@dataclass(frozen=True)
class Case:
    name: str
    fault: str
    expected: str
    #: regular expressions the observed text must all match
    patterns: tuple[str, ...]
    body: Callable[[Run], str] = field(compare=False)


CASES = (
    Case("extract-kill", "extract SIGKILLed mid-stage", "failed, names Slurm's FAILED (SIGKILL)",
         (r": failed: .*extract ended FAILED \(Slurm job \d+, exit (0:9|137:0)\)",), case_extract_kill),
    Case("extract-timeout", "extract past its 1-minute limit", "failed, names TIMEOUT",
         (r": failed: .*extract ended TIMEOUT",), case_extract_timeout),
    Case("chunk-kill", "array task 1 SIGKILLed", "failed naming chunk 1; resubmit -> done",
         (r": failed: .*chunk.* 1", r"resubmitted: \w+: done"), case_chunk_kill),
    Case("encode-kill", "encode SIGKILLed", "failed, encode FAILED; resubmit -> done",
         (r": failed: .*encode ended FAILED", r"resubmitted: \w+: done"), case_encode_kill),
    Case("gpu-drained", "every GPU node drained, max wait 1 min", "waiting for nodes, then failed DEADLINE",
         (r"waiting for nodes: Nodes required", r": failed: .*ended DEADLINE"), case_gpu_drained),
    Case("node-failure", "node of a running chunk task goes down", "task requeued and rerun; done",
         (r"restarts=\['[1-9]", r": done"), case_node_failure),
    Case("chain-cancelled", "every Slurm job of the chain scancelled", "status marks it failed",
         (r": failed: no job of the Slurm chain is alive",), case_chain_cancelled),
)  # fmt: skip


def _clip(path: Path) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=2",
         "-c:v", "libx264", "-g", "25", "-pix_fmt", "yuv420p", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=[c.name for c in CASES], help="run only these cases")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / f"faults-{host_tag()}.json")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not args.only or c.name in args.only]

    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "VSRFLOW_SLURM_"))}
    cli = subprocess.run(
        [sys.executable, "-m", "vsrflow", "models", "import-ncnn", MODEL], env=base_env, capture_output=True,
        text=True, check=False,
    )  # fmt: skip
    if cli.returncode != 0:
        print(cli.stderr, file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="vsrflow-faults-") as tmp:
        work = Path(tmp)
        src = _clip(work / "clip.mp4")
        state = work / "slurm"
        slurm_env = start(state, LAYOUT)
        try:
            for case in cases:
                case_dir = work / case.name
                (case_dir / "jobs").mkdir(parents=True)
                scripts = case_dir / "scripts"
                shutil.copytree(SCRIPTS_DIR, scripts)
                env = {**base_env, **slurm_env, "VSRFLOW_SLURM_SCRIPTS_DIR": str(scripts)}
                env["PYTHONPATH"] = os.pathsep.join(
                    p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p
                )
                run = Run(env=env, root=case_dir / "jobs", src=src, out=case_dir / "out.mkv", scripts=scripts)
                t0 = time.monotonic()
                try:
                    observed = case.body(run)
                except Exception as exc:  # a case that breaks is a row, not the end of the table
                    observed = f"error: {exc}"
                ok = all(re.search(p, observed) for p in case.patterns)
                row = {
                    "case": case.name,
                    "fault": case.fault,
                    "expected": case.expected,
                    "observed": observed,
                    "ok": ok,
                    "seconds": round(time.monotonic() - t0, 1),
                }
                rows.append(row)
                print(f"[{'ok' if ok else 'FAIL'}] {case.name} ({row['seconds']} s): {observed}", flush=True)
                run.slurm("scancel", "--user", os.environ.get("USER", "root"))
        finally:
            stop(state)
    print("\n| case | fault | expected | observed | ok |\n|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['case']} | {row['fault']} | {row['expected']} | {row['observed']} | {row['ok']} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "faults",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "host": host_tag(),
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "commit": git_commit(REPO),
        "cases": rows,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
