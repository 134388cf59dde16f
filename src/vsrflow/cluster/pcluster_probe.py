"""Offline schema check, run by the ParallelCluster venv's python (NOT imported by vsrflow).

``aws-parallelcluster`` pins old attrs/marshmallow, so it lives in its own venv and this file runs
there as a script: ``<venv>/bin/python pcluster_probe.py`` with a JSON request on stdin::

    {"cluster_name": "vsrflow-dev", "config": {...parsed cluster.yaml...}}

and one JSON answer on stdout::

    {"ok": true, "version": "3.16.1"}
    {"ok": false, "errors": {"SharedStorage": {"0": {"FsxLustreSettings": {...: ["msg"]}}}}}

It uses ``ClusterSchema(cluster_name=...).load(config)``: field-level marshmallow errors, no AWS calls
(the caller sets ``AWS_DEFAULT_REGION`` to the config's Region, which the loader requires). Exit
status 0 when an answer was written (valid or not), 1 on a crash.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def check(request: dict[str, Any]) -> dict[str, Any]:
    """Load the config with ParallelCluster's schema; the answer dict described above."""
    from marshmallow import ValidationError  # the venv's marshmallow, pinned by aws-parallelcluster
    from pcluster.schemas.cluster_schema import ClusterSchema
    from pcluster.utils import get_installed_version

    try:
        ClusterSchema(cluster_name=request["cluster_name"]).load(request["config"])
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        return {"ok": False, "errors": messages, "version": get_installed_version()}
    return {"ok": True, "version": get_installed_version()}


def main() -> int:
    answer = check(json.load(sys.stdin))
    json.dump(answer, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
