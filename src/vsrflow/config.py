"""Settings: the only reader of ``VSRFLOW_*`` environment variables.

Build one :class:`Settings` at the edge (CLI, job entry point) with :meth:`Settings.from_env`
and pass it down; nothing below this layer reads the environment.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vsrflow.errors import InputError
from vsrflow.formats import DEFAULT_UPLOAD_SUFFIXES


def _default_cache_dir(env: Mapping[str, str]) -> Path:
    xdg = env.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "vsrflow"


#: Where ParallelCluster installs the Slurm client commands.
DEFAULT_SLURM_BIN_DIR = Path("/opt/slurm/bin")


def _positive_int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"{name}={raw!r} must be a positive integer", hint=f"unset {name} or fix it")
    return value


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise InputError(f"{name}={raw!r} must be a positive number", hint=f"unset {name} or fix it")
    return value


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    """A whole number >= 0 (0 has a meaning of its own, e.g. "no limit")."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    if not raw.strip().isdigit():
        raise InputError(f"{name}={raw!r} must be a whole number >= 0", hint=f"unset {name} or fix it")
    return int(raw)


@dataclass(frozen=True)
class SlurmSettings:
    """Slurm executor settings (``VSRFLOW_SLURM_*``).

    Attributes:
        bin_dir: directory of ``sbatch``/``scontrol``/``scancel`` (``VSRFLOW_SLURM_BIN_DIR``);
            default: the directory of ``sbatch`` on PATH, else ``/opt/slurm/bin`` (ParallelCluster).
        cpu_partition: partition of extract, encode and finalize (``VSRFLOW_SLURM_CPU_PARTITION``, cpu).
        gpu_partition: partition of the upscale array (``VSRFLOW_SLURM_GPU_PARTITION``, gpu).
        gpus_per_task: ``--gres=gpu:N`` of each array task (``VSRFLOW_SLURM_GPUS_PER_TASK``, 1).
        cpus_per_task: ``--cpus-per-task`` of every job (``VSRFLOW_SLURM_CPUS_PER_TASK``; unset: none).
        mem: ``--mem`` of every job, e.g. ``8G`` (``VSRFLOW_SLURM_MEM``; unset: none).
        time: ``--time`` of every job, e.g. ``02:00:00`` (``VSRFLOW_SLURM_TIME``; unset: each
            stage's limit is sized from its work, see :func:`vsrflow.workflow.job.slurm.time_limits`).
        frame_seconds: the compute budget of one frame in an upscale task, in seconds, from which
            the chunk tasks' time limit is sized (``VSRFLOW_SLURM_FRAME_SECONDS``, 2.0: ten times
            a CPU node's speed on a compact model; a GPU is 20-100x faster).
        max_wait_minutes: how long the chunk array may wait for GPU nodes, beyond its own run
            time, before Slurm cancels it (``--deadline``) and the job fails with the reason
            (``VSRFLOW_SLURM_MAX_WAIT_MINUTES``, 120; 0: wait forever).
        scripts_dir: directory of the ``<stage>.sbatch`` scripts (``VSRFLOW_SLURM_SCRIPTS_DIR``;
            unset: ``slurm/`` of the source checkout vsrflow runs from). Installed deployments
            (bootstrap/head-node.sh) copy the scripts to a fixed place and set it.
    """

    bin_dir: Path = DEFAULT_SLURM_BIN_DIR
    cpu_partition: str = "cpu"
    gpu_partition: str = "gpu"
    gpus_per_task: int = 1
    cpus_per_task: int | None = None
    mem: str | None = None
    time: str | None = None
    frame_seconds: float = 2.0
    max_wait_minutes: int = 120
    scripts_dir: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SlurmSettings:
        bin_dir = env.get("VSRFLOW_SLURM_BIN_DIR")
        if bin_dir:
            path = Path(bin_dir).expanduser()
        else:
            found = shutil.which("sbatch", path=env.get("PATH", os.defpath))
            path = Path(found).parent if found else DEFAULT_SLURM_BIN_DIR
        gpus = _positive_int(env, "VSRFLOW_SLURM_GPUS_PER_TASK", 1)
        return cls(
            bin_dir=path,
            cpu_partition=env.get("VSRFLOW_SLURM_CPU_PARTITION") or "cpu",
            gpu_partition=env.get("VSRFLOW_SLURM_GPU_PARTITION") or "gpu",
            gpus_per_task=gpus if gpus is not None else 1,
            cpus_per_task=_positive_int(env, "VSRFLOW_SLURM_CPUS_PER_TASK", None),
            mem=env.get("VSRFLOW_SLURM_MEM") or None,
            time=env.get("VSRFLOW_SLURM_TIME") or None,
            frame_seconds=_positive_float(env, "VSRFLOW_SLURM_FRAME_SECONDS", 2.0),
            max_wait_minutes=_count(env, "VSRFLOW_SLURM_MAX_WAIT_MINUTES", 120),
            scripts_dir=Path(scripts).expanduser()
            if (scripts := env.get("VSRFLOW_SLURM_SCRIPTS_DIR"))
            else None,
        )


