#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# vsrflow OnNodeConfigured action for the HEAD node (infra/cluster/cluster.yaml.j2 passes the args).
# Installs the pinned vsrflow, writes /etc/vsrflow/vsrflow.env and /usr/local/bin/vsrflow, which the
# S3 trigger runs through SSM (`vsrflow submit --job-id ID`) and which submits the Slurm chain.
# Test: DRY_RUN=1 VSRFLOW_BOOTSTRAP_ROOT=$(mktemp -d) bash bootstrap/head-node.sh ARGS (see lib.sh).
set -euo pipefail

# ParallelCluster downloads only this script: lib.sh comes from --lib-uri unless it sits next to it.
vsr_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
vsr_lib="${vsr_here}/lib.sh"
if [[ ! -f "${vsr_lib}" ]]; then
  vsr_args=("$@")
  vsr_lib_uri=""
  for ((vsr_i = 0; vsr_i + 1 < ${#vsr_args[@]}; vsr_i++)); do
    if [[ "${vsr_args[vsr_i]}" == "--lib-uri" ]]; then vsr_lib_uri="${vsr_args[vsr_i + 1]}"; fi
  done
  if [[ ! "${vsr_lib_uri}" =~ ^s3://[a-z0-9.-]+/[A-Za-z0-9._/-]+$ ]]; then
    echo "vsrflow-bootstrap: FATAL: no lib.sh next to ${BASH_SOURCE[0]} and no valid --lib-uri" >&2
    exit 1
  fi
  vsr_lib="$(mktemp -d)/lib.sh"
  aws s3 cp --only-show-errors "${vsr_lib_uri}" "${vsr_lib}"
fi
# shellcheck source=lib.sh
. "${vsr_lib}"

VSR_ROLE="head"
vsr_check_mode
vsr_parse_args "$@"
vsr_ensure_system_packages
vsr_install_vsrflow aws
vsr_write_config
vsr_log "head node ready: vsrflow ${VSR_VERSION}"
