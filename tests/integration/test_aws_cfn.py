"""infra/cfn/vsrflow.yaml: cfn-lint clean, least privilege, and deployed into moto (server mode)."""

from __future__ import annotations

import ast
import contextlib
import json
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests import cfn_template
from tests.cfn_template import REPO, TEMPLATE

REGION = "us-east-1"
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_template.load()


def test_cfn_lint_is_clean() -> None:
    exe = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    assert exe, "cfn-lint is in the dev extra"
    proc = subprocess.run([exe, str(TEMPLATE)], capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for res in template["Resources"].values():
        props = res.get("Properties", {})
        docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
        if "PolicyDocument" in props:
            docs.append(props["PolicyDocument"])
        for doc in docs:
            out.extend(doc["Statement"])
    return out


def test_least_privilege(template: dict[str, Any]) -> None:
    text = TEMPLATE.read_text()
    assert "FullAccess" not in text and "ManagedPolicyArns" not in text
    allows = [s for s in _statements(template) if s["Effect"] == "Allow"]
    for statement in allows:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in a for a in actions), statement
        if statement["Resource"] == "*":  # only actions without resource-level permissions
            assert actions in (["ec2:DescribeInstances"], ["ssm:GetCommandInvocation"]), statement
    send = [s for s in allows if s["Action"] == "ssm:SendCommand"]
    assert len(send) == 2
    by_sid = {s["Sid"]: s for s in send}
    document = by_sid["SendCommandDocument"]
    assert document["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}::document/AWS-RunShellScript"
    }
    instances = by_sid["SendCommandClusterInstances"]
    assert "instance/*" in instances["Resource"]["Fn::Sub"]
    # The head node of this cluster only: compute nodes carry the cluster tag as well.
    assert instances["Condition"] == {
        "StringEquals": {
            "ssm:resourceTag/parallelcluster:cluster-name": {"Ref": "ClusterName"},
            "ssm:resourceTag/parallelcluster:node-type": "HeadNode",
        }
    }
    # Every bucket blocks public access, is encrypted and denies plain HTTP.
    resources = template["Resources"]
    buckets = [k for k, r in resources.items() if r["Type"] == "AWS::S3::Bucket"]
    assert len(buckets) == 2
    for name in buckets:
        props = resources[name]["Properties"]
        assert all(props["PublicAccessBlockConfiguration"].values())
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        policies = [
            r
            for r in resources.values()
            if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == {"Ref": name}
        ]
        (policy,) = policies
        deny = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_notifications_cover_every_upload_whatever_its_suffix_case(template: dict[str, Any]) -> None:
    props = template["Resources"]["MediaBucket"]["Properties"]
    configs = props["NotificationConfiguration"]["LambdaConfigurations"]
    # Prefix only: S3 suffix filters are case-sensitive (clip.Mp4 would never trigger); the
    # trigger itself rejects unsupported suffixes, case-insensitively, with a failed status.
    (config,) = configs
    assert config["Event"] == "s3:ObjectCreated:*"
    assert config["Function"] == {"Fn::GetAtt": ["TriggerFunction", "Arn"]}
    assert config["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": {"Ref": "UploadPrefix"}}]
    permission = template["Resources"]["TriggerPermission"]["Properties"]
    assert permission["Principal"] == "s3.amazonaws.com" and "SourceAccount" in permission
    # SSM command failures reach the same function through EventBridge.
    rule = template["Resources"]["CommandFailedRule"]["Properties"]
    assert rule["EventPattern"]["source"] == ["aws.ssm"]
    assert rule["EventPattern"]["detail-type"] == ["EC2 Command Invocation Status-change Notification"]
    assert set(rule["EventPattern"]["detail"]["status"]) == {
        "Failed",
        "TimedOut",
        "Undeliverable",
        "Cancelled",
    }
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["TriggerFunction", "Arn"]}
    invoke = template["Resources"]["CommandFailedPermission"]["Properties"]
    assert invoke["Principal"] == "events.amazonaws.com"
    assert invoke["SourceArn"] == {"Fn::GetAtt": ["CommandFailedRule", "Arn"]}
    retry = template["Resources"]["TriggerInvokeConfig"]["Properties"]
    assert retry["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["DeadLetterQueue", "Arn"]
    }


