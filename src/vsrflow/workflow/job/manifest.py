"""The manifest of a chunked job: the chunk plan, the job state and one state record per chunk.

Storage (inside a :class:`~vsrflow.workflow.job.layout.JobDir`)::

    manifest.json       {schema_version, job_id, state, reason, plan: {frame_count, time_base, chunks}}
    chunks/<i>.json     {schema_version, index, state, attempts, checksum, started, finished, seconds,
                         fps, error, guard}   (absent = pending, never started; guard: the sanity
                         guard's counts of a done chunk, :class:`~vsrflow.engine.quality.GuardReport`,
                         absent in records written before it)

Concurrency design: per-chunk state files, merged on read. Array task ``i`` is the only writer of
``chunks/<i>.json``, so concurrent tasks never read-modify-write a shared file and cannot lose each
other's updates; every write is atomic (:func:`~vsrflow.workflow.job.layout.write_json_atomic`), so a
reader sees a whole old or whole new record. ``manifest.json`` is written only by the stages that
Slurm runs one after another (extract -> upscale array -> encode -> finalize, chained by
dependencies), so it has one writer at a time. We chose this over an fcntl lock around one file
because POSIX locks on Lustre/NFS depend on mount options (``flock``/``localflock``), a node that
dies while holding one can stall every task, and readers (status, resume) would have to lock too.
Two processes writing the SAME chunk (which Slurm does not do) resolve last-writer-wins.

Progress ("upscaling 3/10") is derived from the chunk records, never stored twice.

Loading validates everything and refuses, with an InputError naming the file and the problem: a
wrong schema version, unknown states, overlapping/gapped chunks or chunks not covering the video,
a done chunk without a sha256 checksum, records for chunks the plan does not have, and job states
that contradict the chunks (encoding/done with unfinished chunks). Transitions are validated
(:data:`JOB_TRANSITIONS`, :data:`CHUNK_TRANSITIONS`); leaving ``done`` needs an explicit reset.

Times are unix seconds (float, UTC); ``seconds`` is finished - started; ``fps`` is the chunk's
frames / seconds; ``checksum`` is the lowercase hex sha256 of the chunk's output file.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from vsrflow.engine.quality import GuardReport
from vsrflow.errors import InputError, VsrError
from vsrflow.files import sha256_file
from vsrflow.workflow.job.layout import JobDir, read_json, storage_error, write_json_atomic
from vsrflow.workflow.job.plan import Chunk, check_plan
from vsrflow.workflow.job.state import (
    CHUNK_TRANSITIONS,
    JOB_TRANSITIONS,
    ChunkState,
    JobState,
    status_text,
)

SCHEMA_VERSION = 1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK_FILE = re.compile(r"^(\d+)\.json$")


def _bad(path: Path, problem: str) -> InputError:
    return InputError(f"{path}: invalid manifest: {problem}", hint="restore it, or reset the job")


def _opt_number(value: object) -> bool:
    return value is None or (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    )


@dataclass(frozen=True)
class ChunkRecord:
    """Runtime state of one chunk (see the module docstring for units)."""

    index: int
    state: ChunkState = ChunkState.PENDING
    attempts: int = 0
    checksum: str | None = None
    started: float | None = None
    finished: float | None = None
    seconds: float | None = None
    fps: float | None = None
    error: str | None = None
    guard: GuardReport | None = None

    def problem(self) -> str | None:
        """Why this record is inconsistent, or None when it is valid."""
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int) or self.attempts < 0:
            return f"chunk {self.index}: attempts {self.attempts!r} is not a count"
        for name in ("started", "finished", "seconds", "fps"):
            if not _opt_number(getattr(self, name)):
                return f"chunk {self.index}: {name} {getattr(self, name)!r} is not a non-negative number"
        if self.state is not ChunkState.PENDING and self.attempts < 1:
            return f"chunk {self.index}: state {self.state} with {self.attempts} attempts"
        if self.state is not ChunkState.PENDING and self.started is None:
            return f"chunk {self.index}: state {self.state} without a start time"
        if self.state is ChunkState.DONE:
            if not isinstance(self.checksum, str) or not _SHA256.match(self.checksum):
                return f"chunk {self.index}: done without a sha256 checksum of its output"
            if self.finished is None:
                return f"chunk {self.index}: done without a finish time"
        elif self.checksum is not None:
            return f"chunk {self.index}: state {self.state} has a checksum (only done chunks have one)"
        if self.state is ChunkState.FAILED and not (isinstance(self.error, str) and self.error):
            return f"chunk {self.index}: failed without an error message"
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "index": self.index,
            "state": self.state.value,
            "attempts": self.attempts,
            "checksum": self.checksum,
            "started": self.started,
            "finished": self.finished,
            "seconds": self.seconds,
            "fps": self.fps,
            "error": self.error,
            "guard": None if self.guard is None else self.guard.to_json(),
        }

    @classmethod
    def from_json(cls, data: object, path: Path, index: int) -> ChunkRecord:
        """Parse and validate the record read from ``path`` (the file of chunk ``index``)."""
        keys = set(cls(0).to_json())
        if isinstance(data, dict) and "guard" not in data:  # a record written before the guard
            data = {**data, "guard": None}
        if not isinstance(data, dict) or set(data) != keys:
            raise _bad(path, f"a chunk record needs exactly the keys {', '.join(sorted(keys))}")
        if data["schema_version"] != SCHEMA_VERSION:
            raise _bad(path, f"schema_version {data['schema_version']!r} is not {SCHEMA_VERSION}")
        if data["index"] != index:
            raise _bad(path, f"records index {data['index']!r} but is the file of chunk {index}")
        try:
            state = ChunkState(data["state"])
        except ValueError:
            raise _bad(path, f"unknown chunk state {data['state']!r}") from None
        fields = {k: v for k, v in data.items() if k not in ("schema_version", "state", "guard")}
        try:
            guard = None if data["guard"] is None else GuardReport.from_json(data["guard"])
        except InputError as err:
            raise _bad(path, f"chunk {index}: {err.message}") from None
        record = cls(state=state, guard=guard, **fields)
        problem = record.problem()
        if problem:
            raise _bad(path, problem)
        return record


@dataclass(frozen=True)
class Plan:
    """The chunk plan: ``chunks`` cover frames ``[0, frame_count)``; pts are in ``time_base``.

    Frames, pts and time base are those of the CONDITIONED video (what the model sees, see
    :mod:`vsrflow.media.condition`); ``conditioning`` is its text form ('none', 'bwdif:tff',
    'bwdif-field:bff', 'ivtc:tff'), decided once at extract so every chunk does the same.
    """

    frame_count: int
    time_base: Fraction
    chunks: tuple[Chunk, ...]
    conditioning: str = "none"

    def to_json(self) -> dict[str, Any]:
        return {
            "frame_count": self.frame_count,
            "time_base": f"{self.time_base.numerator}/{self.time_base.denominator}",
            "chunks": [c.to_json() for c in self.chunks],
        } | ({} if self.conditioning == "none" else {"conditioning": self.conditioning})

    @classmethod
    def from_json(cls, data: object, path: Path) -> Plan:
        keys = {"frame_count", "time_base", "chunks"}
        if not isinstance(data, dict) or not keys <= set(data) <= keys | {"conditioning"}:
            raise _bad(path, "plan needs frame_count, time_base, chunks (and optionally conditioning) only")
        conditioning = data.get("conditioning", "none")
        if not isinstance(conditioning, str) or not conditioning:
            raise _bad(path, f"plan.conditioning {conditioning!r} is not a text like bwdif:tff")
        count = data["frame_count"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise _bad(path, f"plan.frame_count {count!r} is not a positive integer")
        try:
            time_base = Fraction(str(data["time_base"]))
        except (ValueError, ZeroDivisionError):
            raise _bad(path, f"plan.time_base {data['time_base']!r} is not a fraction like 1/90000") from None
        if time_base <= 0:
            raise _bad(path, f"plan.time_base {data['time_base']!r} is not positive")
        if not isinstance(data["chunks"], list):
            raise _bad(path, "plan.chunks is not a list")
        try:
            chunks = tuple(Chunk.from_json(c) for c in data["chunks"])
            check_plan(chunks, count)
        except ValueError as err:
            raise _bad(path, str(err)) from None
        return cls(count, time_base, chunks, conditioning)


@dataclass(frozen=True)
class Manifest:
    """A validated, merged view of manifest.json and every chunk record."""

    job_id: str
    state: JobState
    reason: str | None
    plan: Plan | None
    records: tuple[ChunkRecord, ...]

    @property
    def chunk_count(self) -> int:
        return len(self.plan.chunks) if self.plan else 0

    @property
    def done_count(self) -> int:
        return sum(r.state is ChunkState.DONE for r in self.records)

    def throughput(self) -> tuple[float | None, float | None]:
        """(frames per second, seconds left) of the upscaling so far; (None, None) before a chunk is done.

        Wall-clock over the finished chunks (first start to last finish), so chunks running in
        parallel (a Slurm array) count together; seconds left = frames not done / that rate.
        """
        if self.plan is None:
            return None, None
        done = [
            (r, c) for r, c in zip(self.records, self.plan.chunks, strict=True) if r.state is ChunkState.DONE
        ]
        starts = [r.started for r, _ in done if r.started is not None]
        ends = [r.finished for r, _ in done if r.finished is not None]
        if not done or not starts or not ends or max(ends) <= min(starts):
            return None, None
        frames = sum(c.frames for _, c in done)
        fps = frames / (max(ends) - min(starts))
        left = self.plan.frame_count - frames
        return round(fps, 3), round(left / fps, 1)

    @property
    def guard(self) -> GuardReport | None:
        """The sanity guard's counts over every chunk that recorded them (None: none did)."""
        reports = [r.guard for r in self.records if r.guard is not None]
        if not reports:
            return None
        total = reports[0]
        for report in reports[1:]:
            total = total.merge(report)
        return total

    def indices(self, state: ChunkState) -> list[int]:
        """Indices of the chunks in ``state`` (e.g. what a resume still has to run)."""
        return [r.index for r in self.records if r.state is state]

    @property
    def status_text(self) -> str:
        """One line for status.json/logs (:func:`vsrflow.workflow.job.state.status_text`)."""
        return status_text(
            self.state, reason=self.reason, done_chunks=self.done_count, total_chunks=self.chunk_count
        )

    def problem(self) -> str | None:
        """Why the job state contradicts itself or its chunks, or None."""
        if self.state is JobState.FAILED and not (isinstance(self.reason, str) and self.reason):
            return "state failed without a reason"
        if self.state is not JobState.FAILED and self.reason is not None:
            return f"state {self.state} has a failure reason"
        if self.plan is None:
            if self.state in (JobState.UPSCALING, JobState.ENCODING, JobState.DONE):
                return f"state {self.state} without a chunk plan"
        elif self.state in (JobState.ENCODING, JobState.DONE) and self.done_count != self.chunk_count:
            return f"state {self.state} but only {self.done_count}/{self.chunk_count} chunks are done"
        return None


