"""Read the CloudFormation template for what moto's CloudFormation does not apply by itself.

moto creates the resources of the template but ignores a bucket's ``NotificationConfiguration``
and ``VersioningConfiguration`` and a function's retry settings. The local stack reads them here
from the same template file and applies them itself (:mod:`vsrflow.localstack.deploy`).

The template is YAML with CloudFormation's short tags (``!Ref``, ``!GetAtt``, ``!Sub`` ...);
:func:`load_template` turns each tag into its long form (``{"Ref": ...}``, ``{"Fn::GetAtt": ...}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vsrflow.errors import InputError

#: Lambda's default for asynchronous invocations (retries after the first attempt).
DEFAULT_MAX_RETRIES = 2


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation's short-form intrinsic functions."""


def _construct_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix.lstrip("!")
    key = "Ref" if name == "Ref" else f"Fn::{name}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {key: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    """The template as a dict (short tags in long form). Raises InputError naming the file."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(
            f"{path}: cannot read the CloudFormation template: {exc}", hint="check the file"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise InputError(f"{path}: not a CloudFormation template (no Resources)", hint="check the file")
    return data


@dataclass(frozen=True)
class NotificationRule:
    """One S3 notification of a bucket: events, key filter and the logical id of its target."""

    events: tuple[str, ...]
    prefix: str | None
    suffix: str | None
    target: str | None  # logical id of the function/queue/topic, when it is a Ref/GetAtt


@dataclass(frozen=True)
class BucketInfo:
    """What the local stack completes for one ``AWS::S3::Bucket``."""

    logical_id: str
    versioned: bool
    notifications: tuple[NotificationRule, ...]


@dataclass(frozen=True)
class FunctionInfo:
    """The trigger function: logical id and its async retry settings."""

    logical_id: str
    max_retries: int


def _logical_ref(value: Any) -> str | None:
    """``{"Ref": X}``, ``{"Fn::GetAtt": [X, ...]}`` or ``{"Fn::Sub": "...${X.Arn}"}`` -> X."""
    if not isinstance(value, dict):
        return None
    if "Ref" in value and isinstance(value["Ref"], str):
        return value["Ref"]
    getatt = value.get("Fn::GetAtt")
    if isinstance(getatt, list) and getatt and isinstance(getatt[0], str):
        return getatt[0]
    sub = value.get("Fn::Sub")
    text = sub[0] if isinstance(sub, list) and sub else sub
    if isinstance(text, str) and "${" in text:
        inner = text.split("${", 1)[1].split("}", 1)[0]
        return inner.split(".", 1)[0]
    return None


def resolve_value(value: Any, params: dict[str, str]) -> str:
    """A scalar property as a string: literals, ``Ref`` to a parameter and ``Fn::Sub`` of parameters.

    ``params`` holds the stack's parameter values and the pseudo parameters (``AWS::StackName`` ...).
    Raises InputError for anything else (the local stack cannot evaluate it).
    """
    if isinstance(value, str | int | float | bool):
        return str(value)
    if isinstance(value, dict) and isinstance(value.get("Ref"), str) and value["Ref"] in params:
        return params[value["Ref"]]
    sub = value.get("Fn::Sub") if isinstance(value, dict) else None
    if isinstance(sub, str):
        out, rest = "", sub
        while "${" in rest:
            head, _, tail = rest.partition("${")
            name, _, rest = tail.partition("}")
            if name not in params:
                break
            out += head + params[name]
        else:
            return out + rest
    raise InputError(
        f"cannot evaluate {value!r} in the local stack", hint="use a literal or a Ref to a parameter"
    )


def _filter_rules(config: dict[str, Any], params: dict[str, str]) -> tuple[str | None, str | None]:
    rules = (((config.get("Filter") or {}).get("S3Key") or {}).get("Rules")) or []
    prefix = suffix = None
    for rule in rules:
        name = str(rule.get("Name", "")).lower()
        if name == "prefix":
            prefix = resolve_value(rule.get("Value", ""), params)
        elif name == "suffix":
            suffix = resolve_value(rule.get("Value", ""), params)
    return prefix, suffix


def buckets(template: dict[str, Any], params: dict[str, str]) -> list[BucketInfo]:
    """Every bucket of the template with its versioning and notification rules (``params``: see
    :func:`resolve_value`)."""
    out: list[BucketInfo] = []
    for logical_id, res in template["Resources"].items():
        if not isinstance(res, dict) or res.get("Type") != "AWS::S3::Bucket":
            continue
        props = res.get("Properties") or {}
        versioned = (props.get("VersioningConfiguration") or {}).get("Status") == "Enabled"
        rules: list[NotificationRule] = []
        notif = props.get("NotificationConfiguration") or {}
        for kind, target_key in (
            ("LambdaConfigurations", "Function"),
            ("QueueConfigurations", "Queue"),
            ("TopicConfigurations", "Topic"),
        ):
            for config in notif.get(kind) or []:
                prefix, suffix = _filter_rules(config, params)
                event = config.get("Event")
                events = tuple(event) if isinstance(event, list) else (str(event),)
                rules.append(NotificationRule(events, prefix, suffix, _logical_ref(config.get(target_key))))
        out.append(BucketInfo(logical_id, versioned, tuple(rules)))
    return out


def trigger_function(template: dict[str, Any]) -> FunctionInfo | None:
    """The template's Lambda function (the first one when there are several) and its retries."""
    resources = template["Resources"]
    functions = [
        k for k, r in resources.items() if isinstance(r, dict) and r.get("Type") == "AWS::Lambda::Function"
    ]
    if not functions:
        return None
    logical_id = functions[0]
    retries = DEFAULT_MAX_RETRIES
    for res in resources.values():
        if not isinstance(res, dict) or res.get("Type") != "AWS::Lambda::EventInvokeConfig":
            continue
        props = res.get("Properties") or {}
        if _logical_ref(props.get("FunctionName")) in (logical_id, None) and "MaximumRetryAttempts" in props:
            try:
                retries = int(props["MaximumRetryAttempts"])
            except (TypeError, ValueError):
                retries = DEFAULT_MAX_RETRIES
    return FunctionInfo(logical_id, max(0, min(retries, 2)))


def code_location(template: dict[str, Any], function: str) -> tuple[Any, Any] | None:
    """The function's ``Code`` (S3Bucket, S3Key) values as written (may be Refs to parameters)."""
    props = (template["Resources"][function].get("Properties") or {}) if function else {}
    code = props.get("Code") or {}
    if "S3Bucket" in code and "S3Key" in code:
        return code["S3Bucket"], code["S3Key"]
    return None