# ---- deployed into moto ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_session(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    from moto.server import ThreadedMotoServer

    # Like S3, answer cross-origin requests by the bucket's CORS rules only (moto's server adds
    # allow-everything CORS headers to every response otherwise). Read when the server's S3 app
    # is created, at its first request.
    monkeypatch_module.setattr("moto.moto_server.werkzeug_app.DISABLE_GLOBAL_CORS", True)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch_module.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch_module.setenv(name, "testing")
    monkeypatch_module.delenv("AWS_PROFILE", raising=False)
    try:
        yield boto3.session.Session(region_name=REGION)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def lambda_code(
    moto_session: boto3.session.Session, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The trigger package built from the repository, in the artifacts bucket (stack parameters)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_package", REPO / "lambda" / "build_package.py")
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    package = builder.build(tmp_path_factory.mktemp("lambda") / "pkg.zip")
    s3 = moto_session.client("s3")
    s3.create_bucket(Bucket="vsrflow-artifacts")
    s3.put_object(Bucket="vsrflow-artifacts", Key="lambda/pkg.zip", Body=package.read_bytes())
    return {"LambdaCodeBucket": "vsrflow-artifacts", "LambdaCodeKey": "lambda/pkg.zip"}


def _deploy(
    session: boto3.session.Session, template: dict[str, Any], stack_name: str, params: dict[str, str]
) -> dict[str, Any]:
    """Create stack ``stack_name`` from the template on moto; its outputs and resources' ids."""
    cfn = session.client("cloudformation")
    cfn.create_stack(
        StackName=stack_name,
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    resources = cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
    physical = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in resources if "LogicalResourceId" in r
    }
    defaults = {k: str(v["Default"]) for k, v in template["Parameters"].items() if "Default" in v}
    _complete_moto_gaps(session, template, physical, {**defaults, **params, "AWS::StackName": stack_name})
    return {
        "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
        # Types moto's CloudFormation does not implement come back without ids.
        "resources": {
            r["LogicalResourceId"]: r.get("PhysicalResourceId") for r in resources if "LogicalResourceId" in r
        },
    }


@pytest.fixture(scope="module")
def deployed(
    moto_session: boto3.session.Session, lambda_code: dict[str, str], template: dict[str, Any]
) -> dict[str, Any]:
    params = {
        "MediaBucketName": "vsrflow-media-test",
        "ClusterName": "vsr-test",
        **lambda_code,
        "MaxObjectBytes": "1000000",
    }
    return _deploy(moto_session, template, "vsrflow", params)


#: The origins of the web page in the stack deployed with UiOrigins.
UI_ORIGINS = "https://media-ops.example,http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def deployed_ui(
    moto_session: boto3.session.Session, lambda_code: dict[str, str], template: dict[str, Any]
) -> dict[str, Any]:
    """A second stack (own bucket, table, topic) with the web page's origins set."""
    params = {
        "MediaBucketName": "vsrflow-media-ui",
        "ClusterName": "vsr-ui",
        **lambda_code,
        "UiOrigins": UI_ORIGINS,
    }
    return _deploy(moto_session, template, "vsrflow-ui", params)


def _resolve(value: Any, physical: dict[str, str], params: dict[str, str], template: dict[str, Any]) -> Any:
    """The intrinsics the bucket properties, policies and table use (Ref, GetAtt Arn of a bucket,
    Sub, Split, If on the template's conditions)."""
    pseudo = {
        "AWS::Partition": "aws",
        "AWS::Region": REGION,
        "AWS::AccountId": "123456789012",
        "AWS::StackName": "vsrflow",
    }

    def ref(name: str) -> str:
        if name.endswith(".Arn"):
            return f"arn:aws:s3:::{physical[name[:-4]]}"
        return {**pseudo, **params, **physical}[name]

    return cfn_template.resolve(value, ref, cfn_template.conditions(template, params))


def _complete_moto_gaps(
    session: boto3.session.Session, template: dict[str, Any], physical: dict[str, str], params: dict[str, str]
) -> None:
    """Apply, through the real APIs, the template properties moto's CloudFormation skips:
    bucket public access blocks, CORS rules and policies, and the table's TTL."""
    s3, ddb = session.client("s3"), session.client("dynamodb")
    holds = cfn_template.conditions(template, params)
    for logical, res in template["Resources"].items():
        if "Condition" in res and not holds[res["Condition"]]:
            continue
        props = _resolve(res.get("Properties", {}), physical, params, template)
        if res["Type"] == "AWS::S3::Bucket":
            s3.put_public_access_block(
                Bucket=physical[logical],
                PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"],
            )
            if "CorsConfiguration" in props:
                s3.put_bucket_cors(
                    Bucket=physical[logical],
                    CORSConfiguration=cfn_template.cors_configuration(props["CorsConfiguration"]),
                )
        elif res["Type"] == "AWS::S3::BucketPolicy":
            s3.put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(props["PolicyDocument"]))
        elif res["Type"] == "AWS::DynamoDB::Table" and "TimeToLiveSpecification" in props:
            ddb.update_time_to_live(
                TableName=physical[logical], TimeToLiveSpecification=props["TimeToLiveSpecification"]
            )