#: Upload folder -> (preset, scale): ``uploads/<folder>/...`` runs that preset at that scale.
DEFAULT_AWS_PRESETS = (
    ("anime", "anime", 2.0),
    ("live-action", "live-action", 4.0),
    ("fidelity", "fidelity", 2.0),
)


def _csv(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _aws_presets(env: Mapping[str, str]) -> tuple[tuple[str, str, float], ...]:
    """``VSRFLOW_AWS_PRESETS``: comma list of ``folder=preset:scale`` (or ``folder:scale``)."""
    name = "VSRFLOW_AWS_PRESETS"
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return DEFAULT_AWS_PRESETS
    out = []
    for item in (p.strip() for p in raw.split(",") if p.strip()):
        folder, _, rest = item.partition("=") if "=" in item else ("", "", item)
        preset, sep, scale_text = rest.rpartition(":")
        folder = folder or preset
        try:
            scale = float(scale_text)
        except ValueError:
            scale = 0.0
        if not sep or not folder or not preset or "/" in folder or not 1 <= scale <= 8:
            raise InputError(
                f"{name}: {item!r} is not folder=preset:scale", hint="e.g. anime=anime:2,films=live-action:4"
            )
        out.append((folder, preset, scale))
    return tuple(out)


@dataclass(frozen=True)
class AwsSettings:
    """The AWS event path (``VSRFLOW_AWS_*``); used by :mod:`vsrflow.aws` and the CLI that wires it.

    Attributes:
        bucket: media bucket holding ``uploads/``, ``outputs/`` and ``jobs/`` (``VSRFLOW_AWS_BUCKET``).
        table: DynamoDB idempotency table, key ``job_id`` (``VSRFLOW_AWS_TABLE``).
        topic_arn: SNS topic for done/failed notices (``VSRFLOW_AWS_TOPIC_ARN``; unset: no notices).
        cluster_name: ParallelCluster name; the head node is found by its tags (``VSRFLOW_AWS_CLUSTER_NAME``).
        region: region name (``VSRFLOW_AWS_REGION``; unset: boto3's own chain, e.g. ``AWS_REGION``).
        endpoint_url: one endpoint for every service, e.g. a local moto server
            (``VSRFLOW_AWS_ENDPOINT_URL``; unset: boto3's own, which honours ``AWS_ENDPOINT_URL``).
        upload_prefixes: key prefixes that start jobs (``VSRFLOW_AWS_UPLOAD_PREFIXES``, comma list;
            default ``uploads/``). Keys elsewhere (``outputs/``, ``jobs/``) are ignored.
        output_prefix: prefix of delivered outputs (``VSRFLOW_AWS_OUTPUT_PREFIX``, ``outputs/``).
        suffixes: accepted video suffixes, lower case (``VSRFLOW_AWS_SUFFIXES``; .mp4,.mkv,.mov,.m4v).
        presets: upload folder -> (preset, scale) (``VSRFLOW_AWS_PRESETS``: ``anime=anime:2,...``).
        max_object_bytes: largest accepted upload in bytes (``VSRFLOW_AWS_MAX_OBJECT_BYTES``, 50 GiB).
        idempotency_ttl_seconds: how long a job's idempotency record lives
            (``VSRFLOW_AWS_IDEMPOTENCY_TTL_SECONDS``, 7 days); a redelivery after that starts anew.
        claim_seconds: how long an unfinished trigger claim blocks others (``VSRFLOW_AWS_CLAIM_SECONDS``,
            900 = the Lambda maximum timeout: a crashed invocation's retry can take over afterwards).
        jobs_root: job directories on shared storage on the cluster (``VSRFLOW_AWS_JOBS_ROOT``;
            default ``<cache dir>/jobs``).
        executor: how ``vsrflow submit --job-id`` runs the job: slurm or local (``VSRFLOW_AWS_EXECUTOR``).
        vsrflow_command: the executable the SSM command runs on the head node
            (``VSRFLOW_AWS_HEAD_NODE_COMMAND``, default ``vsrflow``; a plain path, no spaces).
        chunk_seconds: chunk length of event-path jobs (``VSRFLOW_AWS_CHUNK_SECONDS``, 60).
        multipart_threshold: output size from which uploads go multipart
            (``VSRFLOW_AWS_MULTIPART_BYTES``, 64 MiB).
    """

    bucket: str | None = None
    table: str | None = None
    topic_arn: str | None = None
    cluster_name: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    upload_prefixes: tuple[str, ...] = ("uploads/",)
    output_prefix: str = "outputs/"
    suffixes: tuple[str, ...] = DEFAULT_UPLOAD_SUFFIXES
    presets: tuple[tuple[str, str, float], ...] = DEFAULT_AWS_PRESETS
    max_object_bytes: int = 50 * 1024**3
    idempotency_ttl_seconds: int = 7 * 24 * 3600
    claim_seconds: int = 900
    jobs_root: Path | None = None
    executor: str = "slurm"
    vsrflow_command: str = "vsrflow"
    chunk_seconds: float = 60.0
    multipart_threshold: int = 64 * 1024**2

    def preset_for(self, folder: str) -> tuple[str, float] | None:
        """(preset, scale) of the upload folder ``folder``, or None when it is not configured."""
        for name, preset, scale in self.presets:
            if name == folder:
                return preset, scale
        return None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AwsSettings:
        executor = (env.get("VSRFLOW_AWS_EXECUTOR") or "slurm").strip()
        if executor not in ("slurm", "local"):
            raise InputError(
                f"VSRFLOW_AWS_EXECUTOR={executor!r} is not slurm or local", hint="use slurm or local"
            )
        command = env.get("VSRFLOW_AWS_HEAD_NODE_COMMAND") or "vsrflow"
        if not re.fullmatch(r"[A-Za-z0-9_./-]+", command):
            raise InputError(
                f"VSRFLOW_AWS_HEAD_NODE_COMMAND={command!r} must be a plain executable path",
                hint="letters, digits, _ . / - only (it is sent verbatim in an SSM shell command)",
            )
        chunk_raw = env.get("VSRFLOW_AWS_CHUNK_SECONDS")
        try:
            chunk_seconds = float(chunk_raw) if chunk_raw else 60.0
        except ValueError:
            chunk_seconds = 0.0
        if not chunk_seconds > 0:
            raise InputError(f"VSRFLOW_AWS_CHUNK_SECONDS={chunk_raw!r} must be a positive number")
        suffixes = tuple(
            s.lower() if s.startswith(".") else "." + s.lower()
            for s in _csv(env, "VSRFLOW_AWS_SUFFIXES", DEFAULT_UPLOAD_SUFFIXES)
        )
        prefixes = _csv(env, "VSRFLOW_AWS_UPLOAD_PREFIXES", ("uploads/",))
        prefixes = tuple(p if p.endswith("/") else p + "/" for p in prefixes)
        output_prefix = env.get("VSRFLOW_AWS_OUTPUT_PREFIX") or "outputs/"
        jobs_root = env.get("VSRFLOW_AWS_JOBS_ROOT")
        return cls(
            bucket=env.get("VSRFLOW_AWS_BUCKET") or None,
            table=env.get("VSRFLOW_AWS_TABLE") or None,
            topic_arn=env.get("VSRFLOW_AWS_TOPIC_ARN") or None,
            cluster_name=env.get("VSRFLOW_AWS_CLUSTER_NAME") or None,
            region=env.get("VSRFLOW_AWS_REGION") or None,
            endpoint_url=env.get("VSRFLOW_AWS_ENDPOINT_URL") or None,
            upload_prefixes=prefixes,
            output_prefix=output_prefix if output_prefix.endswith("/") else output_prefix + "/",
            suffixes=suffixes,
            presets=_aws_presets(env),
            max_object_bytes=_positive_int(env, "VSRFLOW_AWS_MAX_OBJECT_BYTES", 50 * 1024**3) or 1,
            idempotency_ttl_seconds=_positive_int(env, "VSRFLOW_AWS_IDEMPOTENCY_TTL_SECONDS", 7 * 24 * 3600)
            or 1,
            claim_seconds=_positive_int(env, "VSRFLOW_AWS_CLAIM_SECONDS", 900) or 1,
            jobs_root=Path(jobs_root).expanduser() if jobs_root else None,
            executor=executor,
            vsrflow_command=command,
            chunk_seconds=chunk_seconds,
            multipart_threshold=_positive_int(env, "VSRFLOW_AWS_MULTIPART_BYTES", 64 * 1024**2) or 1,
        )


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise InputError(f"{name}={raw!r} is not a boolean", hint=f"use 1/0, true/false, or unset {name}")


#: Values of ``VSRFLOW_LOG_FORMAT`` / ``--log-format``.
LOG_FORMATS = ("auto", "text", "json")

#: Port of the first model endpoint when ``VSRFLOW_ENDPOINT_BASE_PORT`` is unset (`vsrflow serve`).
DEFAULT_ENDPOINT_BASE_PORT = 8080
#: Highest port an endpoint can serve on: Multi Model Server refuses any inference or management
#: port from 32767 up ("Invalid port number", its Connector's limit), wherever it came from.
MAX_ENDPOINT_PORT = 32766
#: What to use instead, in every message about an endpoint port.
ENDPOINT_PORT_HINT = f"use a port in 1024..{MAX_ENDPOINT_PORT} (default {DEFAULT_ENDPOINT_BASE_PORT})"


def endpoint_port_rule(port: int) -> str | None:
    """The rule ``port`` breaks as an endpoint port, or None (static rules, no system lookup).

    ``1 <= port <= MAX_ENDPOINT_PORT``: above it Multi Model Server refuses to start. Ports below
    1024 pass here; :func:`privileged_port_rule` decides them for the process that binds.
    """
    if not 1 <= port <= 65535:
        return "is not a TCP port (1..65535)"
    if port > MAX_ENDPOINT_PORT:
        return f"is refused by Multi Model Server, which accepts ports up to {MAX_ENDPOINT_PORT} only"
    return None


def privileged_port_rule(port: int) -> str | None:
    """The rule ``port`` breaks for a server started by this process (not root), or None.

    Ports below ``net.ipv4.ip_unprivileged_port_start`` (1024 unless lowered) need root to bind,
    and endpoints run as an unprivileged user on the nodes: Multi Model Server would fail to bind.
    """
    if os.geteuid() == 0:
        return None
    try:
        first = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text().strip())
    except (OSError, ValueError):
        first = 1024
    if port < first:
        return f"is privileged (below {first}) and this endpoint runs as uid {os.geteuid()}, not root"
    return None


