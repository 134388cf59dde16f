#!/usr/bin/env python3
"""Render the emulator's slurm.conf and gres.conf from slurm.conf.tmpl (standard library only).

Used by start.sh (native emulator) and by the Docker image, so both run the same configuration.
Writes ``<state-dir>/etc/slurm.conf`` and ``<state-dir>/etc/gres.conf`` and prints the fake GPU
device files (``path minor`` per line) that the caller must create as character devices
(``mknod PATH c 195 MINOR``): Slurm only accepts character devices as GPU ``File=`` entries.
"""

from __future__ import annotations

import argparse
import socket
import string
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NVIDIA_MAJOR = 195


def _positive(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text}")
    return value


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--state-dir", required=True, type=Path, help="absolute state dir")
    p.add_argument("--ctld-port", type=_positive, default=6817)
    p.add_argument("--slurmd-port", type=_positive, default=6818, help="first slurmd port (+1 per node)")
    p.add_argument("--cpu-nodes", type=_positive, default=1)
    p.add_argument("--gpu-nodes", type=_positive, default=2)
    p.add_argument("--gpus-per-node", type=_positive, default=1)
    p.add_argument("--cpus-per-node", type=_positive, default=4)
    p.add_argument("--mem-per-node", type=_positive, default=4096, help="RealMemory in MB")
    p.add_argument("--max-array-size", type=_positive, default=1001)
    p.add_argument("--max-job-count", type=_positive, default=10000)
    p.add_argument("--cluster-name", default="vsrflow")
    p.add_argument("--slurm-user", default="root")
    p.add_argument("--hostname", default=socket.gethostname().split(".")[0])
    p.add_argument("--node-addr", default="127.0.0.1")
    p.add_argument("--template", type=Path, default=HERE / "slurm.conf.tmpl")
    args = p.parse_args(argv)
    if not args.state_dir.is_absolute():
        p.error("--state-dir must be absolute (Slurm resolves paths from its own cwd)")
    if args.cpu_nodes + args.gpu_nodes == 0:
        p.error("at least one node is needed")
    if args.gpu_nodes and not args.gpus_per_node:
        p.error("--gpus-per-node must be >= 1 when there are GPU nodes")
    return args


def node_names(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    cpu = [f"cpu{i}" for i in range(1, args.cpu_nodes + 1)]
    gpu = [f"gpu{i}" for i in range(1, args.gpu_nodes + 1)]
    return cpu, gpu


def render(args: argparse.Namespace) -> tuple[str, str, list[tuple[Path, int]]]:
    cpu, gpu = node_names(args)
    common = (
        f"NodeHostname={args.hostname} NodeAddr={args.node_addr} CPUs={args.cpus_per_node} "
        f"RealMemory={args.mem_per_node} State=UNKNOWN"
    )
    port = args.slurmd_port
    node_lines: list[str] = []
    gres_lines: list[str] = []
    devices: list[tuple[Path, int]] = []
    for name in cpu:
        node_lines.append(f"NodeName={name} Port={port} {common}")
        port += 1
    dev_dir = args.state_dir / "dev"
    minor = 0
    for name in gpu:
        node_lines.append(f"NodeName={name} Port={port} Gres=gpu:{args.gpus_per_node} {common}")
        port += 1
        first = minor
        for _ in range(args.gpus_per_node):
            devices.append((dev_dir / f"nvidia{minor}", minor))
            minor += 1
        files = f"nvidia{first}" if args.gpus_per_node == 1 else f"nvidia[{first}-{minor - 1}]"
        gres_lines.append(f"NodeName={name} Name=gpu File={dev_dir}/{files}")

    partitions: list[str] = []
    if cpu:
        partitions.append(f"PartitionName=cpu Nodes={','.join(cpu)} Default=YES MaxTime=INFINITE State=UP")
    if gpu:
        default = "NO" if cpu else "YES"
        partitions.append(
            f"PartitionName=gpu Nodes={','.join(gpu)} Default={default} MaxTime=INFINITE State=UP"
        )

    template = string.Template(args.template.read_text())
    slurm_conf = template.substitute(
        STATE_DIR=str(args.state_dir),
        CLUSTER_NAME=args.cluster_name,
        HOSTNAME=args.hostname,
        NODE_ADDR=args.node_addr,
        CTLD_PORT=args.ctld_port,
        SLURM_USER=args.slurm_user,
        MAX_ARRAY_SIZE=args.max_array_size,
        MAX_JOB_COUNT=max(args.max_job_count, args.max_array_size + 1),
        NODE_LINES="\n".join(node_lines),
        PARTITION_LINES="\n".join(partitions),
    )
    gres_conf = "# Fake GPUs: character devices (major 195) created by start.sh under the state dir.\n"
    gres_conf += "".join(line + "\n" for line in gres_lines)
    return slurm_conf, gres_conf, devices


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    slurm_conf, gres_conf, devices = render(args)
    etc = args.state_dir / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    for name, text in (("slurm.conf", slurm_conf), ("gres.conf", gres_conf)):
        tmp = etc / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(etc / name)
    for path, minor in devices:
        print(f"{path} {minor}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