def test_stack_outputs_and_data_stores(moto_session: boto3.session.Session, deployed: dict[str, Any]) -> None:
    out = deployed["outputs"]
    assert {"BucketName", "TableName", "TopicArn", "DLQUrl", "FunctionName"} <= set(out)
    assert out["BucketName"] == "vsrflow-media-test"
    s3 = moto_session.client("s3")
    rules = s3.get_bucket_encryption(Bucket=out["BucketName"])["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = s3.get_public_access_block(Bucket=out["BucketName"])["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    policy = json.loads(s3.get_bucket_policy(Bucket=out["BucketName"])["Policy"])
    (deny,) = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == ["arn:aws:s3:::vsrflow-media-test", "arn:aws:s3:::vsrflow-media-test/*"]
    ddb = moto_session.client("dynamodb")
    ttl = ddb.describe_time_to_live(TableName=out["TableName"])["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    table = ddb.describe_table(TableName=out["TableName"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"}]
    sns = moto_session.client("sns")
    assert sns.get_topic_attributes(TopicArn=out["TopicArn"])["Attributes"]["TopicArn"] == out["TopicArn"]
    sqs = moto_session.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=out["DLQUrl"], AttributeNames=["All"])["Attributes"]
    assert attrs["MessageRetentionPeriod"] == "1209600"


