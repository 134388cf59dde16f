# shellcheck shell=bash
# vsrflow bootstrap library, sourced by head-node.sh, cpu-node.sh and gpu-node.sh (ParallelCluster
# OnNodeConfigured actions). It installs vsrflow at a pinned version into a venv, writes its
# configuration (VSRFLOW_* env file + a `vsrflow` wrapper on PATH) and, on GPU nodes, starts one
# model endpoint per GPU and waits until each is warm.
#
# Test mode: DRY_RUN=1 with VSRFLOW_BOOTSTRAP_ROOT=<empty temporary dir>. Every path is then under
# that root, files are really written there, and commands with effects outside it (package
# managers, aws, pip, systemctl, nvidia-smi) are appended to "$VSRFLOW_BOOTSTRAP_ROOT/commands.log"
# (one shell-quoted command per line) instead of being run. Readiness checks still run for real, and
# so do the sha256 checks of the downloads: a dry run checks the files a test placed where the
# recorded `aws s3 cp` would have written them.

VSRFLOW_BOOTSTRAP_ROOT="${VSRFLOW_BOOTSTRAP_ROOT:-}"
DRY_RUN="${DRY_RUN:-0}"
VSR_ROLE="${VSR_ROLE:-node}"

# Values every value in the env file must match: it is sourced by a shell and read by systemd.
readonly VSR_SAFE_VALUE='^[A-Za-z0-9._/:@+=,-]*$'

vsr_log() {
  printf '%s vsrflow-bootstrap[%s]: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${VSR_ROLE}" "$*" >&2
}

# Fail the node loudly: ParallelCluster marks the node's bootstrap failed when this script exits non-zero.
vsr_die() {
  vsr_log "FATAL: $*"
  exit 1
}

# vsr_path /abs/path -> the path under the bootstrap root ("" on a real node).
vsr_path() {
  printf '%s%s\n' "${VSRFLOW_BOOTSTRAP_ROOT}" "$1"
}

# vsr_run CMD ARGS...: run a command with effects outside the root, or record it in dry-run mode.
vsr_run() {
  if [[ "${DRY_RUN}" == "1" ]]; then
    local line
    printf -v line '%q ' "$@"
    printf '%s\n' "${line% }" >>"$(vsr_path /commands.log)"
    return 0
  fi
  "$@"
}

vsr_check_mode() {
  if [[ "${DRY_RUN}" == "1" ]]; then
    [[ -n "${VSRFLOW_BOOTSTRAP_ROOT}" && -d "${VSRFLOW_BOOTSTRAP_ROOT}" ]] \
      || vsr_die "DRY_RUN=1 needs VSRFLOW_BOOTSTRAP_ROOT set to an existing directory (a temporary root)"
    : >>"$(vsr_path /commands.log)"
  elif [[ -n "${VSRFLOW_BOOTSTRAP_ROOT}" ]]; then
    vsr_die "VSRFLOW_BOOTSTRAP_ROOT is only for DRY_RUN=1 tests; unset it on a real node"
  elif [[ "$(id -u)" != "0" ]]; then
    vsr_die "run as root (ParallelCluster runs OnNodeConfigured actions as root)"
  fi
}

# vsr_expect NAME VALUE REGEX HINT: die unless VALUE matches REGEX.
vsr_expect() {
  local name="$1" value="$2" regex="$3" hint="$4"
  [[ "${value}" =~ ${regex} ]] || vsr_die "${name}=${value@Q} is not ${hint}"
}

