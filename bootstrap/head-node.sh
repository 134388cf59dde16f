#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# vsrflow OnNodeConfigured action for the HEAD node (infra/cluster/cluster.yaml.j2 passes the args).
# Installs the pinned vsrflow, writes /etc/vsrflow/vsrflow.env and /usr/local/bin/vsrflow, which the
# S3 trigger runs through SSM (`vsrflow submit --job-id ID`) and which submits the Slurm chain.
# Test: DRY_RUN=1 VSRFLOW_BOOTSTRAP_ROOT=$(mktemp -d) bash bootstrap/head-node.sh ARGS (see lib.sh).
set -euo pipefail

# ParallelCluster downloads only this script: lib.sh comes from --lib-uri unless it sits next to it.
# Either way it is sourced as root only once it matches --lib-sha256 (the cluster template passes it).
vsr_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
vsr_lib="${vsr_here}/lib.sh"
vsr_args=("$@")
vsr_lib_uri=""
vsr_lib_sha256=""
for ((vsr_i = 0; vsr_i + 1 < ${#vsr_args[@]}; vsr_i++)); do
  case "${vsr_args[vsr_i]}" in
    --lib-uri) vsr_lib_uri="${vsr_args[vsr_i + 1]}" ;;
    --lib-sha256) vsr_lib_sha256="${vsr_args[vsr_i + 1]}" ;;
    *) ;;
  esac
done
if [[ ! "${vsr_lib_sha256}" =~ ^[0-9a-f]{64}$ ]]; then
  echo "vsrflow-bootstrap: FATAL: --lib-sha256 must be the 64-hex sha256 of lib.sh (vsrflow.lib_sha256 in the cluster values)" >&2
  exit 1
fi
if [[ ! -f "${vsr_lib}" ]]; then
  if [[ ! "${vsr_lib_uri}" =~ ^s3://[a-z0-9.-]+/[A-Za-z0-9._/-]+$ ]]; then
    echo "vsrflow-bootstrap: FATAL: no lib.sh next to ${BASH_SOURCE[0]} and no valid --lib-uri" >&2
    exit 1
  fi
  vsr_lib="$(mktemp -d)/lib.sh"
  aws s3 cp --only-show-errors "${vsr_lib_uri}" "${vsr_lib}"
fi
if ! printf '%s  %s\n' "${vsr_lib_sha256}" "${vsr_lib}" | sha256sum --check --status --strict -; then
  echo "vsrflow-bootstrap: FATAL: ${vsr_lib} does not match --lib-sha256 ${vsr_lib_sha256} (tampered or stale upload); not sourcing it" >&2
  exit 1
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