def test_function_is_wired_to_the_stack(
    moto_session: boto3.session.Session, deployed: dict[str, Any]
) -> None:
    out = deployed["outputs"]
    lam = moto_session.client("lambda")
    config = lam.get_function_configuration(FunctionName=out["FunctionName"])
    assert (config["Runtime"], config["Handler"], config["Timeout"]) == ("python3.11", "app.handler", 60)
    env = config["Environment"]["Variables"]
    assert env["VSRFLOW_AWS_BUCKET"] == out["BucketName"]
    assert env["VSRFLOW_AWS_TABLE"] == out["TableName"]
    assert env["VSRFLOW_AWS_TOPIC_ARN"] == out["TopicArn"]
    assert env["VSRFLOW_AWS_CLUSTER_NAME"] == "vsr-test"
    assert str(env["VSRFLOW_AWS_MAX_OBJECT_BYTES"]) == "1000000"  # moto keeps the Number type
    # The settings the function will build from this environment are valid.
    from vsrflow.config import Settings

    aws = Settings.from_env({k: str(v) for k, v in env.items()}).aws
    assert aws.upload_prefixes == ("uploads/",) and aws.preset_for("anime") == ("anime", 2.0)
    assert int(env["VSRFLOW_AWS_CLAIM_SECONDS"]) > config["Timeout"]
    # The execution role carries the template's inline policy, nothing managed.
    iam = moto_session.client("iam")
    role = config["Role"].rsplit("/", 1)[1]
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    (name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    if isinstance(document, str):  # moto's CloudFormation stores the Python repr of the document
        document = ast.literal_eval(document)
    send = [s for s in document["Statement"] if s["Action"] == "ssm:SendCommand"]
    assert {s["Resource"] for s in send} == {
        "arn:aws:ssm:us-east-1::document/AWS-RunShellScript",
        "arn:aws:ec2:us-east-1:123456789012:instance/*",
    }
    cond = [s["Condition"] for s in send if "Condition" in s]
    assert cond == [
        {
            "StringEquals": {
                "ssm:resourceTag/parallelcluster:cluster-name": "vsr-test",
                "ssm:resourceTag/parallelcluster:node-type": "HeadNode",
            }
        }
    ]
    reads = [s for s in document["Statement"] if s.get("Sid") == "ReadUploads"]
    assert reads[0]["Resource"] == "arn:aws:s3:::vsrflow-media-test/uploads/*"


def test_template_notifications_apply_to_the_bucket(
    moto_session: boto3.session.Session, deployed: dict[str, Any], template: dict[str, Any]
) -> None:
    """moto's CloudFormation skips NotificationConfiguration; S3 itself accepts the template's."""
    out = deployed["outputs"]
    lam = moto_session.client("lambda")
    arn = lam.get_function_configuration(FunctionName=out["FunctionName"])["FunctionArn"]
    configs = template["Resources"]["MediaBucket"]["Properties"]["NotificationConfiguration"]
    resolved = [
        {
            "Events": [c["Event"]],
            "LambdaFunctionArn": arn,
            "Filter": {
                "Key": {
                    "FilterRules": [
                        {
                            "Name": r["Name"],
                            "Value": "uploads/" if isinstance(r["Value"], dict) else r["Value"],
                        }
                        for r in c["Filter"]["S3Key"]["Rules"]
                    ]
                }
            },
        }
        for c in configs["LambdaConfigurations"]
    ]
    s3 = moto_session.client("s3")
    s3.put_bucket_notification_configuration(
        Bucket=out["BucketName"], NotificationConfiguration={"LambdaFunctionConfigurations": resolved}
    )
    applied = s3.get_bucket_notification_configuration(Bucket=out["BucketName"])
    (applied_config,) = applied["LambdaFunctionConfigurations"]
    rules = [(r["Name"].lower(), r["Value"]) for r in applied_config["Filter"]["Key"]["FilterRules"]]
    assert rules == [("prefix", "uploads/")]  # no suffix filter: clip.Mp4 triggers too


def test_nodes_may_write_statuses_and_outputs_but_never_requests(template: dict[str, Any]) -> None:
    """Every node runs stages (status.json, outputs) but only the trigger names a job's work."""
    doc = template["Resources"]["ClusterNodePolicy"]["Properties"]["PolicyDocument"]
    by_sid = {s["Sid"]: s for s in doc["Statement"]}

    def resources(statement: dict[str, Any]) -> list[str]:
        res = statement["Resource"]
        return [r["Fn::Sub"] for r in (res if isinstance(res, list) else [res])]

    bucket = "arn:${AWS::Partition}:s3:::${MediaBucketName}/"
    writes = [s for s in doc["Statement"] if s["Effect"] == "Allow" and "s3:PutObject" in s["Action"]]
    assert sorted(r for s in writes for r in resources(s)) == [
        f"{bucket}${{OutputPrefix}}*",
        f"{bucket}jobs/*/status.json",
    ]
    deny = by_sid["NeverWriteJobRequests"]
    assert deny["Effect"] == "Deny" and resources(deny) == [f"{bucket}jobs/*/request.json"]
    assert {"s3:PutObject", "s3:DeleteObject"} <= set(deny["Action"])
    # The trigger still writes requests (its own role, not this policy).
    trigger = template["Resources"]["TriggerRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    assert any(
        "s3:PutObject" in s["Action"] and s["Resource"] == {"Fn::Sub": f"{bucket}jobs/*"}
        for s in trigger["Statement"]
    )


def test_node_policy_as_iam_evaluates_it(
    moto_session: boto3.session.Session, deployed: dict[str, Any]
) -> None:
    """The deployed ClusterNodePolicy, enforced by moto's IAM: a node's own keys try each write."""
    import requests

    iam = moto_session.client("iam")
    arn = deployed["outputs"]["ClusterNodePolicyArn"]
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    assert "NeverWriteJobRequests" in json.dumps(document)
    iam.create_user(UserName="cluster-node")
    iam.attach_user_policy(UserName="cluster-node", PolicyArn=arn)
    key = iam.create_access_key(UserName="cluster-node")["AccessKey"]
    bucket = deployed["outputs"]["BucketName"]
    admin = moto_session.client("s3")
    # moto enforces the bucket's deny-plain-HTTP policy, and this endpoint is plain HTTP: set it
    # aside (identity policies are what is tested here) and put it back afterwards.
    bucket_policy = admin.get_bucket_policy(Bucket=bucket)["Policy"]
    admin.delete_bucket_policy(Bucket=bucket)
    admin.put_object(Bucket=bucket, Key="jobs/0123456789abcdef/request.json", Body=b"{}")
    node = boto3.session.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=REGION
    ).client("s3")
    endpoint = node.meta.endpoint_url
    # From here on moto checks every request's signature and the caller's IAM policies.
    requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=30).raise_for_status()
    try:

        def allowed(call: Any, **kwargs: Any) -> bool:
            try:
                call(Bucket=bucket, **kwargs)
            except node.exceptions.ClientError as err:
                assert err.response["Error"]["Code"] == "AccessDenied", err.response
                return False
            return True

        job = "jobs/0123456789abcdef/"
        assert allowed(node.put_object, Key=job + "status.json", Body=b"{}")
        assert allowed(node.put_object, Key="outputs/anime/clip_x2.mp4", Body=b"video")
        assert allowed(node.get_object, Key=job + "request.json")
        assert not allowed(node.put_object, Key=job + "request.json", Body=b'{"bucket": "elsewhere"}')
        assert not allowed(node.create_multipart_upload, Key=job + "request.json")
        assert not allowed(node.delete_object, Key=job + "request.json")
        assert not allowed(node.put_object, Key=job + "other.json", Body=b"{}")
        assert not allowed(node.put_object, Key="uploads/anime/clip.mp4", Body=b"video")
    finally:
        requests.post(f"{endpoint}/moto-api/reset-auth", data=b"inf", timeout=30).raise_for_status()
    assert admin.get_object(Bucket=bucket, Key=job + "request.json")["Body"].read() == b"{}"
    admin.put_bucket_policy(Bucket=bucket, Policy=bucket_policy)


