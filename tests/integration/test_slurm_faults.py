"""Stage deaths on the local Slurm are recorded: nothing stays "extracting" or "upscaling 0/N" forever.

* An extract killed with SIGKILL before it could submit the rest: the failure guard submitted with
  it (finalize ``afternotok:<extract>``) marks the job failed, naming Slurm's verdict.
* GPU nodes all drained: ``vsrflow status`` (by job id) says "waiting for nodes" and for how long;
  a chain whose jobs are all gone (cancelled by hand, its finalize too) is marked failed by
  ``vsrflow status`` itself.

The slower cases (time limit, the array's deadline, node failure and requeue) are in
``bench/faults.py``, which prints the whole fault table.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.integration.test_slurm_chain import _submit
from tests.integration.test_slurm_emulator import N_NODES, Slurm, running_emulator
from tests.mediagen import make_video
from vsrflow.localstack.slurm import free_port_block
from vsrflow.workflow.job.layout import JobDir
from vsrflow.workflow.job.manifest import JobState, ManifestStore
from vsrflow.workflow.job.slurm import SCRIPTS_DIR

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slurm]:
    with running_emulator(tmp_path_factory.mktemp("slurmfaults"), free_port_block(1 + N_NODES)) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def env(slurm: Slurm, model_env: dict[str, str]) -> dict[str, str]:
    out = dict(slurm.env)
    out["VSRFLOW_CACHE_DIR"] = model_env["VSRFLOW_CACHE_DIR"]
    out["PYTHONPATH"] = model_env.get("PYTHONPATH", "")
    out.pop("VSRFLOW_DEVICE", None)
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("src") / "clip.mp4", frames=50)


def _ids(job: Path) -> dict[str, str]:
    record = job / "logs" / "slurm.json"
    return json.loads(record.read_text()) if record.is_file() else {}


def _until(what: str, check: Callable[[], bool], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout}s")
        time.sleep(0.3)


def _job_dir(root: Path) -> Path:
    (job,) = [p for p in root.iterdir() if p.is_dir()]
    return job


def test_extract_killed_is_recorded_by_its_guard(
    slurm: Slurm, env: dict[str, str], clip: Path, tmp_path: Path
) -> None:
    # The real stage scripts, extract made to hang first so it can be killed mid-stage.
    scripts = tmp_path / "scripts"
    shutil.copytree(SCRIPTS_DIR, scripts)
    extract = scripts / "extract.sbatch"
    lines = extract.read_text().splitlines()
    lines.insert(lines.index("set -euo pipefail") + 1, "sleep 300")
    extract.write_text("\n".join(lines) + "\n")
    root = tmp_path / "jobs"
    root.mkdir()
    proc = _submit({**env, "VSRFLOW_SLURM_SCRIPTS_DIR": str(scripts)}, clip, tmp_path / "o.mkv", root)
    assert proc.returncode == 0, proc.stderr
    job = _job_dir(root)
    ids = _ids(job)
    assert ids.get("guard"), ids
    _until("extract running", lambda: slurm.jobs(ids["extract"])[0]["JobState"] == "RUNNING")

    # SIGKILL every process of the batch step, as the OOM killer or a lost node would.
    (task,) = slurm.jobs(ids["extract"])  # listpids asks one slurmd: name the batch host
    listing = slurm.run("scontrol", "listpids", ids["extract"], task["BatchHost"]).stdout.splitlines()[1:]
    for pid in {int(line.split()[0]) for line in listing if line.strip()}:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    slurm.wait_done(ids["extract"], ids["guard"], timeout=600)
    (guard,) = slurm.jobs(ids["guard"])
    assert guard["JobState"] == "COMPLETED", guard

    manifest = ManifestStore(JobDir.at(job)).load()
    assert manifest.state is JobState.FAILED, manifest
    assert manifest.reason is not None
    # 0:9 when the batch shell itself died first, 137:0 when it saw its child die and exited.
    killed = rf"extract ended FAILED \(Slurm job {ids['extract']}, exit (0:9|137:0)\)"
    assert re.search(killed, manifest.reason), manifest.reason
    assert str(job / "logs") in manifest.reason
    print(f"\nextract SIGKILLed: {manifest.reason}")


def test_status_waits_for_nodes_then_marks_a_dead_chain_failed(
    slurm: Slurm, env: dict[str, str], clip: Path, tmp_path: Path
) -> None:
    root = tmp_path / "jobs"
    root.mkdir()
    slurm.run("scontrol", "update", "nodename=gpu[1-2]", "state=drain", "reason=vsrflow-test")
    try:
        proc = _submit(env, clip, tmp_path / "o.mkv", root)
        assert proc.returncode == 0, proc.stderr
        job = _job_dir(root)
        _until("the chain submitted", lambda: bool(_ids(job).get("finalize")))
        ids = _ids(job)
        _until(
            "the array pending on nodes",
            lambda: slurm.jobs(ids["array"])[0]["Reason"].startswith("Nodes_required"),
        )
        status = run_cli(["status", job.name, "--jobs-root", str(root)], env)  # by id
        assert status.returncode == 0, status.stderr
        assert f"{job.name}: upscaling 0/2" in status.stdout, status.stdout
        assert "waiting for nodes: Nodes required for job are DOWN, DRAINED" in status.stdout, status.stdout
        assert "VSRFLOW_SLURM_MAX_WAIT_MINUTES" in status.stdout

        # Submitting it again while its chain waits: the same chain, not a second one.
        again = _submit(env, clip, tmp_path / "o.mkv", root)
        assert again.returncode == 0, again.stderr
        assert "already on Slurm" in again.stderr and _ids(job) == ids, (again.stderr, _ids(job))

        # Every job of the chain gone, its finalize first (else finalize would record it).
        slurm.run("scancel", ids["finalize"])
        slurm.run("scancel", ids["array"])
        slurm.wait_done(ids["array"], ids["encode"], ids["finalize"], timeout=600)
        assert ManifestStore(JobDir.at(job)).load().state is JobState.UPSCALING
        status = run_cli(["status", str(job)], env)
        assert status.returncode == 0, status.stderr
        assert f"{job.name}: failed: no job of the Slurm chain is alive" in status.stdout, status.stdout
        manifest = ManifestStore(JobDir.at(job)).load()
        assert manifest.state is JobState.FAILED and "while upscaling" in str(manifest.reason)
        assert "chunk array ended CANCELLED" in str(manifest.reason), manifest.reason
    finally:
        slurm.run("scontrol", "update", "nodename=gpu[1-2]", "state=resume")


def test_status_of_an_unknown_id_names_the_roots(env: dict[str, str], tmp_path: Path) -> None:
    proc = run_cli(["status", "0123456789abcdef", "--jobs-root", str(tmp_path)], env)
    assert proc.returncode == 2
    assert "job 0123456789abcdef: no job directory under" in proc.stderr and str(tmp_path) in proc.stderr