# vsr_parse_args "$@": the arguments the cluster template passes (see infra/cluster/cluster.yaml.j2).
vsr_parse_args() {
  VSR_VERSION="" VSR_WHEEL_URI="" VSR_WHEEL_SHA256="" VSR_REQUIREMENTS_SHA256="" VSR_REGION="" VSR_BUCKET="" VSR_CLUSTER_NAME=""
  VSR_SHARED_DIR="/fsx" VSR_CPU_PARTITION="cpu" VSR_GPU_PARTITION="gpu" VSR_LOG_LEVEL="INFO"
  VSR_MODEL="" VSR_GPUS="" VSR_BASE_PORT="8080" VSR_WARM_TIMEOUT="600" VSR_TOPIC_ARN=""
  VSR_UPLOAD_PREFIX="uploads/" VSR_OUTPUT_PREFIX="outputs/" VSR_MAX_OBJECT_BYTES="53687091200"
  VSR_PRESETS="anime=anime:2,live-action=live-action:4,fidelity=fidelity:2"
  while (($# > 0)); do
    local flag="$1"
    (($# >= 2)) || vsr_die "${flag} needs a value"
    local value="$2"
    shift 2
    case "${flag}" in
      --version) VSR_VERSION="${value}" ;;
      --wheel-uri) VSR_WHEEL_URI="${value}" ;;
      --wheel-sha256) VSR_WHEEL_SHA256="${value}" ;;
      --requirements-sha256) VSR_REQUIREMENTS_SHA256="${value}" ;;
      --lib-uri | --lib-sha256) ;;  # used by the node script to fetch and check this file
      --region) VSR_REGION="${value}" ;;
      --bucket) VSR_BUCKET="${value}" ;;
      --cluster-name) VSR_CLUSTER_NAME="${value}" ;;
      --shared-dir) VSR_SHARED_DIR="${value}" ;;
      --cpu-partition) VSR_CPU_PARTITION="${value}" ;;
      --gpu-partition) VSR_GPU_PARTITION="${value}" ;;
      --log-level) VSR_LOG_LEVEL="${value}" ;;
      --topic-arn) VSR_TOPIC_ARN="${value}" ;;
      --upload-prefix) VSR_UPLOAD_PREFIX="${value}" ;;
      --output-prefix) VSR_OUTPUT_PREFIX="${value}" ;;
      --presets) VSR_PRESETS="${value}" ;;
      --max-object-bytes) VSR_MAX_OBJECT_BYTES="${value}" ;;
      --model) VSR_MODEL="${value}" ;;
      --gpus) VSR_GPUS="${value}" ;;
      --base-port) VSR_BASE_PORT="${value}" ;;
      --warm-timeout) VSR_WARM_TIMEOUT="${value}" ;;
      *) vsr_die "unknown argument ${flag@Q} (see bootstrap/lib.sh vsr_parse_args)" ;;
    esac
  done
  vsr_expect --version "${VSR_VERSION}" '^[0-9]+\.[0-9]+\.[0-9]+([.-]?(a|b|rc|post|dev)[0-9]+)?$' \
    "an exact version such as 0.1.0"
  vsr_expect --wheel-uri "${VSR_WHEEL_URI}" "^s3://[a-z0-9.-]+/([A-Za-z0-9._-]+/)*vsrflow-${VSR_VERSION//./\\.}-py3-none-any\\.whl$" \
    "an s3:// URI of the vsrflow-${VSR_VERSION} wheel"
  vsr_expect --wheel-sha256 "${VSR_WHEEL_SHA256}" '^[0-9a-f]{64}$' "the 64-hex sha256 of the wheel"
  vsr_expect --requirements-sha256 "${VSR_REQUIREMENTS_SHA256}" '^[0-9a-f]{64}$' \
    "the 64-hex sha256 of the wheel's hashed requirements file"
  # The hashed requirements file ships next to the wheel (python -m vsrflow.cluster.lockfile).
  VSR_REQUIREMENTS_URI="${VSR_WHEEL_URI%-py3-none-any.whl}-requirements.lock"
  vsr_expect --region "${VSR_REGION}" '^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$' "an AWS region"
  vsr_expect --bucket "${VSR_BUCKET}" '^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$' "an S3 bucket name"
  vsr_expect --cluster-name "${VSR_CLUSTER_NAME}" '^[A-Za-z][A-Za-z0-9-]{0,59}$' "a cluster name"
  vsr_expect --shared-dir "${VSR_SHARED_DIR}" '^/[A-Za-z0-9._/-]+$' "an absolute directory"
  vsr_expect --cpu-partition "${VSR_CPU_PARTITION}" '^[a-z][a-z0-9-]*$' "a partition name"
  vsr_expect --gpu-partition "${VSR_GPU_PARTITION}" '^[a-z][a-z0-9-]*$' "a partition name"
  vsr_expect --log-level "${VSR_LOG_LEVEL}" '^(DEBUG|INFO|WARNING|ERROR)$' "DEBUG, INFO, WARNING or ERROR"
  vsr_expect --topic-arn "${VSR_TOPIC_ARN}" '^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$' \
    "an SNS topic ARN (the TopicArn output of the infra/cfn stack)"
  vsr_expect --upload-prefix "${VSR_UPLOAD_PREFIX}" '^[A-Za-z0-9_.-]+/$' "a key prefix ending in / (UploadPrefix)"
  vsr_expect --output-prefix "${VSR_OUTPUT_PREFIX}" '^[A-Za-z0-9_.-]+/$' "a key prefix ending in / (OutputPrefix)"
  vsr_expect --presets "${VSR_PRESETS}" \
    '^[A-Za-z0-9_.-]+=[A-Za-z0-9_.-]+:[0-9.]+(,[A-Za-z0-9_.-]+=[A-Za-z0-9_.-]+:[0-9.]+)*$' \
    "a folder=preset:scale list (Presets)"
  vsr_expect --max-object-bytes "${VSR_MAX_OBJECT_BYTES}" '^[1-9][0-9]*$' "a positive byte count (MaxObjectBytes)"
  vsr_expect --base-port "${VSR_BASE_PORT}" '^[1-9][0-9]{3,4}$' "a TCP port"
  vsr_expect --warm-timeout "${VSR_WARM_TIMEOUT}" '^[1-9][0-9]*$' "a positive number of seconds"
  # Derived layout: venv and wrapper local to the node; weights and job directories on shared storage.
  VSR_PREFIX="/opt/vsrflow"
  VSR_VENV="${VSR_PREFIX}/venv"
  VSR_ENV_FILE="/etc/vsrflow/vsrflow.env"
  VSR_SERVICE_USER="vsrflow"  # endpoints never run as root
  VSR_CACHE_DIR="${VSR_SHARED_DIR}/vsrflow/cache"
  VSR_JOBS_ROOT="${VSR_SHARED_DIR}/vsrflow/jobs"
}