def test_cluster_values_default_to_the_stacks_upload_rules(template: dict[str, Any]) -> None:
    """The head node re-derives requests with the cluster values' event_path: same defaults."""
    schema = json.loads((REPO / "infra" / "cluster" / "values.schema.json").read_text())
    rules = schema["properties"]["event_path"]["properties"]
    params = template["Parameters"]
    pairs = {
        "upload_prefix": "UploadPrefix",
        "output_prefix": "OutputPrefix",
        "presets": "Presets",
        "max_object_bytes": "MaxObjectBytes",
    }
    for field, parameter in pairs.items():
        assert str(rules[field]["default"]) == str(params[parameter]["Default"]), field


# ---- the web page (UiOrigins) ---------------------------------------------------------------------


def test_ui_origins_parameter_takes_origins_only(template: dict[str, Any]) -> None:
    """Exact origins (the CORS rule allows each one as written): no path, no wildcard."""
    pattern = re.compile(template["Parameters"]["UiOrigins"]["AllowedPattern"])
    assert template["Parameters"]["UiOrigins"]["Default"] == ""
    for good in ("", "https://media-ops.example", "http://127.0.0.1:8765,https://a.example:8443"):
        assert pattern.fullmatch(good), good
    bad_values = (
        "*",
        "https://*.example",
        "https://a.example/",
        "a.example",
        "https://a.example,",
        "https://a b",
    )
    for bad in bad_values:
        assert not pattern.fullmatch(bad), bad


def test_ui_server_policy_grants_only_what_the_server_calls(template: dict[str, Any]) -> None:
    res = template["Resources"]["UiServerPolicy"]
    assert res["Condition"] == "HasUiOrigins"
    assert template["Outputs"]["UiServerPolicyArn"]["Condition"] == "HasUiOrigins"
    statements = res["Properties"]["PolicyDocument"]["Statement"]
    assert all(s["Effect"] == "Allow" for s in statements)
    bucket = "arn:${AWS::Partition}:s3:::${MediaBucketName}"

    def grants(statement: dict[str, Any]) -> set[tuple[str, str]]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        res = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        return {(a, r["Fn::Sub"]) for a in actions for r in res}

    # presign.start_multipart/complete_multipart (Create/UploadPart/Complete = PutObject, ListParts),
    # the probe's HeadObject and presigned GET of the upload, jobrecords.read_status, the result's
    # presigned GET, jobrecords.list_status_objects (ListObjectsV2 Prefix=jobs/).
    assert set().union(*map(grants, statements)) == {
        ("s3:PutObject", f"{bucket}/${{UploadPrefix}}*/*"),
        ("s3:ListMultipartUploadParts", f"{bucket}/${{UploadPrefix}}*/*"),
        ("s3:GetObject", f"{bucket}/${{UploadPrefix}}*/*"),
        ("s3:GetObject", f"{bucket}/jobs/*/status.json"),
        ("s3:GetObject", f"{bucket}/${{OutputPrefix}}*"),
        ("s3:ListBucket", bucket),
    }
    (listing,) = [s for s in statements if s["Action"] == "s3:ListBucket"]
    # moto's IAM does not evaluate s3:prefix, so this condition is checked here, not by moto.
    assert listing["Condition"] == {"StringEquals": {"s3:prefix": "jobs/"}}
    assert [s for s in statements if "Condition" in s] == [listing]


