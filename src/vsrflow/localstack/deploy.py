"""Deploy the CloudFormation template into moto and complete what moto's CloudFormation skips.

Steps (every call through boto3 against the local endpoint):

1. upload the function's code object where the template's ``Code`` points (the real package from
   ``make lambda-package`` when given, else a zip of the handler file: the runner executes the
   handler from the repository either way) and pass those parameters;
2. ``CreateStack`` with the template file's own text; wait for ``CREATE_COMPLETE``;
3. bucket versioning as the template says (moto ignores ``VersioningConfiguration``);
4. the ingress queue (the Lambda's async queue stand-in) with a redrive policy to the stack's DLQ
   (``maxReceiveCount`` = the function's retries + 1);
5. the bucket's notifications as the template writes them, with every function target replaced by
   the ingress queue (same events and key filters; moto ignores ``NotificationConfiguration`` and
   cannot invoke Lambda without Docker);
6. an EC2 instance tagged as the head node of ``cluster_name``
   (``parallelcluster:cluster-name``, ``parallelcluster:node-type=HeadNode``).
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vsrflow.errors import InputError, VsrError
from vsrflow.localstack import template as tpl
from vsrflow.localstack.state import ACCOUNT_ID

ARTIFACTS_BUCKET = "vsrflow-local-artifacts"
CODE_KEY = "lambda/s3_trigger.zip"
HEAD_NODE_TYPE = "t3.medium"


@dataclass(frozen=True)
class Deployment:
    """What :func:`deploy` built (physical names and URLs)."""

    outputs: dict[str, str]
    resources: dict[str, str]  # logical id -> physical id
    function_name: str
    function_arn: str
    function_env: dict[str, str]
    ingress_queue_url: str
    dlq_url: str
    head_node: str
    max_retries: int


def _placeholder_package(handler_file: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        if handler_file.is_file():
            zf.write(handler_file, "app.py")
        else:
            zf.writestr(
                "app.py", "# placeholder: the local stack runs lambda/s3_trigger/app.py from the repo\n"
            )
    return buf.getvalue()


def _parameters(
    template: dict[str, Any],
    code: tuple[Any, Any] | None,
    stack_name: str,
    cluster_name: str,
    overrides: dict[str, str],
) -> list[dict[str, str]]:
    """Parameter values: overrides, the code location, the cluster name, local bucket names for
    required ``*BucketName`` parameters; the template's defaults for the rest."""
    declared: dict[str, Any] = template.get("Parameters") or {}
    values: dict[str, str] = {}
    if code is not None:
        for ref, value in zip(code, (ARTIFACTS_BUCKET, CODE_KEY), strict=True):
            if isinstance(ref, dict) and isinstance(ref.get("Ref"), str) and ref["Ref"] in declared:
                default = (declared[ref["Ref"]] or {}).get("Default")
                values[ref["Ref"]] = str(default) if default is not None else value
    for name, decl in declared.items():
        plain = name.lower().replace("_", "")
        if "clustername" in plain:
            values[name] = cluster_name
        elif plain.endswith("bucketname") and "Default" not in (decl or {}):
            # e.g. MediaBucketName -> <stack>-media: bucket names only need to be unique in moto
            values[name] = f"{stack_name}-{plain.removesuffix('bucketname') or 'bucket'}"
    for name, value in overrides.items():
        if name not in declared:
            raise InputError(
                f"parameter {name} is not declared by the template", hint=f"declared: {sorted(declared)}"
            )
        values[name] = value
    missing = [n for n, d in declared.items() if n not in values and "Default" not in (d or {})]
    if missing:
        raise InputError(
            f"the template needs parameters {missing}",
            hint="pass them with `vsrflow local up --parameter NAME=VALUE`",
        )
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


def _wait_stack(cfn: Any, name: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stack: dict[str, Any] = cfn.describe_stacks(StackName=name)["Stacks"][0]
        status = stack["StackStatus"]
        if status == "CREATE_COMPLETE":
            return stack
        if status.endswith("FAILED") or status.startswith("ROLLBACK") or time.monotonic() > deadline:
            events = cfn.describe_stack_events(StackName=name).get("StackEvents", [])
            reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events[:5]]
            raise VsrError(f"stack {name} ended {status} in moto: {reasons}")
        time.sleep(0.2)


def _queue_arn(sqs: Any, url: str) -> str:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return str(attrs["QueueArn"])


def _arn_of(logical: str | None, resources: dict[str, str], types: dict[str, str], sqs: Any) -> str | None:
    if logical is None or logical not in resources:
        return None
    physical = resources[logical]
    if types.get(logical) == "AWS::SQS::Queue":
        return _queue_arn(sqs, physical) if physical.startswith("http") else physical
    return physical  # SNS topics: the physical id is the ARN


def _notification_config(
    bucket: tpl.BucketInfo,
    function_ids: set[str],
    ingress_arn: str,
    resources: dict[str, str],
    types: dict[str, str],
    sqs: Any,
) -> dict[str, Any]:
    queues: list[dict[str, Any]] = []
    topics: list[dict[str, Any]] = []
    for i, rule in enumerate(bucket.notifications):
        filt: dict[str, Any] = {}
        key_rules = [
            {"Name": name, "Value": value}
            for name, value in (("prefix", rule.prefix), ("suffix", rule.suffix))
            if value is not None
        ]
        if key_rules:
            filt = {"Filter": {"Key": {"FilterRules": key_rules}}}
        kind = types.get(rule.target or "", "")
        if rule.target in function_ids or kind == "AWS::Lambda::Function":
            queues.append({"Id": f"lambda-{i}", "QueueArn": ingress_arn, "Events": list(rule.events), **filt})
        elif kind == "AWS::SQS::Queue":
            arn = _arn_of(rule.target, resources, types, sqs)
            if arn:
                queues.append({"Id": f"queue-{i}", "QueueArn": arn, "Events": list(rule.events), **filt})
        elif kind == "AWS::SNS::Topic":
            arn = _arn_of(rule.target, resources, types, sqs)
            if arn:
                topics.append({"Id": f"topic-{i}", "TopicArn": arn, "Events": list(rule.events), **filt})
    config: dict[str, Any] = {}
    if queues:
        config["QueueConfigurations"] = queues
    if topics:
        config["TopicConfigurations"] = topics
    return config


