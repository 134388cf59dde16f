"""Finding the cluster's head node: the running EC2 instance ParallelCluster tagged as it."""

from __future__ import annotations

import json
import logging

from vsrflow.aws.clients import AwsClients
from vsrflow.aws.errors import translate
from vsrflow.config import AwsSettings
from vsrflow.errors import TransientError, VsrError

log = logging.getLogger(__name__)

HEAD_NODE_TAGS = {"parallelcluster:node-type": "HeadNode"}
CLUSTER_TAG = "parallelcluster:cluster-name"


def find_head_node(clients: AwsClients, aws: AwsSettings) -> str:
    """Instance id of the running head node of cluster ``aws.cluster_name`` (the newest of several).

    Raises TransientError when none is running (the cluster may be starting), VsrError when no
    cluster name is configured or EC2 refuses.
    """
    name = aws.cluster_name
    if not name:
        raise VsrError("no cluster name configured", hint="set VSRFLOW_AWS_CLUSTER_NAME (ClusterName)")
    filters = [
        {"Name": f"tag:{CLUSTER_TAG}", "Values": [name]},
        *({"Name": f"tag:{k}", "Values": [v]} for k, v in HEAD_NODE_TAGS.items()),
        {"Name": "instance-state-name", "Values": ["running"]},
    ]
    found: list[tuple[str, str]] = []
    try:
        for page in clients.ec2.get_paginator("describe_instances").paginate(Filters=filters):
            for reservation in page.get("Reservations", []):
                for inst in reservation.get("Instances", []):
                    found.append((str(inst.get("LaunchTime", "")), inst["InstanceId"]))
    except Exception as exc:
        raise translate(exc, f"find the head node of cluster {name}", transient_hint="retried") from exc
    if not found:
        raise TransientError(
            f"no running head node for cluster {name}", hint="retried; check that the cluster is up"
        )
    if len(found) > 1:
        # The same JSON-line shape as the trigger's own log lines.
        message = {"message": "several running head nodes; using the newest", "instances": found}
        log.warning(json.dumps(message, default=str, ensure_ascii=False))
    return max(found)[1]
