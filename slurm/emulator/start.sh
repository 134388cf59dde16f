#!/usr/bin/env bash
# Start the vsrflow local Slurm emulator: one slurmctld + one slurmd per node on this host.
#
#   slurm/emulator/start.sh [--foreground]
#
# Renders slurm.conf/gres.conf (render.py) into the state dir, creates the fake GPU devices,
# starts the daemons, waits until every node is idle and prints the environment to use.
# Idempotent: with everything already up it only prints the environment. --foreground keeps
# running (for containers) and stops the emulator on SIGTERM/SIGINT.
#
# Settings (environment, defaults in brackets):
#   SLURM_EMU_STATE_DIR      everything: config, state, spool, logs, pids, devices [<repo>/.cache/slurm]
#   SLURM_EMU_CTLD_PORT      slurmctld port [6817]
#   SLURM_EMU_SLURMD_PORT    first slurmd port, +1 per node [6818]
#   SLURM_EMU_CPU_NODES      nodes in partition cpu (default partition) [1]
#   SLURM_EMU_GPU_NODES      nodes in partition gpu [2]
#   SLURM_EMU_GPUS_PER_NODE  fake GPUs per gpu node [1]
#   SLURM_EMU_CPUS_PER_NODE  CPUs each node advertises (config_overrides) [4]
#   SLURM_EMU_MEM_PER_NODE   RealMemory (MB) each node advertises [4096]
#   SLURM_EMU_MAX_ARRAY_SIZE MaxArraySize [1001]
#   SLURM_EMU_CLUSTER        ClusterName [vsrflow]
#   SLURM_EMU_SBIN_DIR       where slurmctld/slurmd live [dir of slurmctld on PATH, else /usr/sbin]
#   SLURM_EMU_BIN_DIR        where sinfo/sbatch/... live [dir of sinfo on PATH, else /usr/bin]
#   SLURM_EMU_TIMEOUT        seconds to wait for idle nodes [60]
#   SLURM_EMU_FRESH          1: discard saved job state (slurmctld -c) [0]
#   SLURM_EMU_PYTHON         python3 used to render the config [python3]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

STATE="${SLURM_EMU_STATE_DIR:-$REPO/.cache/slurm}"
CTLD_PORT="${SLURM_EMU_CTLD_PORT:-6817}"
SLURMD_PORT="${SLURM_EMU_SLURMD_PORT:-6818}"
CPU_NODES="${SLURM_EMU_CPU_NODES:-1}"
GPU_NODES="${SLURM_EMU_GPU_NODES:-2}"
GPUS_PER_NODE="${SLURM_EMU_GPUS_PER_NODE:-1}"
CPUS_PER_NODE="${SLURM_EMU_CPUS_PER_NODE:-4}"
MEM_PER_NODE="${SLURM_EMU_MEM_PER_NODE:-4096}"
MAX_ARRAY_SIZE="${SLURM_EMU_MAX_ARRAY_SIZE:-1001}"
CLUSTER="${SLURM_EMU_CLUSTER:-vsrflow}"
TIMEOUT="${SLURM_EMU_TIMEOUT:-60}"
FRESH="${SLURM_EMU_FRESH:-0}"
PYTHON="${SLURM_EMU_PYTHON:-python3}"
FOREGROUND=0

for arg in "$@"; do
  case "$arg" in
    --foreground) FOREGROUND=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "start.sh: unknown argument: $arg (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "slurm-emulator: $*" >&2; exit 1; }

find_dir() { # find_dir PROGRAM FALLBACK_DIR -> directory holding PROGRAM
  local found
  if found="$(command -v "$1" 2>/dev/null)" && [ -n "$found" ]; then dirname "$found"; else echo "$2"; fi
}
SBIN="${SLURM_EMU_SBIN_DIR:-$(find_dir slurmctld /usr/sbin)}"
BIN="${SLURM_EMU_BIN_DIR:-$(find_dir sinfo /usr/bin)}"
for prog in "$SBIN/slurmctld" "$SBIN/slurmd" "$BIN/sinfo" "$BIN/scontrol"; do
  [ -x "$prog" ] || die "$prog not found: run 'make slurm-deps' (Debian: slurmctld slurmd slurm-client) or set SLURM_EMU_SBIN_DIR/SLURM_EMU_BIN_DIR"
done
case "$STATE" in /*) ;; *) STATE="$PWD/$STATE" ;; esac

CONF="$STATE/etc/slurm.conf"
RUN="$STATE/run"
LOG="$STATE/log"
export SLURM_CONF="$CONF"

alive() { # alive PIDFILE -> the pid in it is a running process
  local pid
  [ -s "$1" ] || return 1
  pid="$(cat "$1")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

nodes_from_conf() { sed -n 's/^NodeName=\([^ ]*\) .*/\1/p' "$CONF"; }
node_port() { sed -n "s/^NodeName=$1 Port=\\([0-9]*\\) .*/\\1/p" "$CONF"; }

