"""The Slurm executor: the sbatch chain extract -> upscale array -> encode -> finalize.

Choice (a) of the design: fire-and-forget from the head node. :func:`submit_slurm` submits the
extract job (CPU partition) and its failure guard, a finalize ``--dependency=afternotok:<extract>``
that records the failure of an extract killed before it could submit the rest (Slurm cancels the
guard when extract succeeds). The chunk count is known only after extract, so the extract job
itself, at its end (``slurm/extract.sbatch``: ``vsrflow job extract`` then ``vsrflow
job submit-rest``), calls :func:`submit_rest`, which submits

* the upscale array ``--array=0-(N-1)%K`` (K = ``spec.array_throttle``) on the GPU partition with
  ``--gres=gpu:<gpus_per_task>`` and ``--dependency=afterok:<extract>`` (the extract job is still
  running while it submits; if it then fails, kill-on-invalid-dep cancels the array), and a
  ``--deadline`` (:func:`array_deadline_seconds`): tasks that cannot start because every GPU node
  is down or drained end ``DEADLINE`` after ``slurm.max_wait_minutes`` instead of pending forever;
* encode on the CPU partition, ``--dependency=afterok:<array>``;
* finalize on the CPU partition, ``--dependency=afterany:<array>:<encode>``: it runs whether the
  chunks and encode succeed, fail, or are cancelled (a failed array task makes encode's
  ``afterok`` impossible, and ``--kill-on-invalid-dep=yes`` cancels encode instead of leaving it
  PENDING), so finalize always records the outcome and nothing stays in the queue.

Every job is ``sbatch --parsable --kill-on-invalid-dep=yes --requeue -J vsrflow-<stage>-<job_id>
-o <jobdir>/logs/<stage>-%j.log`` (``%A_%a`` for the array) ``-D <jobdir>`` plus the optional
``--cpus-per-task``/``--mem`` of :class:`~vsrflow.config.SlurmSettings` and a ``--time`` limit
(the setting, else one sized from the stage's work: :func:`extract_minutes`, :func:`chunk_minutes`,
:func:`encode_minutes`). ``--requeue`` lets Slurm rerun a job whose node failed (a spot
interruption); a requeued chunk task starts its chunk again (running -> running). The jobs
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
import math
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.errors import ExternalToolError, InputError, VsrError
from vsrflow.workflow.job.layout import JobDir, read_json, write_json_atomic
from vsrflow.workflow.job.manifest import JobState, ManifestStore
from vsrflow.workflow.job.state import TERMINAL_JOB_STATES

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
    #: the finalize job submitted with extract (``afternotok:<extract>``): it records a failure
    #: when extract dies before it could submit the rest (SIGKILL, node failure, time limit, OOM);
    #: Slurm cancels it (kill-on-invalid-dep) when extract succeeds.
    guard: str | None = None

    def stages(self) -> list[tuple[str, str]]:
        """(stage name, Slurm job id) of every submitted job, in chain order."""
        named = (
            ("extract", self.extract),
            ("extract guard", self.guard),
            ("chunk array", self.array),
            ("encode", self.encode),
            ("finalize", self.finalize),
        )
        return [(name, value) for name, value in named if value]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> SlurmJobIds:
        if not isinstance(data, dict) or not isinstance(data.get("extract"), str):
            raise InputError("the Slurm job record has no extract job id", hint="resubmit the job")
        keys = ("array", "encode", "finalize", "array_spec", "guard")
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
    job: JobDir,
    settings: Settings,
    stage: str,
    *,
    gpu: bool = False,
    minutes: int | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The sbatch arguments (without the sbatch path) of one stage of ``job``.

    ``minutes`` is the stage's own time limit (:func:`extract_minutes` and friends); the setting
    ``VSRFLOW_SLURM_TIME``, when set, overrides it for every stage.
    """
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
    elif minutes is not None:
        args.append(f"--time={minutes}")
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


# ---- time limits ----------------------------------------------------------------------------
#
# Every stage gets a time limit, so a hung stage ends (TIMEOUT) and finalize records it, instead of
# holding a node forever. Each is a fixed floor (start-up, staging, a slow shared filesystem) plus
# the stage's work at a pessimistic rate; all in whole minutes (sbatch ``--time=<minutes>``).

_GIB = 1024**3
#: extract: start-up and probing, plus copying/scanning the source at >= 8.5 MB/s.
EXTRACT_BASE_MINUTES, EXTRACT_MINUTES_PER_GIB = 15, 2
#: one chunk task: model load and start-up, plus every frame at ``slurm.frame_seconds``.
CHUNK_BASE_MINUTES = 10
#: encode: joining the chunks and muxing, at >= 2 frames/s (a 4K libx264 join is a stream copy).
ENCODE_BASE_MINUTES, ENCODE_SECONDS_PER_FRAME = 15, 0.5
FINALIZE_MINUTES = 10