@dataclass(frozen=True)
class EndpointSettings:
    """Model endpoint settings (``VSRFLOW_ENDPOINT_*``): one endpoint per GPU, array tasks are clients.

    Attributes:
        base_port: port of the endpoint of GPU 0; GPU ``i`` is served on ``base_port + i``
            (``VSRFLOW_ENDPOINT_BASE_PORT``). Set: ``vsrflow job upscale-chunk`` calls the endpoint
            of its GPU; unset (None): chunks run in-process and ``vsrflow serve`` uses
            :data:`DEFAULT_ENDPOINT_BASE_PORT`.
        host: address the client calls and ``vsrflow serve`` binds (``VSRFLOW_ENDPOINT_HOST``, 127.0.0.1).
        connect_timeout: seconds to open a connection (``VSRFLOW_ENDPOINT_CONNECT_TIMEOUT``, 5).
        read_timeout: seconds to wait for one chunk's response; also the server's response timeout
            (``VSRFLOW_ENDPOINT_READ_TIMEOUT``, 3600).
        retries: retries after the first attempt while the endpoint is unreachable, warming or
            restarting (``VSRFLOW_ENDPOINT_RETRIES``, 8).
        backoff: first retry delay in seconds, doubled per retry up to ``backoff_max``
            (``VSRFLOW_ENDPOINT_BACKOFF``, 0.5; ``VSRFLOW_ENDPOINT_BACKOFF_MAX``, 15).
        fallback: run the chunk in-process when the endpoint stays unreachable after the retries
            (``VSRFLOW_ENDPOINT_FALLBACK``, off: the chunk fails instead).
        max_models: networks one endpoint keeps loaded at once, least recently used dropped first
            (``VSRFLOW_ENDPOINT_MAX_MODELS``, 3).
        allowed_roots: the only directories (symlinks resolved) whose job dirs, sources and
            input/output files an endpoint touches (``VSRFLOW_ENDPOINT_ALLOWED_ROOTS``,
            ``os.pathsep``-separated); empty: :meth:`Settings.endpoint_roots` picks the jobs root.
    """

    base_port: int | None = None
    host: str = "127.0.0.1"
    connect_timeout: float = 5.0
    read_timeout: float = 3600.0
    retries: int = 8
    backoff: float = 0.5
    backoff_max: float = 15.0
    fallback: bool = False
    max_models: int = 3
    allowed_roots: tuple[Path, ...] = ()

    @property
    def enabled(self) -> bool:
        """True when chunk tasks call endpoints (a base port is configured)."""
        return self.base_port is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EndpointSettings:
        port = _positive_int(env, "VSRFLOW_ENDPOINT_BASE_PORT", None)
        # Only the TCP range here (clients call whatever listens there, a container's mapped port
        # too); the model server's own limit is checked where `vsrflow serve` starts one.
        if port is not None and port > 65535:
            raise InputError(f"VSRFLOW_ENDPOINT_BASE_PORT={port} is not a TCP port", hint=ENDPOINT_PORT_HINT)
        retries_raw = (env.get("VSRFLOW_ENDPOINT_RETRIES") or "").strip()
        if retries_raw and not retries_raw.isdigit():
            raise InputError(
                f"VSRFLOW_ENDPOINT_RETRIES={retries_raw!r} must be an integer >= 0",
                hint="unset VSRFLOW_ENDPOINT_RETRIES or fix it",
            )
        return cls(
            base_port=port,
            host=(env.get("VSRFLOW_ENDPOINT_HOST") or "127.0.0.1").strip(),
            connect_timeout=_positive_float(env, "VSRFLOW_ENDPOINT_CONNECT_TIMEOUT", 5.0),
            read_timeout=_positive_float(env, "VSRFLOW_ENDPOINT_READ_TIMEOUT", 3600.0),
            retries=int(retries_raw) if retries_raw else 8,
            backoff=_positive_float(env, "VSRFLOW_ENDPOINT_BACKOFF", 0.5),
            backoff_max=_positive_float(env, "VSRFLOW_ENDPOINT_BACKOFF_MAX", 15.0),
            fallback=_flag(env, "VSRFLOW_ENDPOINT_FALLBACK"),
            max_models=_positive_int(env, "VSRFLOW_ENDPOINT_MAX_MODELS", 3) or 3,
            allowed_roots=tuple(
                Path(p.strip()).expanduser()
                for p in (env.get("VSRFLOW_ENDPOINT_ALLOWED_ROOTS") or "").split(os.pathsep)
                if p.strip()
            ),
        )