def _head_node(ec2: Any, cluster_name: str) -> str:
    images = ec2.describe_images(Owners=["amazon"]).get("Images", []) or ec2.describe_images().get(
        "Images", []
    )
    if not images:
        raise VsrError("moto offers no AMI to start the head node from")
    tags = [
        {"Key": "parallelcluster:cluster-name", "Value": cluster_name},
        {"Key": "parallelcluster:node-type", "Value": "HeadNode"},
        {"Key": "Name", "Value": "HeadNode"},
    ]
    reply = ec2.run_instances(
        ImageId=images[0]["ImageId"],
        MinCount=1,
        MaxCount=1,
        InstanceType=HEAD_NODE_TYPE,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    return str(reply["Instances"][0]["InstanceId"])


def deploy(
    session: Any,
    *,
    template_path: Path,
    stack_name: str,
    cluster_name: str,
    handler_file: Path,
    lambda_package: Path | None,
    parameters: dict[str, str],
) -> Deployment:
    """Deploy ``template_path`` into the moto behind ``session`` (see the module docstring)."""
    cfn, s3, sqs = session.client("cloudformation"), session.client("s3"), session.client("sqs")
    ec2, lam = session.client("ec2"), session.client("lambda")
    template = tpl.load_template(template_path)
    function = tpl.trigger_function(template)
    if function is None:
        raise InputError(f"{template_path} declares no AWS::Lambda::Function", hint="check the template")
    code = tpl.code_location(template, function.logical_id)
    params = _parameters(template, code, stack_name, cluster_name, parameters)
    if code is not None:
        values = {p["ParameterKey"]: p["ParameterValue"] for p in params}
        bucket, key = (tpl.resolve_value(v, values) for v in code)
        s3.create_bucket(Bucket=bucket)
        if lambda_package is not None and lambda_package.is_file():
            body = lambda_package.read_bytes()
        else:
            body = _placeholder_package(handler_file)
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=template_path.read_text(encoding="utf-8"),
        Parameters=params,
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    stack = _wait_stack(cfn, stack_name)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    described = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
    # Types moto's CloudFormation does not support come back without ids.
    resources = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in described
        if r.get("LogicalResourceId") and r.get("PhysicalResourceId")
    }
    types = {r["LogicalResourceId"]: r["ResourceType"] for r in described if r.get("LogicalResourceId")}

    function_name = outputs.get("FunctionName") or resources.get(function.logical_id, "")
    config = lam.get_function_configuration(FunctionName=function_name)
    # Lambda environment values are strings; moto passes Number parameters through as numbers.
    function_env = {k: str(v) for k, v in ((config.get("Environment") or {}).get("Variables") or {}).items()}

    dlq_url = outputs.get("DLQUrl", "")
    if not dlq_url:
        raise InputError(
            f"{template_path}: the stack has no DLQUrl output", hint="the local stack needs the DLQ"
        )
    ingress_url = sqs.create_queue(
        QueueName=f"{stack_name}-lambda-async",
        Attributes={
            "VisibilityTimeout": "120",
            "RedrivePolicy": json.dumps(
                {
                    "deadLetterTargetArn": _queue_arn(sqs, dlq_url),
                    "maxReceiveCount": str(function.max_retries + 1),
                }
            ),
        },
    )["QueueUrl"]
    ingress_arn = _queue_arn(sqs, ingress_url)

    declared = template.get("Parameters") or {}
    values = {name: str(d["Default"]) for name, d in declared.items() if "Default" in (d or {})}
    values.update({p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])})
    values.update(
        {
            "AWS::StackName": stack_name,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Region": session.region_name,
            "AWS::Partition": "aws",
        }
    )
    delivering = 0
    for bucket_info in tpl.buckets(template, values):
        physical = resources.get(bucket_info.logical_id)
        if physical is None:
            continue
        if bucket_info.versioned:
            s3.put_bucket_versioning(Bucket=physical, VersioningConfiguration={"Status": "Enabled"})
        notif = _notification_config(bucket_info, {function.logical_id}, ingress_arn, resources, types, sqs)
        if notif:
            s3.put_bucket_notification_configuration(Bucket=physical, NotificationConfiguration=notif)
            delivering += sum(1 for q in notif.get("QueueConfigurations", []) if q["QueueArn"] == ingress_arn)
    if not delivering:
        raise InputError(
            f"{template_path}: no bucket notification targets the function {function.logical_id}",
            hint="the template must declare the S3 -> Lambda notification",
        )
    return Deployment(
        outputs=outputs,
        resources=resources,
        function_name=function_name,
        function_arn=str(config.get("FunctionArn", "")),
        function_env=function_env,
        ingress_queue_url=ingress_url,
        dlq_url=dlq_url,
        head_node=_head_node(ec2, cluster_name),
        max_retries=function.max_retries,
    )