def test_ui_origins_add_the_cors_rule_and_the_policy_only_when_set(
    moto_session: boto3.session.Session, deployed: dict[str, Any], deployed_ui: dict[str, Any]
) -> None:
    s3 = moto_session.client("s3")
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchCORSConfiguration"):
        s3.get_bucket_cors(Bucket=deployed["outputs"]["BucketName"])
    assert "UiServerPolicyArn" not in deployed["outputs"]
    assert "UiServerPolicy" not in deployed["resources"]
    (rule,) = s3.get_bucket_cors(Bucket=deployed_ui["outputs"]["BucketName"])["CORSRules"]
    assert rule["AllowedOrigins"] == UI_ORIGINS.split(",")
    assert sorted(rule["AllowedMethods"]) == ["GET", "PUT"]
    assert rule["ExposeHeaders"] == ["ETag"] and rule["MaxAgeSeconds"] == 3600
    assert deployed_ui["outputs"]["UiServerPolicyArn"].startswith("arn:aws:iam::123456789012:policy/")


@contextlib.contextmanager
def _without_bucket_policy(s3: Any, bucket: str) -> Iterator[None]:
    """moto enforces the bucket's deny-plain-HTTP policy (and this endpoint is plain HTTP) on object
    requests: set it aside while identity policies and CORS are tested, then put it back."""
    policy = s3.get_bucket_policy(Bucket=bucket)["Policy"]
    s3.delete_bucket_policy(Bucket=bucket)
    try:
        yield
    finally:
        s3.put_bucket_policy(Bucket=bucket, Policy=policy)


def _cors_headers(response: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


def _preflight(url: str, origin: str) -> Any:
    """The OPTIONS request a browser on ``origin`` sends before PUTting a part to ``url``."""
    import requests

    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type",
    }
    return requests.options(url, headers=headers, timeout=30)


def test_ui_cors_rule_answers_the_browsers_preflights(
    moto_session: boto3.session.Session, deployed: dict[str, Any], deployed_ui: dict[str, Any]
) -> None:
    """What a browser on the page's origin asks before PUTting a part to a presigned URL."""
    import requests

    s3 = moto_session.client("s3")
    for stack in (deployed, deployed_ui):
        bucket = stack["outputs"]["BucketName"]
        with _without_bucket_policy(s3, bucket):
            key = "uploads/anime/old tape.mp4"
            upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
            url = s3.generate_presigned_url(
                "upload_part", Params={"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": 1}
            )
            try:
                page = "https://media-ops.example"
                answer = _preflight(url, page)
                if stack is deployed:  # no rule: no CORS headers, the browser sends nothing
                    assert "access-control-allow-origin" not in _cors_headers(answer), answer.headers
                    continue
                assert answer.status_code == 200, answer.text
                headers = _cors_headers(answer)
                assert headers["access-control-allow-origin"] == page
                assert "PUT" in headers["access-control-allow-methods"]
                assert headers["access-control-allow-headers"].lower() == "content-type"
                assert headers["access-control-max-age"] == "3600"
                # The part itself: the page may read its ETag.
                put = requests.put(url, data=b"part", headers={"Origin": page}, timeout=30)
                assert put.status_code == 200, put.text
                assert _cors_headers(put)["access-control-allow-origin"] == page
                assert _cors_headers(put)["access-control-expose-headers"] == "ETag"
                assert put.headers["ETag"]
                # Another origin is refused.
                other = _preflight(url, "https://elsewhere.example")
                assert other.status_code == 403
                assert "access-control-allow-origin" not in _cors_headers(other)
            finally:
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)