@dataclass(frozen=True)
class Settings:
    """Process-wide settings.

    Attributes:
        cache_dir: root of the weight store (``<cache_dir>/weights``) and downloaded wheels.
            ``VSRFLOW_CACHE_DIR``; default ``$XDG_CACHE_HOME/vsrflow`` or ``~/.cache/vsrflow``.
        log_level: ``VSRFLOW_LOG_LEVEL`` (DEBUG, INFO, WARNING, ERROR); default INFO.
        ffmpeg: path or name of the ffmpeg CLI (``VSRFLOW_FFMPEG``); default ``ffmpeg``.
        ffprobe: path or name of ffprobe (``VSRFLOW_FFPROBE``); default ``ffprobe``.
        device: default torch device string (``VSRFLOW_DEVICE``: auto, cpu, cuda, cuda:N).
        slurm: the Slurm executor settings (:class:`SlurmSettings`, ``VSRFLOW_SLURM_*``).
        endpoint: the model endpoint settings (:class:`EndpointSettings`, ``VSRFLOW_ENDPOINT_*``).
        aws: the AWS event path settings (:class:`AwsSettings`, ``VSRFLOW_AWS_*``).
        pcluster_venv: the virtual environment holding ``aws-parallelcluster`` for
            ``vsrflow cluster validate`` (``VSRFLOW_PCLUSTER_VENV``; default ``.venv-pcluster``,
            relative to the working directory, as ``make pcluster-venv`` creates it).
        no_download: never obtain missing weights on first use (``VSRFLOW_NO_DOWNLOAD``, off;
            ``vsrflow --no-download``): a model whose weights are missing is then an input error
            naming the command that gets them.
        log_format: ``VSRFLOW_LOG_FORMAT`` (auto, text, json; ``--log-format``). auto: JSON lines
            inside a Slurm job (``SLURM_JOB_ID`` set), human-readable text everywhere else.
        progress_interval: seconds between plain progress lines when stderr is not a terminal
            (``VSRFLOW_PROGRESS_INTERVAL``, 5).
        quiet: no progress bars or lines, warnings and errors only (``VSRFLOW_QUIET``; ``--quiet``).
        in_slurm_job: this process runs inside a Slurm job (``SLURM_JOB_ID`` is set).
    """

    cache_dir: Path
    log_level: str = "INFO"
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    device: str = "auto"
    slurm: SlurmSettings = field(default_factory=SlurmSettings)
    endpoint: EndpointSettings = field(default_factory=EndpointSettings)
    aws: AwsSettings = field(default_factory=AwsSettings)
    pcluster_venv: Path = Path(".venv-pcluster")
    no_download: bool = False
    log_format: str = "auto"
    progress_interval: float = 5.0
    quiet: bool = False
    in_slurm_job: bool = False

    @property
    def weights_dir(self) -> Path:
        """Directory holding converted/downloaded weight files (``<cache_dir>/weights``)."""
        return self.cache_dir / "weights"

    def endpoint_roots(self) -> tuple[Path, ...]:
        """Directories a model endpoint may read and write: ``endpoint.allowed_roots`` when set,
        else the jobs root the workflow uses (``VSRFLOW_AWS_JOBS_ROOT``, else ``<cache_dir>/jobs``,
        the default ``vsrflow submit --jobs-root``)."""
        if self.endpoint.allowed_roots:
            return self.endpoint.allowed_roots
        return (self.aws.jobs_root or self.cache_dir / "jobs",)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``VSRFLOW_*`` variables (``os.environ`` when ``env`` is None)."""
        env = os.environ if env is None else env
        cache = env.get("VSRFLOW_CACHE_DIR")
        level = env.get("VSRFLOW_LOG_LEVEL", "INFO").upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise InputError(
                f"VSRFLOW_LOG_LEVEL={level!r} is not a log level",
                hint="use DEBUG, INFO, WARNING or ERROR",
            )
        log_format = (env.get("VSRFLOW_LOG_FORMAT") or "auto").strip().lower()
        if log_format not in LOG_FORMATS:
            raise InputError(
                f"VSRFLOW_LOG_FORMAT={log_format!r} is not a log format", hint="use auto, text or json"
            )
        return cls(
            cache_dir=Path(cache).expanduser() if cache else _default_cache_dir(env),
            log_level=level,
            ffmpeg=env.get("VSRFLOW_FFMPEG", "ffmpeg"),
            ffprobe=env.get("VSRFLOW_FFPROBE", "ffprobe"),
            device=env.get("VSRFLOW_DEVICE", "auto"),
            slurm=SlurmSettings.from_env(env),
            endpoint=EndpointSettings.from_env(env),
            aws=AwsSettings.from_env(env),
            pcluster_venv=Path(env.get("VSRFLOW_PCLUSTER_VENV") or ".venv-pcluster").expanduser(),
            no_download=_flag(env, "VSRFLOW_NO_DOWNLOAD"),
            log_format=log_format,
            progress_interval=_positive_float(env, "VSRFLOW_PROGRESS_INTERVAL", 5.0),
            quiet=_flag(env, "VSRFLOW_QUIET"),
            in_slurm_job=bool(env.get("SLURM_JOB_ID")),
        )