#: what extract assumes of a source whose size it cannot see at submission (on S3): 16 GiB.
UNKNOWN_SOURCE_GIB = 16


def extract_minutes(source_bytes: int | None) -> int:
    """Time limit of extract for a source of ``source_bytes`` (None: unknown, e.g. on S3)."""
    gib = UNKNOWN_SOURCE_GIB if source_bytes is None else math.ceil(source_bytes / _GIB)
    return EXTRACT_BASE_MINUTES + EXTRACT_MINUTES_PER_GIB * gib


def chunk_minutes(max_chunk_frames: int, frame_seconds: float) -> int:
    """Time limit of one upscale task whose longest chunk has ``max_chunk_frames`` frames."""
    return CHUNK_BASE_MINUTES + math.ceil(max_chunk_frames * frame_seconds / 60)


def encode_minutes(frame_count: int) -> int:
    """Time limit of encode for a video of ``frame_count`` frames."""
    return ENCODE_BASE_MINUTES + math.ceil(frame_count * ENCODE_SECONDS_PER_FRAME / 60)


_SLURM_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def time_setting_minutes(text: str) -> int:
    """Whole minutes (rounded up) of a Slurm ``--time`` value such as ``90``, ``1:30:00``, ``2-12``.

    Slurm's forms: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``. InputError naming
    ``VSRFLOW_SLURM_TIME`` otherwise.
    """
    match = _SLURM_TIME.match(text.strip())
    if not match:
        raise InputError(
            f"VSRFLOW_SLURM_TIME={text!r} is not a Slurm time",
            hint="use minutes (90), H:M:S (01:30:00) or D-H:M:S (1-00:00:00)",
        )
    days, first, second, third = match.groups()
    parts = [int(x) for x in (first, second, third) if x is not None]
    if days is not None:  # D-H[:M[:S]]
        hours, minutes, seconds = [*parts, 0, 0][:3]
        total = int(days) * 86400 + hours * 3600 + minutes * 60 + seconds
    elif len(parts) == 3:  # H:M:S
        total = parts[0] * 3600 + parts[1] * 60 + parts[2]
    elif len(parts) == 2:  # M:S
        total = parts[0] * 60 + parts[1]
    else:  # M
        total = parts[0] * 60
    return math.ceil(total / 60)


def array_deadline_seconds(
    chunks: int, throttle: int, task_minutes: int, max_wait_minutes: int
) -> int | None:
    """Seconds from submission after which Slurm drops array tasks that cannot start in time.

    The array may wait ``max_wait_minutes`` for GPU nodes beyond its own run time: ``waves`` =
    ceil(chunks / throttle) rounds of ``task_minutes``. None (no ``--deadline``) when the wait is
    unbounded (``max_wait_minutes`` 0). A task dropped so ends ``DEADLINE``; finalize says so.
    """
    if max_wait_minutes <= 0:
        return None
    waves = math.ceil(chunks / max(1, min(throttle, chunks)))
    return (max_wait_minutes + waves * task_minutes) * 60


def _source_bytes(job: JobDir) -> int | None:
    source = job.spec.source
    if source.startswith("s3://"):
        return None
    try:
        return Path(source).stat().st_size
    except OSError:
        return None


# ---- what Slurm says about the chain ----------------------------------------------------------

#: Job states in which a job of the chain may still run (or run again: requeued).
ALIVE_STATES = frozenset(
    {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
     "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESV_DEL_HOLD"}
)  # fmt: skip
#: Pending reasons that mean "no node can take it now" (as opposed to a dependency or the throttle).
_NODE_REASONS = ("ReqNodeNotAvail", "Resources", "Nodes_required", "NodeDown", "PartitionNodeLimit")
_FIELD = re.compile(r"(\w+)=(\S*)")


@dataclass(frozen=True)
class SlurmTask:
    """One record of ``scontrol show job -o`` (a job, an array task, or a pending task range)."""

    job_id: str
    state: str
    reason: str
    exit_code: str
    submit_time: str

    @property
    def alive(self) -> bool:
        return self.state in ALIVE_STATES

    @property
    def waiting_for_nodes(self) -> bool:
        return self.state == "PENDING" and self.reason.startswith(_NODE_REASONS)


