"""The local stack's Slurm: ``slurm/emulator/start.sh`` / ``stop.sh`` under the stack's state dir.

Ports: a block of free consecutive ports (slurmctld, then one per slurmd) below the ephemeral
range, recorded in ``<state>/slurm/ports.json`` so ``down`` and a second ``up`` find them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from vsrflow.errors import ExternalToolError, InputError

REPO = Path(__file__).resolve().parents[3]
EMULATOR = REPO / "slurm" / "emulator"
#: Where Debian and ParallelCluster keep the daemons (added to PATH for the search).
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/opt/slurm/sbin")


@dataclass(frozen=True)
class SlurmLayout:
    """Shape of the local Slurm: cpu partition nodes, gpu partition nodes and fake GPUs.

    ``cluster`` is the ClusterName; ``start_timeout_s`` how long start.sh waits for idle nodes.
    """

    cpu_nodes: int = 1
    gpu_nodes: int = 2
    gpus_per_node: int = 2
    cpus_per_node: int = 8
    cluster: str = "vsrflow-local"
    start_timeout_s: int = 90

    @property
    def node_count(self) -> int:
        return self.cpu_nodes + self.gpu_nodes


def search_path() -> str:
    """PATH plus the directories where the Slurm daemons are installed."""
    return os.pathsep.join([os.environ.get("PATH", ""), *SBIN_DIRS])


def free_port_block(count: int) -> int:
    """First port of ``count`` consecutive ports nothing listens on (12000-30000)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(12000, 30000)
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("0.0.0.0", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise InputError(f"no block of {count} free TCP ports found", hint="free some ports in 12000-30000")


def emulator_env(state: Path, base_port: int, layout: SlurmLayout) -> dict[str, str]:
    """The environment of ``slurm/emulator/start.sh`` and ``stop.sh`` for ``state`` and ``layout``.

    The caller's own ``SLURM_*``/``SBATCH_*``/``SQUEUE_*``/``SINFO_*`` variables are dropped (they
    would point the client tools at another cluster); slurmctld listens on ``base_port`` and the
    slurmds on the ports after it.
    """
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SQUEUE_", "SINFO_"))
    }
    env.update(
        PATH=search_path(),
        SLURM_EMU_STATE_DIR=str(state),
        SLURM_EMU_CTLD_PORT=str(base_port),
        SLURM_EMU_SLURMD_PORT=str(base_port + 1),
        SLURM_EMU_CPU_NODES=str(layout.cpu_nodes),
        SLURM_EMU_GPU_NODES=str(layout.gpu_nodes),
        SLURM_EMU_GPUS_PER_NODE=str(layout.gpus_per_node),
        SLURM_EMU_CPUS_PER_NODE=str(layout.cpus_per_node),
        SLURM_EMU_CLUSTER=layout.cluster,
        SLURM_EMU_TIMEOUT=str(layout.start_timeout_s),
    )
    return env


def start(state: Path, layout: SlurmLayout) -> dict[str, str]:
    """Start (or find running) the emulator in ``state``; returns the env jobs need (SLURM_CONF, PATH).

    Raises InputError when Slurm is not installed, ExternalToolError when it does not come up.
    """
    search = search_path()
    sinfo = shutil.which("sinfo", path=search)
    if not shutil.which("slurmctld", path=search) or not sinfo:
        raise InputError(
            "Slurm is not installed", hint="run `make slurm-deps` (Debian: slurmctld slurmd slurm-client)"
        )
    state.mkdir(parents=True, exist_ok=True)
    ports_file = state / "ports.json"
    if ports_file.is_file():
        base = int(json.loads(ports_file.read_text())["base_port"])
    else:
        base = free_port_block(1 + layout.node_count)
        ports_file.write_text(json.dumps({"base_port": base}))
    argv = ["bash", str(EMULATOR / "start.sh")]
    proc = subprocess.run(
        argv,
        env=emulator_env(state, base, layout),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=150,
        check=False,
    )
    if proc.returncode != 0:
        ports_file.unlink(missing_ok=True)
        raise ExternalToolError(
            argv, proc.returncode, proc.stderr + proc.stdout, what="starting the local Slurm"
        )
    bin_dir = str(Path(sinfo).parent)
    return {"SLURM_CONF": str(state / "etc" / "slurm.conf"), "VSRFLOW_SLURM_BIN_DIR": bin_dir}


def stop(state: Path) -> str:
    """Stop the emulator in ``state`` (safe when nothing runs); returns stop.sh's message."""
    if not (state / "etc" / "slurm.conf").is_file():
        return "slurm: nothing to stop"
    argv = ["bash", str(EMULATOR / "stop.sh")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(PATH=search_path(), SLURM_EMU_STATE_DIR=str(state))
    proc = subprocess.run(
        argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=90, check=False
    )
    if proc.returncode != 0:
        raise ExternalToolError(
            argv, proc.returncode, proc.stderr + proc.stdout, what="stopping the local Slurm"
        )
    return proc.stdout.strip()


#: Where ``make slurm-up`` / ``slurm/emulator/start.sh`` keep the emulator by default.
DEFAULT_EMULATOR_STATE = REPO / ".cache" / "slurm"
#: The configuration files a Slurm client reads when SLURM_CONF is unset (Debian's package, and
#: ParallelCluster's build under /opt/slurm); with none of them sbatch asks DNS for an SRV record.
SYSTEM_SLURM_CONFS = (Path("/etc/slurm/slurm.conf"), Path("/etc/slurm-llnl/slurm.conf"))


def _alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def find_slurm_conf(env: Mapping[str, str], bin_dir: Path) -> tuple[Path | None, str]:
    """The Slurm configuration a client started with ``env`` should use, and why.

    Returns ``(None, reason)`` when the clients find one themselves (``SLURM_CONF`` set, a system
    file, or ``<bin_dir>/../etc/slurm.conf`` as ParallelCluster installs it). Otherwise the
    running local emulator's ``<state>/etc/slurm.conf`` (state: ``SLURM_EMU_STATE_DIR``, else
    :data:`DEFAULT_EMULATOR_STATE`), to be exported as ``SLURM_CONF``. InputError when there is
    no configuration at all, or only an emulator that is not running; the hint says what to run
    or export (never Slurm's own "DNS SRV" error).
    """
    if env.get("SLURM_CONF"):
        return None, "SLURM_CONF is set"
    for conf in (*SYSTEM_SLURM_CONFS, bin_dir.parent / "etc" / "slurm.conf"):
        if conf.is_file():
            return None, f"{conf} exists"
    states = [Path(env["SLURM_EMU_STATE_DIR"])] if env.get("SLURM_EMU_STATE_DIR") else []
    states.append(DEFAULT_EMULATOR_STATE)
    for state in states:
        conf = state / "etc" / "slurm.conf"
        if not conf.is_file():
            continue
        if _alive(state / "run" / "slurmctld.pid"):
            return conf, f"the local Slurm emulator is running with {conf}"
        raise InputError(
            f"no Slurm configuration is set, and the local Slurm emulator ({state}) is not running",
            hint="start it with `make slurm-up`, or on a cluster export SLURM_CONF=<its slurm.conf>",
        )
    raise InputError(
        "no Slurm configuration found (SLURM_CONF is unset and there is no /etc/slurm/slurm.conf)",
        hint=f"on a cluster, submit from the head node; for the local emulator run `make slurm-up` and "
        f"`export SLURM_CONF={DEFAULT_EMULATOR_STATE / 'etc' / 'slurm.conf'}`; or use --executor local",
    )