class ManifestStore:
    """Reads and updates the manifest of one job directory (module docstring: storage, rules)."""

    def __init__(self, job: JobDir) -> None:
        self.job = job

    # ---- reading ---------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.job.manifest_path.is_file()

    def _head(self) -> tuple[JobState, str | None, Plan | None]:
        """manifest.json alone, validated: (job state, failure reason, plan). No chunk records."""
        path = self.job.manifest_path
        data = read_json(path, "manifest")
        keys = {"schema_version", "job_id", "state", "reason", "plan"}
        if not isinstance(data, dict) or set(data) != keys:
            raise _bad(path, f"needs exactly the keys {', '.join(sorted(keys))}")
        if data["schema_version"] != SCHEMA_VERSION:
            raise _bad(path, f"schema_version {data['schema_version']!r} is not {SCHEMA_VERSION}")
        if data["job_id"] != self.job.job_id:
            raise _bad(path, f"job_id {data['job_id']!r} does not match the directory {self.job.job_id}")
        try:
            state = JobState(data["state"])
        except ValueError:
            raise _bad(path, f"unknown job state {data['state']!r}") from None
        plan = None if data["plan"] is None else Plan.from_json(data["plan"], path)
        return state, data["reason"], plan

    def load(self) -> Manifest:
        """The validated, merged manifest; InputError naming the file and problem when invalid."""
        state, reason, plan = self._head()
        manifest = Manifest(self.job.job_id, state, reason, plan, self._records(plan))
        problem = manifest.problem()
        if problem:
            raise _bad(self.job.manifest_path, problem)
        return manifest

    def _records(self, plan: Plan | None) -> tuple[ChunkRecord, ...]:
        count = len(plan.chunks) if plan else 0
        records = [ChunkRecord(i) for i in range(count)]
        try:
            names = os.listdir(self.job.chunks_dir)
        except FileNotFoundError:
            names = []
        except OSError as err:
            raise storage_error(self.job.chunks_dir, err, "list the chunk records") from err
        for name in names:
            match = _CHUNK_FILE.match(name)
            if not match:
                continue  # chunk outputs, temporary files of in-flight atomic writes
            index = int(match[1])
            path = self.job.chunks_dir / name
            if path != self.job.chunk_state_path(index):
                raise _bad(path, f"chunk record name should be {self.job.chunk_state_path(index).name}")
            if index >= count:
                raise _bad(path, f"record of chunk {index}, but the plan has {count} chunks")
            records[index] = ChunkRecord.from_json(read_json(path, "chunk record"), path, index)
        return tuple(records)

    def record(self, index: int) -> ChunkRecord:
        """The record of chunk ``index`` alone (what an array task reads; no full merge)."""
        path = self.job.chunk_state_path(index)
        if not path.exists():
            return ChunkRecord(index)
        return ChunkRecord.from_json(read_json(path, "chunk record"), path, index)

    # ---- job-level writes (single writer: the sequential stages) -------------------------

    def _write(self, state: JobState, reason: str | None, plan: Plan | None) -> None:
        write_json_atomic(
            self.job.manifest_path,
            {
                "schema_version": SCHEMA_VERSION,
                "job_id": self.job.job_id,
                "state": state.value,
                "reason": reason,
                "plan": None if plan is None else plan.to_json(),
            },
        )

    def create(self) -> Manifest:
        """Write a fresh 'queued' manifest, or return the existing one (a resubmission)."""
        if not self.exists():
            self._write(JobState.QUEUED, None, None)
        return self.load()

    def set_state(self, state: JobState, *, reason: str | None = None) -> Manifest:
        """Move the job to ``state`` (``reason`` is required for, and only for, FAILED)."""
        current = self.load()
        if state not in JOB_TRANSITIONS[current.state]:
            raise VsrError(
                f"job {self.job.job_id}: cannot go from {current.state} to {state}",
                hint="a finished or failed job needs `resume` (failed) or a new job",
            )
        if (state is JobState.FAILED) != bool(reason):
            raise ValueError("reason is required for FAILED and only for FAILED")
        updated = replace(current, state=state, reason=reason)
        problem = updated.problem()
        if problem:
            raise VsrError(f"job {self.job.job_id}: cannot enter {state}: {problem}")
        self._write(state, reason, current.plan)
        return updated

    def resume(self) -> Manifest:
        """Explicit reset of a FAILED job to QUEUED, keeping the plan and every done chunk."""
        current = self.load()
        if current.state is not JobState.FAILED:
            raise VsrError(f"job {self.job.job_id}: only a failed job can be resumed (it is {current.state})")
        self._write(JobState.QUEUED, None, current.plan)
        return self.load()

    def set_plan(
        self,
        frame_count: int,
        time_base: Fraction,
        chunks: Sequence[Chunk],
        *,
        replace_plan: bool = False,
        conditioning: str = "none",
    ) -> Manifest:
        """Record the chunk plan (job state must be EXTRACTING).

        Re-recording an identical plan keeps every chunk record (resume). A different plan needs
        ``replace_plan=True`` and deletes every chunk record, since their ranges no longer apply.
        """
        current = self.load()
        if current.state is not JobState.EXTRACTING:
            raise VsrError(f"job {self.job.job_id}: the plan is set while extracting, not {current.state}")
        plan = Plan(frame_count, Fraction(time_base), tuple(chunks), conditioning)
        check_plan(plan.chunks, frame_count)
        if current.plan is not None and current.plan != plan:
            if not replace_plan:
                raise VsrError(
                    f"job {self.job.job_id}: a different chunk plan already exists",
                    hint="pass replace_plan=True to discard the old plan and its chunk records",
                )
            for record in current.records:
                path = self.job.chunk_state_path(record.index)
                try:
                    path.unlink(missing_ok=True)
                except OSError as err:
                    raise storage_error(path, err, "remove the stale chunk record") from err
        self._write(current.state, None, plan)
        return self.load()

    # ---- chunk-level writes (one writer per chunk: its array task) -----------------------

    def _chunk(self, index: int) -> Chunk:
        # manifest.json only: an array task must not read every other chunk's record (N small
        # reads on shared storage per update); the merged view is validated by load().
        state, _, plan = self._head()
        count = len(plan.chunks) if plan else 0
        if plan is None or not 0 <= index < count:
            raise InputError(
                f"job {self.job.job_id}: no chunk {index} (the plan has {count})",
                hint="check the array task id against the plan",
            )
        if state is not JobState.UPSCALING:
            raise VsrError(f"job {self.job.job_id}: chunk {index} cannot change while {state}")
        return plan.chunks[index]

    def _transition(self, index: int, state: ChunkState) -> ChunkRecord:
        current = self.record(index)
        if state not in CHUNK_TRANSITIONS[current.state]:
            raise VsrError(
                f"job {self.job.job_id}: chunk {index} cannot go from {current.state} to {state}",
                hint="reset the chunk first" if current.state is ChunkState.DONE else None,
            )
        return current

    def _save(self, record: ChunkRecord) -> ChunkRecord:
        problem = record.problem()
        if problem:
            raise ValueError(problem)
        self.job.chunks_dir.mkdir(exist_ok=True)
        write_json_atomic(self.job.chunk_state_path(record.index), record.to_json())
        return record

    def start_chunk(self, index: int, *, now: float | None = None) -> ChunkRecord:
        """Mark chunk ``index`` running: a new attempt (pending, failed or an abandoned running)."""
        self._chunk(index)
        current = self._transition(index, ChunkState.RUNNING)
        return self._save(
            ChunkRecord(
                index,
                ChunkState.RUNNING,
                attempts=current.attempts + 1,
                started=time.time() if now is None else now,
            )
        )

    def _end(self, index: int, now: float | None) -> tuple[Chunk, ChunkRecord, float, float]:
        chunk = self._chunk(index)
        current = self.record(index)
        finished = time.time() if now is None else now
        seconds = max(0.0, finished - (current.started or finished))
        return chunk, current, finished, seconds

    def finish_chunk(
        self, index: int, *, checksum: str, now: float | None = None, guard: GuardReport | None = None
    ) -> ChunkRecord:
        """Mark chunk ``index`` done with the sha256 ``checksum`` of its output (files.sha256_file)
        and the sanity guard's counts for it (None: the runner did not report them)."""
        if not _SHA256.match(checksum):
            raise ValueError(f"checksum {checksum!r} is not a lowercase hex sha256")
        self._transition(index, ChunkState.DONE)
        chunk, current, finished, seconds = self._end(index, now)
        fps = chunk.frames / seconds if seconds > 0 else None
        return self._save(
            replace(
                current,
                state=ChunkState.DONE,
                checksum=checksum,
                finished=finished,
                seconds=seconds,
                fps=fps,
                guard=guard,
            )
        )

    def fail_chunk(self, index: int, error: str, *, now: float | None = None) -> ChunkRecord:
        """Mark chunk ``index`` failed with ``error`` (one line: what failed)."""
        self._transition(index, ChunkState.FAILED)
        _, current, finished, seconds = self._end(index, now)
        return self._save(
            replace(
                current, state=ChunkState.FAILED, finished=finished, seconds=seconds, error=error or "failed"
            )
        )

    def reset_chunk(self, index: int) -> ChunkRecord:
        """Explicit reset of chunk ``index`` to pending (the only way out of done); keeps attempts."""
        manifest = self.load()
        if not 0 <= index < manifest.chunk_count:
            raise InputError(f"job {self.job.job_id}: no chunk {index}", hint="check the chunk index")
        if manifest.state in (JobState.ENCODING, JobState.DONE):
            raise VsrError(f"job {self.job.job_id}: chunks cannot be reset while {manifest.state}")
        current = manifest.records[index]
        return self._save(ChunkRecord(index, ChunkState.PENDING, attempts=current.attempts))

    def verify_chunk(self, index: int, output: Path | None = None) -> bool:
        """True when chunk ``index`` is done and its output file still has the recorded sha256."""
        record = self.record(index)
        path = output or self.job.chunk_output_path(index)
        if record.state is not ChunkState.DONE or not path.is_file():
            return False
        return sha256_file(path) == record.checksum