def test_ui_server_policy_as_iam_evaluates_it(
    moto_session: boto3.session.Session, deployed_ui: dict[str, Any]
) -> None:
    """The server's own calls (vsrflow.aws.presign, jobrecords, the page's job list) with keys that
    hold only UiServerPolicy, enforced by moto's IAM: they pass; writes to jobs/ and outputs/ fail.

    moto cannot evaluate query-string-signed requests while it enforces IAM, so what each presigned
    URL does (UploadPart, GetObject, both authorised as its signer) is sent header-signed with the
    same keys.
    """
    import requests
    from botocore.config import Config

    from vsrflow.aws import jobrecords, presign
    from vsrflow.web.jobs import S3Jobs
    from vsrflow.workflow.job.state import JobState

    iam = moto_session.client("iam")
    iam.create_user(UserName="ui-server")
    iam.attach_user_policy(UserName="ui-server", PolicyArn=deployed_ui["outputs"]["UiServerPolicyArn"])
    key = iam.create_access_key(UserName="ui-server")["AccessKey"]
    bucket = deployed_ui["outputs"]["BucketName"]
    admin = moto_session.client("s3")
    job_id = "0123456789abcdef"
    upload = "uploads/anime/old tape.mp4"
    output = "outputs/anime/old tape_x2.mp4"
    ui = boto3.session.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=REGION
    ).client("s3", config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))  # as make_client
    endpoint = ui.meta.endpoint_url
    with _without_bucket_policy(admin, bucket):
        # The head node's records of a finished job (the page only reads them).
        admin.put_object(Bucket=bucket, Key=output, Body=b"result")
        admin.put_object(Bucket=bucket, Key=jobrecords.request_key(job_id), Body=b"{}")
        done = jobrecords.JobStatus(
            job_id=job_id,
            state=JobState.DONE,
            source=f"s3://{bucket}/{upload}",
            output=f"s3://{bucket}/{output}",
        )
        assert jobrecords.write_status(admin, bucket, done)
        # From here on moto checks every request's signature and the caller's IAM policies.
        requests.post(f"{endpoint}/moto-api/reset-auth", data=b"0", timeout=30).raise_for_status()
        try:

            def allowed(call: Any, **kwargs: Any) -> bool:
                try:
                    call(Bucket=bucket, **kwargs)
                except ui.exceptions.ClientError as err:
                    assert err.response["Error"]["Code"] == "AccessDenied", err.response
                    return False
                return True

            # Upload: start and sign, the browser's part, complete from the parts S3 holds.
            body = b"video bytes " * 100
            plan = presign.start_multipart(ui, bucket, upload, len(body))
            (url,) = plan.urls
            assert f"X-Amz-Credential={key['AccessKeyId']}%2F" in url  # S3 authorises it as this user
            ui.upload_part(Bucket=bucket, Key=upload, UploadId=plan.upload_id, PartNumber=1, Body=body)
            assert presign.complete_multipart(ui, bucket, upload, plan.upload_id, 1)
            # The probe: HeadObject, then the presigned GET's reads.
            assert ui.head_object(Bucket=bucket, Key=upload)["ContentLength"] == len(body)
            assert ui.get_object(Bucket=bucket, Key=upload, Range="bytes=0-9")["Body"].read() == body[:10]
            # The job list (LIST jobs/ + GET status.json) and the result's presigned GET.
            jobs = S3Jobs(ui, bucket)
            (view,) = jobs.views()
            assert (view["id"], view["state"], view["has_result"]) == (job_id, "done", True)
            assert jobs.result_location(job_id, download=True)
            assert ui.get_object(Bucket=bucket, Key=output)["Body"].read() == b"result"

            # Never: job records, outputs, other upload keys, deletes, other reads.
            status = jobrecords.status_key(job_id)
            assert not allowed(ui.put_object, Key=status, Body=b"{}")
            assert not allowed(ui.put_object, Key=jobrecords.request_key(job_id), Body=b"{}")
            assert not allowed(ui.create_multipart_upload, Key=f"jobs/{job_id}/status.json")
            assert not allowed(ui.put_object, Key=output, Body=b"replaced")
            assert not allowed(ui.create_multipart_upload, Key="outputs/anime/other_x2.mp4")
            assert not allowed(ui.put_object, Key="uploads/no-folder.mp4", Body=b"video")
            assert not allowed(ui.delete_object, Key=upload)
            assert not allowed(ui.delete_object, Key=status)
            assert not allowed(ui.get_object, Key=jobrecords.request_key(job_id))
            assert not allowed(ui.put_bucket_cors, CORSConfiguration={"CORSRules": []})
        finally:
            requests.post(f"{endpoint}/moto-api/reset-auth", data=b"inf", timeout=30).raise_for_status()
        assert admin.get_object(Bucket=bucket, Key=upload)["Body"].read() == body
        assert admin.get_object(Bucket=bucket, Key=output)["Body"].read() == b"result"