port_free() { # nothing accepts connections on 127.0.0.1:PORT
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

print_env() {
  echo "# Slurm emulator up (cluster $CLUSTER, state $STATE). Use it with:"
  echo "export SLURM_CONF=$CONF"
  if [ "$BIN" != /usr/bin ]; then echo "export PATH=$BIN:\$PATH"; fi
}

tail_logs() {
  local f
  for f in "$LOG"/*.log "$LOG"/*.out; do
    [ -f "$f" ] || continue
    echo "----- tail $f" >&2
    tail -n 20 "$f" >&2
  done
}

render_and_prepare() {
  mkdir -p "$STATE"/{etc,ctld,spool,run,log,dev}
  local devices path minor
  devices="$("$PYTHON" "$HERE/render.py" --state-dir "$STATE" --ctld-port "$CTLD_PORT" \
    --slurmd-port "$SLURMD_PORT" --cpu-nodes "$CPU_NODES" --gpu-nodes "$GPU_NODES" \
    --gpus-per-node "$GPUS_PER_NODE" --cpus-per-node "$CPUS_PER_NODE" \
    --mem-per-node "$MEM_PER_NODE" --max-array-size "$MAX_ARRAY_SIZE" \
    --cluster-name "$CLUSTER" --slurm-user "$(id -un)")"
  while read -r path minor; do
    [ -n "$path" ] || continue
    if [ -c "$path" ]; then continue; fi
    rm -f "$path"
    mknod "$path" c 195 "$minor" ||
      die "cannot create the fake GPU device $path (mknod needs root/CAP_MKNOD); use SLURM_EMU_GPU_NODES=0 otherwise"
  done <<<"$devices"
}

start_daemons() {
  local node ctld_args=()
  if ! alive "$RUN/slurmctld.pid"; then
    if [ "$FRESH" = 1 ]; then ctld_args+=(-c); fi
    port_free "$CTLD_PORT" ||
      die "port $CTLD_PORT is in use (another Slurm?): set SLURM_EMU_CTLD_PORT/SLURM_EMU_SLURMD_PORT"
    "$SBIN/slurmctld" -f "$CONF" "${ctld_args[@]}" </dev/null >>"$LOG/slurmctld.out" 2>&1 ||
      { tail_logs; die "slurmctld failed to start"; }
  fi
  while read -r node; do
    [ -n "$node" ] || continue
    mkdir -p "$STATE/spool/$node"
    if ! alive "$RUN/slurmd-$node.pid"; then
      port_free "$(node_port "$node")" ||
        die "port $(node_port "$node") of node $node is in use: set SLURM_EMU_SLURMD_PORT"
      "$SBIN/slurmd" -N "$node" -f "$CONF" </dev/null >>"$LOG/slurmd-$node.out" 2>&1 ||
        { tail_logs; die "slurmd -N $node failed to start"; }
    fi
  done < <(nodes_from_conf)
}

all_up() { # every node responds (idle, mixed or allocated) and none is down/drained/unknown
  local states
  states="$("$BIN/sinfo" -h -N -o '%N %t' 2>/dev/null)" || return 1
  [ -n "$states" ] || return 1
  ! grep -qvE ' (idle|mix|alloc|comp)$' <<<"$states"
}

everything_alive() {
  local node
  [ -f "$CONF" ] && alive "$RUN/slurmctld.pid" || return 1
  while read -r node; do
    alive "$RUN/slurmd-$node.pid" || return 1
  done < <(nodes_from_conf)
}

if everything_alive && all_up; then
  print_env
else
  # A running slurmctld keeps the configuration it was started with: only render when it is down.
  if ! alive "$RUN/slurmctld.pid"; then render_and_prepare; fi
  start_daemons
  deadline=$((SECONDS + TIMEOUT))
  until everything_alive && all_up; do
    if ! alive "$RUN/slurmctld.pid"; then
      tail_logs
      die "slurmctld exited (see $LOG/slurmctld.log)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "slurm-emulator: nodes not idle after ${TIMEOUT}s; sinfo says:" >&2
      "$BIN/sinfo" -N -o '%N %P %t %E' >&2 || true
      tail_logs
      exit 1
    fi
    sleep 0.2
  done
  print_env
fi

if [ "$FOREGROUND" = 1 ]; then
  tail -n +1 -F "$LOG/slurmctld.log" &
  tail_pid=$!
  trap 'kill "$tail_pid" 2>/dev/null || true; bash "$HERE/stop.sh"; exit 0' TERM INT
  wait
fi