def query_job(settings: Settings, job_id: str) -> list[SlurmTask]:
    """What Slurm knows of ``job_id`` now; [] once it has forgotten it (MinJobAge) or never knew it.

    Raises:
        ExternalToolError: scontrol failed otherwise (e.g. the controller is unreachable).
    """
    try:
        out = _call(settings, "scontrol", ["show", "job", "-o", job_id])
    except ExternalToolError as err:
        if "Invalid job id" in str(err):
            return []
        raise
    tasks = []
    for line in out.splitlines():
        fields = dict(_FIELD.findall(line))
        if "JobState" not in fields:
            continue
        task_id = fields.get("ArrayTaskId")
        array_id = fields.get("ArrayJobId", job_id)
        tasks.append(
            SlurmTask(
                job_id=f"{array_id}_{task_id}" if task_id else fields.get("JobId", job_id),
                state=fields["JobState"],
                reason=fields.get("Reason", ""),
                exit_code=fields.get("ExitCode", ""),
                submit_time=fields.get("SubmitTime", ""),
            )
        )
    return tasks


def _ended_badly(task: SlurmTask) -> bool:
    return not task.alive and task.state != "COMPLETED"


def chain_cause(settings: Settings, ids: SlurmJobIds) -> str | None:
    """Why the chain stopped, in Slurm's words: the first stage that ended other than COMPLETED.

    E.g. ``"extract ended TIMEOUT (Slurm job 12, exit 0:15)"``. Jobs Slurm cancelled because an
    earlier one failed (kill-on-invalid-dep) are consequences, not causes, and are skipped. None
    when Slurm has nothing to say (every job completed, or it forgot them) or cannot be asked.
    """
    for stage, job_id in ids.stages():
        if stage in ("extract guard", "finalize"):
            continue
        try:
            tasks = query_job(settings, job_id)
        except VsrError:
            return None
        bad = [t for t in tasks if _ended_badly(t) and t.reason != "DependencyNeverSatisfied"]
        if not bad:
            continue
        first = bad[0]
        more = f" and {len(bad) - 1} more task(s)" if len(bad) > 1 else ""
        text = f"{stage} ended {first.state} (Slurm job {first.job_id}, exit {first.exit_code}{more})"
        hint = _STATE_HINTS.get(first.state)
        return f"{text}: {hint}" if hint else text
    return None


_STATE_HINTS = {
    "TIMEOUT": "it ran past its time limit (VSRFLOW_SLURM_TIME or VSRFLOW_SLURM_FRAME_SECONDS)",
    "DEADLINE": "no GPU node could take it in time (VSRFLOW_SLURM_MAX_WAIT_MINUTES; check sinfo)",
    "NODE_FAIL": "its node failed",
    "OUT_OF_MEMORY": "it ran out of memory (VSRFLOW_SLURM_MEM)",
    "PREEMPTED": "it was preempted",
    "BOOT_FAIL": "its node failed to boot",
}


@dataclass(frozen=True)
class ChainView:
    """The chain as Slurm sees it now (see :func:`chain_view`)."""

    ids: SlurmJobIds
    tasks: dict[str, list[SlurmTask]]

    @property
    def alive(self) -> bool:
        return any(t.alive for tasks in self.tasks.values() for t in tasks)

    def waiting_for_nodes(self) -> SlurmTask | None:
        """The first task pending for want of a node (DOWN/DRAINED/busy), if any."""
        for tasks in self.tasks.values():
            for task in tasks:
                if task.waiting_for_nodes:
                    return task
        return None

    def summary(self) -> str:
        parts = []
        for stage, job_id in self.ids.stages():
            states = sorted({t.state for t in self.tasks.get(stage, [])}) or ["gone"]
            parts.append(f"{stage} {job_id} {'/'.join(states)}")
        return ", ".join(parts)


def chain_view(job: JobDir, settings: Settings) -> ChainView | None:
    """Ask Slurm about every recorded job of ``job``; None when it was never submitted to Slurm.

    The record is read again after the queries: the extract job records the rest of the chain
    while it runs, and a view of an old record would miss the jobs it just submitted.

    Raises:
        ExternalToolError: Slurm cannot be asked (controller down, no scontrol).
    """
    ids = read_job_ids(job)
    for _ in range(5):
        if ids is None:
            return None
        tasks = {stage: query_job(settings, job_id) for stage, job_id in ids.stages()}
        again = read_job_ids(job)
        if again == ids:
            return ChainView(ids, tasks)
        ids = again
    raise VsrError(f"job {job.job_id}: its Slurm job record keeps changing", hint="run vsrflow status again")


def finalize_context(job: JobDir, settings: Settings) -> tuple[str | None, str | None]:
    """(what still runs, why the chain stopped) for a finalize job of ``job``'s chain.

    The first is a summary when a stage other than finalize itself is still alive (the failure
    guard fires on an extract that Slurm then requeued after a node failure), else None. The
    second is :func:`chain_cause`. Both None outside Slurm (no record) or when Slurm cannot be
    asked: finalize then records what the manifest alone says.
    """
    try:
        view = chain_view(job, settings)
    except VsrError as err:
        log.warning("job %s: cannot ask Slurm about the chain: %s", job.job_id, err)
        return None, None
    if view is None:
        return None, None
    others = {k: v for k, v in view.tasks.items() if k not in ("extract guard", "finalize")}
    if any(t.alive for tasks in others.values() for t in tasks):
        return view.summary(), None
    return None, chain_cause(settings, view.ids)


