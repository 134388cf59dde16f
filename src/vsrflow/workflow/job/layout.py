"""The job directory on shared storage, and the one atomic JSON writer of the chunked workflow.

Layout (every path is a property of :class:`JobDir`)::

    <root>/<job_id>/
        spec.json          the JobSpec (written once, at creation)
        manifest.json      plan + job state (vsrflow.workflow.job.manifest)
        chunks/            <i>.json per-chunk state records, <i>.nut chunk outputs (i zero-padded)
        logs/              stage and array-task logs
        source/            the staged source (a copy or download of spec.source)

Filesystem failures become :class:`~vsrflow.errors.VsrError` subclasses that name the path:
permission, read-only and not-a-directory problems are the caller's configuration
(:class:`~vsrflow.errors.InputError`); a full disk, quota or I/O error is a plain
:class:`~vsrflow.errors.VsrError` with a hint to free space.
"""

from __future__ import annotations

import errno
import json
from functools import cached_property
from pathlib import Path
from typing import Any

from vsrflow.errors import InputError, VsrError
from vsrflow.files import atomic_write_json
from vsrflow.workflow.job.identity import check_job_id
from vsrflow.workflow.job.spec import JobSpec

#: Suffix of chunk outputs: NUT keeps the source time base exactly (see media.writer) and joins by
#: packet copy (see chunk_io.stream_chunks).
CHUNK_SUFFIX = ".nut"
_CONFIG_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST, errno.ENAMETOOLONG}
_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


def storage_error(path: Path, err: OSError, action: str) -> VsrError:
    """The VsrError for an OSError while ``action`` on ``path`` (see the module docstring)."""
    reason = err.strerror or str(err)
    message = f"{path}: cannot {action}: {reason}"
    if err.errno in _SPACE_ERRNOS:
        return VsrError(message, hint=f"free space (or quota) on the filesystem holding {path.parent}")
    if err.errno in _CONFIG_ERRNOS:
        return InputError(message, hint="point the job root at a writable directory on shared storage")
    return VsrError(message, hint="check the shared filesystem (mount, health) and retry")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically (:func:`vsrflow.files.atomic_write_json`).

    OSError -> VsrError naming ``path`` (:func:`storage_error`).
    """
    try:
        atomic_write_json(Path(path), data, make_parents=False)
    except OSError as err:
        raise storage_error(Path(path), err, "write") from err


def read_json(path: Path, what: str) -> Any:
    """Parse the JSON file ``path``; InputError naming it (and ``what`` it is) when unreadable/bad."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise InputError(f"{path}: {what} not found", hint="create the job first (vsrflow submit)") from err
    except OSError as err:
        raise storage_error(Path(path), err, f"read the {what}") from err
    try:
        return json.loads(text)
    except ValueError as err:
        raise InputError(f"{path}: {what} is not valid JSON: {err}", hint="restore or recreate it") from err


class JobDir:
    """Paths of one job directory ``<root>/<job_id>``; :meth:`create` and :meth:`open` check it."""

    def __init__(self, root: Path, job_id: str) -> None:
        # The id becomes a directory name: the one id rule (16 hex digits) keeps out separators,
        # dot-dot and anything a shell would expand.
        self.job_id = check_job_id(job_id)
        self.root = Path(root)

    @classmethod
    def at(cls, path: Path | str) -> JobDir:
        """The existing job at ``path`` (``<root>/<job_id>``); InputError when it is not a job dir."""
        path = Path(path).expanduser().resolve()
        return cls.open(path.parent, path.name)

    def __repr__(self) -> str:
        return f"JobDir({str(self.root)!r}, {self.job_id!r})"

    @property
    def path(self) -> Path:
        return self.root / self.job_id

    @property
    def spec_path(self) -> Path:
        return self.path / "spec.json"

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def chunks_dir(self) -> Path:
        return self.path / "chunks"

    @property
    def logs_dir(self) -> Path:
        return self.path / "logs"

    @property
    def source_dir(self) -> Path:
        return self.path / "source"

    def chunk_state_path(self, index: int) -> Path:
        """Per-chunk state record of chunk ``index`` (written only by the task that owns it)."""
        return self.chunks_dir / f"{index:05d}.json"

    def chunk_output_path(self, index: int) -> Path:
        """Upscaled output of chunk ``index`` (``chunks/<i>.nut``)."""
        return self.chunks_dir / f"{index:05d}{CHUNK_SUFFIX}"

    @classmethod
    def create(cls, root: Path, spec: JobSpec, job_id: str | None = None) -> JobDir:
        """Create (or re-open) the job directory for ``spec`` and write ``spec.json``.

        ``job_id`` defaults to ``spec.job_id()``. Idempotent: an existing directory whose
        spec.json equals ``spec`` is returned as is (a resubmission resumes); a different spec
        under the same id is an InputError. Storage failures: see the module docstring.
        """
        job = cls(root, job_id or spec.job_id())
        root = Path(root)
        if not root.is_dir():
            raise InputError(f"{root}: job root does not exist or is not a directory", hint="create it first")
        for directory in (job.path, job.chunks_dir, job.logs_dir, job.source_dir):
            try:
                directory.mkdir(exist_ok=True)
            except OSError as err:
                raise storage_error(directory, err, "create the directory") from err
        if job.spec_path.exists():
            existing = JobSpec.from_json(read_json(job.spec_path, "job spec"))
            if existing != spec:
                raise InputError(
                    f"{job.spec_path}: job {job.job_id} already exists with a different spec",
                    hint="use another job id, or remove the old job directory",
                )
            return job
        write_json_atomic(job.spec_path, spec.to_json())
        job.__dict__["spec"] = spec  # the cached_property's slot: no read back of what was just written
        return job

    @classmethod
    def open(cls, root: Path, job_id: str) -> JobDir:
        """The existing job ``job_id`` under ``root``; InputError when it or its spec is missing."""
        job = cls(root, job_id)
        if not job.spec_path.is_file():
            raise InputError(f"{job.spec_path}: no such job (spec.json missing)", hint="check the job id")
        return job

    @cached_property
    def spec(self) -> JobSpec:
        """The job's spec, read and validated once per handle (spec.json is written once, at
        creation, and never changes: every stage of a process shares this one read)."""
        return self.read_spec()

    def read_spec(self) -> JobSpec:
        """The validated spec (InputError naming spec.json and the field on any problem)."""
        data = read_json(self.spec_path, "job spec")
        try:
            return JobSpec.from_json(data)
        except InputError as err:
            raise InputError(f"{self.spec_path}: {err.message}", hint=err.hint) from err
