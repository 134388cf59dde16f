"""Job and chunk states, their allowed transitions, and the one-line status text: one owner.

Used by the manifest (:mod:`vsrflow.workflow.job.manifest`), the CLI (``vsrflow status``) and the S3
status records (:mod:`vsrflow.aws.jobrecords`), so a state has one spelling and one text
everywhere. Standard library only (the Lambda package imports it).
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """Where a job is. ``done``, ``failed`` and ``superseded`` are terminal (:data:`TERMINAL_JOB_STATES`).

    ``superseded`` is an event-path outcome: the work finished, but a newer version of the upload
    arrived meanwhile, so this job's output was not delivered (the newest version's job delivers).
    """

    QUEUED = "queued"
    EXTRACTING = "extracting"
    UPSCALING = "upscaling"
    ENCODING = "encoding"
    DONE = "done"
    FAILED = "failed"
    SUPERSEDED = "superseded"


class ChunkState(StrEnum):
    """Where one chunk of a job is; ``done`` means its output is written and checksummed."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


TERMINAL_JOB_STATES: frozenset[JobState] = frozenset({JobState.DONE, JobState.FAILED, JobState.SUPERSEDED})
#: Terminal states whose status carries a reason (and only these do).
REASON_JOB_STATES: frozenset[JobState] = frozenset({JobState.FAILED, JobState.SUPERSEDED})
ACTIVE_JOB_STATES: tuple[JobState, ...] = tuple(s for s in JobState if s not in TERMINAL_JOB_STATES)

#: Allowed job transitions. A running stage may re-enter its own state (Slurm requeued it); any
#: unfinished job may fail; ``failed -> queued`` only through an explicit resume.
JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.QUEUED, JobState.EXTRACTING, JobState.FAILED}),
    JobState.EXTRACTING: frozenset({JobState.EXTRACTING, JobState.UPSCALING, JobState.FAILED}),
    JobState.UPSCALING: frozenset({JobState.UPSCALING, JobState.ENCODING, JobState.FAILED}),
    JobState.ENCODING: frozenset({JobState.ENCODING, JobState.DONE, JobState.FAILED}),
    JobState.DONE: frozenset(),
    JobState.FAILED: frozenset(),
    # An S3 status-record outcome only (the delivery decides it): a manifest never enters it.
    JobState.SUPERSEDED: frozenset(),
}
#: Allowed chunk transitions. ``running -> running`` is a new attempt after a task died without
#: recording its end (preemption, node failure); ``done`` is left only through a reset.
CHUNK_TRANSITIONS: dict[ChunkState, frozenset[ChunkState]] = {
    ChunkState.PENDING: frozenset({ChunkState.RUNNING}),
    ChunkState.RUNNING: frozenset({ChunkState.RUNNING, ChunkState.DONE, ChunkState.FAILED}),
    ChunkState.FAILED: frozenset({ChunkState.RUNNING}),
    ChunkState.DONE: frozenset(),
}


def parse_job_state(value: object) -> JobState:
    """The JobState spelled ``value``; ValueError naming it otherwise."""
    try:
        if isinstance(value, str):
            return JobState(value)
    except ValueError:
        pass
    raise ValueError(f"unknown job state {value!r} (one of {', '.join(JobState)})")


def status_text(
    state: JobState,
    *,
    reason: str | None = None,
    done_chunks: int | None = None,
    total_chunks: int | None = None,
    output: str | None = None,
) -> str:
    """One line for people: ``queued``, ``upscaling 3/10``, ``failed: <reason>``, ``done: <output>``."""
    if state in REASON_JOB_STATES:
        return f"{state.value}: {reason or 'no reason recorded'}"
    if state is JobState.UPSCALING and total_chunks:
        return f"upscaling {done_chunks or 0}/{total_chunks}"
    if state is JobState.DONE and output:
        return f"done: {output}"
    return state.value
