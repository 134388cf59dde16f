"""The Slurm executor: the sbatch chain extract -> upscale array -> encode -> finalize.

Choice (a) of the design: fire-and-forget from the head node. :func:`submit_slurm` submits only
the extract job (CPU partition). The chunk count is known only after extract, so the extract job
itself, at its end (``slurm/extract.sbatch``: ``vsrflow job extract`` then ``vsrflow
job submit-rest``), calls :func:`submit_rest`, which submits

* the upscale array ``--array=0-(N-1)%K`` (K = ``spec.array_throttle``) on the GPU partition with
  ``--gres=gpu:<gpus_per_task>`` and ``--dependency=afterok:<extract>`` (the extract job is still
  running while it submits; if it then fails, kill-on-invalid-dep cancels the array);
* encode on the CPU partition, ``--dependency=afterok:<array>``;
* finalize on the CPU partition, ``--dependency=afterany:<array>:<encode>``: it runs whether the
  chunks and encode succeed, fail, or are cancelled (a failed array task makes encode's
  ``afterok`` impossible, and ``--kill-on-invalid-dep=yes`` cancels encode instead of leaving it
  PENDING), so finalize always records the outcome and nothing stays in the queue.

Every job is ``sbatch --parsable --kill-on-invalid-dep=yes --requeue -J vsrflow-<stage>-<job_id>
-o <jobdir>/logs/<stage>-%j.log`` (``%A_%a`` for the array) ``-D <jobdir>`` plus the optional
``--cpus-per-task``/``--mem``/``--time`` of :class:`~vsrflow.config.SlurmSettings`; the jobs
inherit the submitting environment (``VSRFLOW_*``, ``SLURM_CONF``) plus ``VSRFLOW_PYTHON``, the
submitting interpreter, which the stage scripts run (see :func:`job_environment`). sbatch is always
called with an argument list, never through a shell.

The Slurm job ids are recorded in ``<jobdir>/logs/slurm.json`` (atomic writes). The extract job
is submitted held (``--hold``) and released only after its id is recorded, so the extract job's
own update of the record (array, encode, finalize ids) can never be overwritten by the submitter.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.errors import ExternalToolError, InputError, VsrError
from vsrflow.workflow.job.layout import JobDir, read_json, write_json_atomic
from vsrflow.workflow.job.manifest import JobState, ManifestStore

log = logging.getLogger(__name__)

#: The thin sbatch scripts of a source checkout (``<repo>/slurm/<stage>.sbatch``). An installed wheel
#: carries them under ``<prefix>/share/vsrflow/slurm`` (pyproject data-files); the setting
#: ``settings.slurm.scripts_dir`` overrides both. sbatch copies a script at submission, so the
#: scripts need to exist only where the chain is submitted from (the head node).
SCRIPTS_DIR = Path(__file__).resolve().parents[4] / "slurm"
INSTALLED_SCRIPTS_DIR = Path(sys.prefix) / "share" / "vsrflow" / "slurm"
RECORD_NAME = "slurm.json"
_TIMEOUT = 60.0


@dataclass(frozen=True)
class SlurmJobIds:
    """The Slurm job ids of one chain (None: not submitted yet, or not needed)."""

    extract: str
    array: str | None = None
    encode: str | None = None
    finalize: str | None = None
    array_spec: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> SlurmJobIds:
        if not isinstance(data, dict) or not isinstance(data.get("extract"), str):
            raise InputError("the Slurm job record has no extract job id", hint="resubmit the job")
        keys = ("array", "encode", "finalize", "array_spec")
        return cls(extract=data["extract"], **{k: _opt_str(data.get(k)) for k in keys})


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def record_path(job: JobDir) -> Path:
    return job.logs_dir / RECORD_NAME


def read_job_ids(job: JobDir) -> SlurmJobIds | None:
    """The recorded Slurm job ids of ``job``; None when it was never submitted to Slurm."""
    path = record_path(job)
    if not path.is_file():
        return None
    return SlurmJobIds.from_json(read_json(path, "Slurm job record"))


def _write_ids(job: JobDir, ids: SlurmJobIds) -> None:
    write_json_atomic(record_path(job), ids.to_json())


# ---- calling the Slurm commands -------------------------------------------------------------


def _tool(settings: Settings, name: str) -> Path:
    path = settings.slurm.bin_dir / name
    if not path.is_file():
        raise InputError(
            f"{path}: Slurm's {name} not found",
            hint="set VSRFLOW_SLURM_BIN_DIR to the directory of sbatch (e.g. /opt/slurm/bin), "
            "or put sbatch on PATH",
        )
    return path


#: Environment variable naming the Python of the submitting installation; the stage scripts in
#: ``slurm/`` run ``$VSRFLOW_PYTHON -m vsrflow`` (sbatch passes the submitter's environment on).
PYTHON_ENV = "VSRFLOW_PYTHON"


def job_environment() -> dict[str, str]:
    """The environment sbatch (and so every stage) gets: this one, plus :data:`PYTHON_ENV`.

    The stages run the installation that submitted them, never whatever ``vsrflow`` a node's
    PATH holds (or none: a venv that was not activated). Inside a stage this is already set, so
    the rest of the chain keeps the same interpreter.
    """
    return {**os.environ, PYTHON_ENV: os.environ.get(PYTHON_ENV) or sys.executable}


def _call(settings: Settings, name: str, args: Sequence[str]) -> str:
    argv = [str(_tool(settings, name)), *args]
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            stdin=subprocess.DEVNULL,
            env=job_environment(),
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise ExternalToolError(argv, -1, f"timed out after {_TIMEOUT:.0f}s", what=f"Slurm {name}") from err
    except OSError as err:
        raise ExternalToolError(argv, -1, str(err), what=f"Slurm {name}") from err
    if proc.returncode != 0:
        raise ExternalToolError(
            argv,
            proc.returncode,
            proc.stderr or proc.stdout,
            what=f"Slurm {name}",
            hint="see sbatch's message",
        )
    return proc.stdout


def _script(stage: str, settings: Settings) -> Path:
    configured = settings.slurm.scripts_dir
    if configured is None:
        configured = SCRIPTS_DIR if (SCRIPTS_DIR / f"{stage}.sbatch").is_file() else INSTALLED_SCRIPTS_DIR
    path = configured / f"{stage}.sbatch"
    if not path.is_file():
        raise InputError(
            f"{path}: sbatch script missing",
            hint="set VSRFLOW_SLURM_SCRIPTS_DIR to the directory holding vsrflow's slurm/*.sbatch "
            "(bootstrap/head-node.sh installs them), or run from a vsrflow checkout",
        )
    return path


def stage_argv(
    job: JobDir, settings: Settings, stage: str, *, gpu: bool = False, extra: Sequence[str] = ()
) -> list[str]:
    """The sbatch arguments (without the sbatch path) of one stage of ``job``."""
    slurm = settings.slurm
    args = [
        "--parsable",
        "--kill-on-invalid-dep=yes",
        "--requeue",
        "-J",
        f"vsrflow-{stage}-{job.job_id}",
        "-o",
        # %A_%a only means something for array tasks; single jobs would log as <id>_4294967294.
        str(job.logs_dir / (f"{stage}-%A_%a.log" if stage == "upscale-chunk" else f"{stage}-%j.log")),
        "-D",
        str(job.path),
        "-p",
        slurm.gpu_partition if gpu else slurm.cpu_partition,
    ]
    if gpu:
        args.append(f"--gres=gpu:{slurm.gpus_per_task}")
    if slurm.cpus_per_task is not None:
        args.append(f"--cpus-per-task={slurm.cpus_per_task}")
    if slurm.mem:
        args.append(f"--mem={slurm.mem}")
    if slurm.time:
        args.append(f"--time={slurm.time}")
    return [*args, *extra, str(_script(stage, settings)), str(job.path)]


def _sbatch(settings: Settings, args: Sequence[str]) -> str:
    out = _call(settings, "sbatch", args).strip()
    job_id = out.splitlines()[-1].split(";")[0].strip() if out else ""
    if not job_id.isdigit():
        argv = [str(settings.slurm.bin_dir / "sbatch"), *args]
        raise ExternalToolError(argv, 0, f"unexpected output {out!r}", what="Slurm sbatch")
    return job_id


def _cancel(settings: Settings, job_ids: Sequence[str]) -> None:
    if job_ids:
        with contextlib.suppress(VsrError):
            _call(settings, "scancel", list(job_ids))


# ---- the chain ------------------------------------------------------------------------------


def submit_slurm(job: JobDir, settings: Settings) -> SlurmJobIds:
    """Submit the extract job of ``job``; it submits the rest of the chain when it ends.

    A failed job is resumed first (its done chunks are kept). Returns the ids known now (extract
    only); :func:`read_job_ids` later has the rest.

    Raises:
        InputError: sbatch not found (names VSRFLOW_SLURM_BIN_DIR) or a script is missing.
        ExternalToolError: sbatch/scontrol failed (argv and stderr in the message).
    """
    store = ManifestStore(job)
    if store.exists() and store.load().state is JobState.FAILED:
        log.info("job %s failed before (%s); resuming", job.job_id, store.load().reason)
        store.resume()
    extract = _sbatch(settings, stage_argv(job, settings, "extract", extra=["--hold"]))
    ids = SlurmJobIds(extract=extract)
    try:
        _write_ids(job, ids)
        _call(settings, "scontrol", ["release", extract])
    except BaseException:
        _cancel(settings, [extract])
        raise
    log.info("job %s: extract submitted as Slurm job %s", job.job_id, extract)
    return ids


def submit_rest(job: JobDir, settings: Settings) -> SlurmJobIds:
    """Submit array, encode and finalize after extract (run inside the extract Slurm job).

    On a submission failure the jobs already submitted are cancelled, the job is marked failed
    with the reason, and the error is re-raised (the extract job then fails).
    """
    recorded = read_job_ids(job)
    if recorded is None:
        raise InputError(f"{record_path(job)}: no Slurm job record", hint="submit with --executor slurm")
    store = ManifestStore(job)
    manifest = store.load()
    if manifest.state is JobState.DONE:
        log.info("job %s: already done; nothing to submit", job.job_id)
        return recorded
    if recorded.array is not None:
        # A requeued extract job runs this again: the chain for this extract is already queued.
        log.info("job %s: chunks already submitted as %s; not submitting twice", job.job_id, recorded.array)
        return recorded
    if manifest.state is not JobState.UPSCALING or manifest.plan is None:
        raise VsrError(f"job {job.job_id} is {manifest.status_text}; the chunks run after extract")
    spec = job.spec
    array_spec = f"0-{manifest.chunk_count - 1}%{spec.array_throttle}"
    submitted: list[str] = []
    try:
        array = _sbatch(
            settings,
            stage_argv(
                job,
                settings,
                "upscale-chunk",
                gpu=True,
                extra=[f"--array={array_spec}", f"--dependency=afterok:{recorded.extract}"],
            ),
        )
        submitted.append(array)
        encode = _sbatch(
            settings, stage_argv(job, settings, "encode", extra=[f"--dependency=afterok:{array}"])
        )
        submitted.append(encode)
        finalize = _sbatch(
            settings, stage_argv(job, settings, "finalize", extra=[f"--dependency=afterany:{array}:{encode}"])
        )
        submitted.append(finalize)
        ids = SlurmJobIds(recorded.extract, array, encode, finalize, array_spec)
        _write_ids(job, ids)
    except BaseException as exc:
        _cancel(settings, submitted)
        with contextlib.suppress(Exception):
            store.set_state(
                JobState.FAILED, reason=f"slurm: submitting the chunks failed: {exc}".splitlines()[0]
            )
        raise
    log.info("job %s: array %s (%s), encode %s, finalize %s", job.job_id, array, array_spec, encode, finalize)
    return ids