def reconcile(job: JobDir, settings: Settings, view: ChainView) -> str | None:
    """Mark ``job`` failed when no job of its chain is alive but the manifest says it still runs.

    That happens when a stage died where nothing could record it (the finalize job itself killed,
    or the chain cancelled by hand). Returns the failure reason written, or None (nothing to do).
    The manifest is read after ``view`` was taken, so a chain that finished in between is never
    marked failed.
    """
    if view.alive:
        return None
    store = ManifestStore(job)
    if not store.exists():
        reason = f"no job of the Slurm chain is alive ({view.summary()}) and extract never started"
        store.create()
        store.set_state(JobState.FAILED, reason=reason)
        return reason
    manifest = store.load()
    if manifest.state in TERMINAL_JOB_STATES:
        return None
    cause = chain_cause(settings, view.ids)
    reason = f"no job of the Slurm chain is alive ({view.summary()}) while {manifest.state}"
    if cause:
        reason += f"; {cause}"
    store.set_state(JobState.FAILED, reason=f"{reason}; see {job.logs_dir}")
    return reason


# ---- the chain ------------------------------------------------------------------------------


def _live_chain(job: JobDir, settings: Settings) -> ChainView | None:
    """The view of ``job``'s recorded chain when one of its jobs is still alive, else None."""
    store = ManifestStore(job)
    if read_job_ids(job) is None or (store.exists() and store.load().state in TERMINAL_JOB_STATES):
        return None
    view = chain_view(job, settings)
    return view if view is not None and view.alive else None


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
    running = _live_chain(job, settings)
    if running is not None:
        # The same job submitted again while its chain still runs: a second chain would run
        # every stage twice over the same job directory. The first one finishes the job.
        log.warning("job %s is already on Slurm (%s); not submitting it twice", job.job_id, running.summary())
        return running.ids
    extract = _sbatch(
        settings,
        stage_argv(job, settings, "extract", minutes=extract_minutes(_source_bytes(job)), extra=["--hold"]),
    )
    submitted = [extract]
    try:
        # Submitted with extract, not by it: an extract killed before it submits the rest (kill
        # -9, node failure, time limit, OOM) still has a finalize to record that it died.
        guard = _sbatch(
            settings,
            stage_argv(
                job,
                settings,
                "finalize",
                minutes=FINALIZE_MINUTES,
                extra=[f"--dependency=afternotok:{extract}"],
            ),
        )
        submitted.append(guard)
        ids = SlurmJobIds(extract=extract, guard=guard)
        _write_ids(job, ids)
        _call(settings, "scontrol", ["release", extract])
    except BaseException:
        _cancel(settings, submitted)
        raise
    log.info("job %s: extract submitted as Slurm job %s (failure guard %s)", job.job_id, extract, guard)
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
    task_minutes = chunk_minutes(max(c.frames for c in manifest.plan.chunks), settings.slurm.frame_seconds)
    # The deadline counts the limit the tasks really get: the setting overrides the sized one.
    run_minutes = time_setting_minutes(settings.slurm.time) if settings.slurm.time else task_minutes
    array_extra = [f"--array={array_spec}", f"--dependency=afterok:{recorded.extract}"]
    deadline = array_deadline_seconds(
        manifest.chunk_count, spec.array_throttle, run_minutes, settings.slurm.max_wait_minutes
    )
    if deadline is not None:
        array_extra.append(f"--deadline=now+{deadline}seconds")
    submitted: list[str] = []
    try:
        array = _sbatch(
            settings,
            stage_argv(job, settings, "upscale-chunk", gpu=True, minutes=task_minutes, extra=array_extra),
        )
        submitted.append(array)
        encode = _sbatch(
            settings,
            stage_argv(
                job,
                settings,
                "encode",
                minutes=encode_minutes(manifest.plan.frame_count),
                extra=[f"--dependency=afterok:{array}"],
            ),
        )
        submitted.append(encode)
        finalize = _sbatch(
            settings,
            stage_argv(
                job,
                settings,
                "finalize",
                minutes=FINALIZE_MINUTES,
                extra=[f"--dependency=afterany:{array}:{encode}"],
            ),
        )
        submitted.append(finalize)
        ids = replace(recorded, array=array, encode=encode, finalize=finalize, array_spec=array_spec)
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