vsr_require_gpu_args() {
  vsr_expect --model "${VSR_MODEL}" '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' "a model id"
  vsr_expect --gpus "${VSR_GPUS}" '^[1-9][0-9]?$' "a GPU count (1-99)"
  # Multi Model Server refuses ports from 32767 up; ports below 1024 need root (units run unprivileged).
  ((VSR_BASE_PORT >= 1024 && VSR_BASE_PORT + VSR_GPUS - 1 <= 32766)) \
    || vsr_die "--base-port ${VSR_BASE_PORT} with ${VSR_GPUS} GPU(s) needs ports $((VSR_BASE_PORT))-$((VSR_BASE_PORT + VSR_GPUS - 1)); endpoint ports must be in 1024..32766 (Multi Model Server accepts ports up to 32766 only)"
}

# vsr_ensure_system_packages: python3.11 (vsrflow's interpreter) and the ffmpeg CLI.
vsr_ensure_system_packages() {
  local missing=()
  command -v python3.11 >/dev/null 2>&1 || missing+=(python3.11)
  command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
  if [[ "${DRY_RUN}" == "1" ]]; then
    missing=(python3.11 ffmpeg)  # record what a bare node installs, whatever this host has
  fi
  ((${#missing[@]} > 0)) || return 0
  vsr_log "installing system packages: ${missing[*]}"
  if command -v apt-get >/dev/null 2>&1; then
    local pkgs=()
    local p
    for p in "${missing[@]}"; do
      if [[ "${p}" == python3.11 ]]; then pkgs+=(python3.11 python3.11-venv); else pkgs+=("${p}"); fi
    done
    vsr_run apt-get update -q || vsr_die "apt-get update failed (no route to the package mirror?)"
    vsr_run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}" \
      || vsr_die "apt-get could not install ${pkgs[*]}"
  elif command -v dnf >/dev/null 2>&1; then
    vsr_run dnf install -y -q "${missing[@]}" \
      || vsr_die "dnf could not install ${missing[*]} (Amazon Linux has no ffmpeg package: use os ubuntu2204 or a custom AMI with ffmpeg)"
  else
    vsr_die "no apt-get or dnf to install ${missing[*]}: use a ParallelCluster AMI or install them in a custom AMI"
  fi
}

# vsr_verify_sha256 FILE SHA256 WHAT: die unless FILE exists and its sha256 is SHA256.
vsr_verify_sha256() {
  local file="$1" sha="$2" what="$3"
  [[ -f "${file}" ]] || vsr_die "${what} ${file} is missing (download failed?)"
  printf '%s  %s\n' "${sha}" "${file}" | sha256sum --check --status --strict - \
    || vsr_die "${what} ${file} does not match its pinned sha256 ${sha} (tampered or stale upload); not installing it"
}

# vsr_install_vsrflow EXTRAS: the pinned wheel and its hashed requirements file from S3, both
# checked against the sha256 the cluster template passes BEFORE anything is installed; then a fresh
# venv gets exactly the locked dependencies (pip pinned among them) with --require-hashes, and the
# checked wheel without resolving anything else. The lock covers the union of the node extras, so
# EXTRAS only names what this node uses; `pip check` proves the locked set satisfies the wheel.
vsr_install_vsrflow() {
  local extras="$1"
  local wheel_dir wheel lock venv
  wheel_dir="$(vsr_path "${VSR_PREFIX}/wheels")"
  wheel="${wheel_dir}/${VSR_WHEEL_URI##*/}"
  lock="${wheel_dir}/${VSR_REQUIREMENTS_URI##*/}"
  venv="$(vsr_path "${VSR_VENV}")"
  mkdir -p "${wheel_dir}"
  vsr_log "installing vsrflow ${VSR_VERSION} (${extras}) into ${venv}"
  vsr_run aws s3 cp --only-show-errors --region "${VSR_REGION}" "${VSR_WHEEL_URI}" "${wheel}" \
    || vsr_die "cannot download ${VSR_WHEEL_URI} (is it uploaded, and can the node read the bucket?)"
  vsr_run aws s3 cp --only-show-errors --region "${VSR_REGION}" "${VSR_REQUIREMENTS_URI}" "${lock}" \
    || vsr_die "cannot download ${VSR_REQUIREMENTS_URI} (upload it next to the wheel)"
  vsr_verify_sha256 "${wheel}" "${VSR_WHEEL_SHA256}" "the vsrflow wheel"
  vsr_verify_sha256 "${lock}" "${VSR_REQUIREMENTS_SHA256}" "the requirements file"
  grep -Eq '^pip==[0-9][0-9.]*( |$)' "${lock}" || vsr_die "${lock} pins no pip version (regenerate it)"
  vsr_run python3.11 -m venv "${venv}" || vsr_die "cannot create the venv ${venv}"
  vsr_run "${venv}/bin/python" -m pip install --quiet --require-hashes --no-deps -r "${lock}" \
    || vsr_die "pip could not install the hashed requirements ${lock}"
  vsr_run "${venv}/bin/python" -m pip install --quiet --no-deps --no-index "${wheel}" \
    || vsr_die "pip could not install ${wheel}"
  vsr_run "${venv}/bin/python" -m pip check || vsr_die "the locked requirements do not satisfy vsrflow ${VSR_VERSION}"
  if [[ "${DRY_RUN}" != "1" ]]; then
    local installed
    installed="$("${venv}/bin/python" -c 'import importlib.metadata as m; print(m.version("vsrflow"))')" \
      || vsr_die "vsrflow does not import in ${venv}"
    [[ "${installed}" == "${VSR_VERSION}" ]] \
      || vsr_die "installed vsrflow ${installed}, but the cluster pins ${VSR_VERSION}"
  fi
}

# vsr_env_line NAME VALUE: one checked line of the env file.
vsr_env_line() {
  local name="$1" value="$2"
  [[ "${value}" =~ ${VSR_SAFE_VALUE} ]] || vsr_die "refusing to write ${name}=${value@Q}: unsafe characters"
  printf '%s=%s\n' "${name}" "${value}"
}

# vsr_write_config: the VSRFLOW_* env file (what Settings.from_env reads) and the `vsrflow` wrapper.
vsr_write_config() {
  local env_file wrapper
  env_file="$(vsr_path "${VSR_ENV_FILE}")"
  wrapper="$(vsr_path /usr/local/bin/vsrflow)"
  mkdir -p "${env_file%/*}" "${wrapper%/*}" "$(vsr_path "${VSR_CACHE_DIR}")" "$(vsr_path "${VSR_JOBS_ROOT}")"
  {
    printf '# Written by the vsrflow %s bootstrap (%s node); read by %s and the vsrflow-serve units.\n' \
      "${VSR_VERSION}" "${VSR_ROLE}" /usr/local/bin/vsrflow
    vsr_env_line VSRFLOW_LOG_LEVEL "${VSR_LOG_LEVEL}"
    vsr_env_line VSRFLOW_CACHE_DIR "${VSR_CACHE_DIR}"
    vsr_env_line VSRFLOW_SLURM_BIN_DIR /opt/slurm/bin
    vsr_env_line VSRFLOW_SLURM_CPU_PARTITION "${VSR_CPU_PARTITION}"
    vsr_env_line VSRFLOW_SLURM_GPU_PARTITION "${VSR_GPU_PARTITION}"
    vsr_env_line VSRFLOW_ENDPOINT_BASE_PORT "${VSR_BASE_PORT}"
    vsr_env_line VSRFLOW_AWS_BUCKET "${VSR_BUCKET}"
    vsr_env_line VSRFLOW_AWS_REGION "${VSR_REGION}"
    vsr_env_line VSRFLOW_AWS_CLUSTER_NAME "${VSR_CLUSTER_NAME}"
    # done/failed notices: published from the head node and the encode jobs (ClusterNodePolicy allows it).
    vsr_env_line VSRFLOW_AWS_TOPIC_ARN "${VSR_TOPIC_ARN}"
    vsr_env_line VSRFLOW_AWS_JOBS_ROOT "${VSR_JOBS_ROOT}"
    # The trigger's upload rules: the head node re-derives each job request with them.
    vsr_env_line VSRFLOW_AWS_UPLOAD_PREFIXES "${VSR_UPLOAD_PREFIX}"
    vsr_env_line VSRFLOW_AWS_OUTPUT_PREFIX "${VSR_OUTPUT_PREFIX}"
    vsr_env_line VSRFLOW_AWS_PRESETS "${VSR_PRESETS}"
    vsr_env_line VSRFLOW_AWS_MAX_OBJECT_BYTES "${VSR_MAX_OBJECT_BYTES}"
    vsr_env_line VSRFLOW_AWS_EXECUTOR slurm
    vsr_env_line VSRFLOW_AWS_HEAD_NODE_COMMAND /usr/local/bin/vsrflow
  } >"${env_file}.tmp"
  mv -f "${env_file}.tmp" "${env_file}"
  chmod 0644 "${env_file}"
  # SSM RunShellScript and Slurm jobs run plain shells: the wrapper gives them the configuration.
  cat >"${wrapper}.tmp" <<EOF
#!/bin/bash
# vsrflow ${VSR_VERSION} with the cluster configuration (written by the vsrflow bootstrap).
set -a
# shellcheck source=/dev/null
. '$(vsr_path "${VSR_ENV_FILE}")'
set +a
exec '$(vsr_path "${VSR_VENV}")/bin/vsrflow' "\$@"
EOF
  chmod 0755 "${wrapper}.tmp"
  mv -f "${wrapper}.tmp" "${wrapper}"
  vsr_log "wrote ${env_file} and ${wrapper}"
}

# vsr_check_gpus: the node has at least the GPUs the template expects (one endpoint each).
vsr_check_gpus() {
  if [[ "${DRY_RUN}" == "1" ]]; then
    vsr_run nvidia-smi --list-gpus
    return 0
  fi
  local found
  found="$(nvidia-smi --list-gpus | grep -c '^GPU ')" || vsr_die "nvidia-smi failed: no NVIDIA driver on this GPU node"
  ((found >= VSR_GPUS)) || vsr_die "found ${found} GPU(s), the template expects ${VSR_GPUS} (instance type mismatch)"
}

# vsr_ensure_service_user: the unprivileged system user the endpoint units run as (no login, no home).
vsr_ensure_service_user() {
  if [[ "${DRY_RUN}" != "1" ]] && id -u "${VSR_SERVICE_USER}" >/dev/null 2>&1; then
    return 0
  fi
  vsr_run useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    "${VSR_SERVICE_USER}" || vsr_die "cannot create the service user ${VSR_SERVICE_USER}"
}

# vsr_start_endpoints: fetch the weights once, then one instance of the template unit
# vsrflow-serve@.service per GPU (instance = GPU index; `vsrflow serve --gpu I` listens on
# VSRFLOW_ENDPOINT_BASE_PORT + I, 127.0.0.1 only). Two supervisors: `vsrflow serve` restarts its
# Multi Model Server when it dies or hangs (backoff, a give-up limit); systemd restarts
# `vsrflow serve` itself (Restart=always) until StartLimitBurst starts within StartLimitIntervalSec.
vsr_start_endpoints() {
  local units_dir logs_dir wrapper i unit
  units_dir="$(vsr_path /etc/systemd/system)"
  logs_dir="$(vsr_path /var/log/vsrflow)"
  wrapper="$(vsr_path /usr/local/bin/vsrflow)"
  mkdir -p "${units_dir}" "${logs_dir}"
  vsr_run "${wrapper}" models fetch "${VSR_MODEL}" || vsr_die "cannot fetch the weights of ${VSR_MODEL}"
  unit="${units_dir}/vsrflow-serve@.service"
  cat >"${unit}.tmp" <<EOF
# Written by the vsrflow ${VSR_VERSION} bootstrap: one instance per GPU (vsrflow-serve@<gpu>.service).
[Unit]
Description=vsrflow model endpoint ${VSR_MODEL} on GPU %i (127.0.0.1, port VSRFLOW_ENDPOINT_BASE_PORT + %i)
Wants=network-online.target
After=network-online.target remote-fs.target
# A crash loop ends here: the unit stays failed after 5 starts within 10 minutes.
StartLimitIntervalSec=600
StartLimitBurst=5

[Service]
Type=simple
User=${VSR_SERVICE_USER}
Group=${VSR_SERVICE_USER}
EnvironmentFile=$(vsr_path "${VSR_ENV_FILE}")
ExecStart=$(vsr_path "${VSR_VENV}")/bin/vsrflow serve --model ${VSR_MODEL} --gpu %i --host 127.0.0.1 --ready-timeout ${VSR_WARM_TIMEOUT}
StandardOutput=append:${logs_dir}/serve-%i.log
StandardError=append:${logs_dir}/serve-%i.log
Restart=always
RestartSec=5
KillMode=control-group
TimeoutStopSec=30
NoNewPrivileges=true
PrivateTmp=true

[Install]
WantedBy=multi-user.target
EOF
  mv -f "${unit}.tmp" "${unit}"
  for ((i = 0; i < VSR_GPUS; i++)); do
    : >"${logs_dir}/serve-${i}.log.new"  # readiness is read from this run's log only
    mv -f "${logs_dir}/serve-${i}.log.new" "${logs_dir}/serve-${i}.log"
  done
  vsr_run systemctl daemon-reload || vsr_die "systemctl daemon-reload failed"
  for ((i = 0; i < VSR_GPUS; i++)); do
    vsr_run systemctl enable --now "vsrflow-serve@${i}.service" || vsr_die "cannot start vsrflow-serve@${i}"
  done
}

# vsr_wait_endpoints: every endpoint printed its `ready:` line (vsrflow serve prints it after a real
# warm-up invocation) and answers /ping, within --warm-timeout seconds; otherwise fail the node.
vsr_wait_endpoints() {
  local logs_dir deadline i port pending
  logs_dir="$(vsr_path /var/log/vsrflow)"
  deadline=$((SECONDS + VSR_WARM_TIMEOUT))
  while :; do
    pending=()
    for ((i = 0; i < VSR_GPUS; i++)); do
      port=$((VSR_BASE_PORT + i))
      if ! grep -q '^ready: ' "${logs_dir}/serve-${i}.log" 2>/dev/null \
        || ! curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:${port}/ping" 2>/dev/null; then
        pending+=("${i}")
      fi
    done
    if ((${#pending[@]} == 0)); then
      vsr_log "all ${VSR_GPUS} endpoint(s) of ${VSR_MODEL} are warm (ports ${VSR_BASE_PORT}-$((VSR_BASE_PORT + VSR_GPUS - 1)))"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      for i in "${pending[@]}"; do
        vsr_log "endpoint GPU ${i} (port $((VSR_BASE_PORT + i))) log tail:"
        tail -n 20 "${logs_dir}/serve-${i}.log" >&2 2>/dev/null || true
      done
      vsr_die "model endpoint(s) on GPU ${pending[*]} not warm after ${VSR_WARM_TIMEOUT} s; see ${logs_dir}/serve-<gpu>.log"
    fi
    sleep 1
  done
}
