#!/usr/bin/env bash
# Stop the vsrflow local Slurm emulator started by start.sh (same SLURM_EMU_STATE_DIR).
# Cancels the emulator's jobs, then stops the daemons by their pid files (TERM, then KILL after
# SLURM_EMU_STOP_TIMEOUT seconds [15]). Safe to run when nothing is running.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
STATE="${SLURM_EMU_STATE_DIR:-$REPO/.cache/slurm}"
case "$STATE" in /*) ;; *) STATE="$PWD/$STATE" ;; esac
TIMEOUT="${SLURM_EMU_STOP_TIMEOUT:-15}"
RUN="$STATE/run"
CONF="$STATE/etc/slurm.conf"

find_dir() {
  local found
  if found="$(command -v "$1" 2>/dev/null)" && [ -n "$found" ]; then dirname "$found"; else echo "$2"; fi
}
BIN="${SLURM_EMU_BIN_DIR:-$(find_dir scancel /usr/bin)}"

pid_of() { # pid_of PIDFILE -> prints the pid when that process runs
  local pid
  [ -s "$1" ] || return 1
  pid="$(cat "$1")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# Cancel this cluster's jobs first so no slurmstepd/job outlives its slurmd.
if [ -f "$CONF" ] && pid_of "$RUN/slurmctld.pid" >/dev/null && [ -x "$BIN/scancel" ]; then
  export SLURM_CONF="$CONF"
  if "$BIN/scancel" --user "$(id -un)" 2>/dev/null; then
    deadline=$((SECONDS + 10))
    while [ -n "$("$BIN/squeue" -h -t PENDING,RUNNING,CONFIGURING,COMPLETING -o %i 2>/dev/null)" ] &&
      [ "$SECONDS" -lt "$deadline" ]; do
      sleep 0.2
    done
  fi
fi

pids=()
shopt -s nullglob
# slurmd first (they report to slurmctld), then slurmctld.
for f in "$RUN"/slurmd-*.pid "$RUN/slurmctld.pid"; do
  if pid="$(pid_of "$f")"; then
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid")
  fi
done
if [ "${#pids[@]}" -eq 0 ]; then
  echo "slurm-emulator: nothing running (state $STATE)"
  exit 0
fi

deadline=$((SECONDS + TIMEOUT))
for pid in "${pids[@]}"; do
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "slurm-emulator: pid $pid still alive after ${TIMEOUT}s: KILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
done
rm -f "$RUN"/slurmd-*.pid "$RUN/slurmctld.pid"
echo "slurm-emulator: stopped ${#pids[@]} daemon(s) (state $STATE)"
