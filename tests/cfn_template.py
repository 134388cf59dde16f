"""infra/cfn/vsrflow.yaml for tests: load it (short tags kept), resolve the intrinsics its
properties use, and turn its bucket CORS rules into the S3 API's form (moto's CloudFormation skips
CorsConfiguration, so tests apply the template's rule through the real API)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "infra" / "cfn" / "vsrflow.yaml"


class CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short tags as their long form."""


def _tag(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    data = yaml.load(path.read_text(), Loader=CfnLoader)  # a SafeLoader subclass
    assert isinstance(data, dict)
    return data


#: What a property resolved to ``AWS::NoValue`` becomes: the key is dropped from its mapping.
NO_VALUE = object()


def conditions(template: dict[str, Any], params: Mapping[str, str]) -> dict[str, bool]:
    """The template's Conditions for ``params`` (Fn::Equals/Not/And/Or over Refs and literals)."""
    out: dict[str, bool] = {}

    def value(v: Any) -> Any:
        return params[v["Ref"]] if isinstance(v, dict) and "Ref" in v else v

    def evaluate(expr: Any) -> bool:
        if "Condition" in expr:
            return evaluate(template["Conditions"][expr["Condition"]])
        if "Fn::Equals" in expr:
            a, b = expr["Fn::Equals"]
            return bool(value(a) == value(b))
        if "Fn::Not" in expr:
            return not evaluate(expr["Fn::Not"][0])
        if "Fn::And" in expr:
            return all(evaluate(e) for e in expr["Fn::And"])
        if "Fn::Or" in expr:
            return any(evaluate(e) for e in expr["Fn::Or"])
        raise AssertionError(f"condition {expr} is not one the tests evaluate")

    for name, expr in template.get("Conditions", {}).items():
        out[name] = evaluate(expr)
    return out


def resolve(value: Any, ref: Callable[[str], str], holds: Mapping[str, bool]) -> Any:
    """``value`` with Ref, GetAtt (``ref("Name.Attr")``), Sub, Split and If resolved.

    ``holds`` are the template's conditions (:func:`conditions`); a branch that is
    ``AWS::NoValue`` removes its key.
    """
    if isinstance(value, list):
        items = [resolve(v, ref, holds) for v in value]
        return [v for v in items if v is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if "Ref" in value:
        return NO_VALUE if value["Ref"] == "AWS::NoValue" else ref(value["Ref"])
    if "Fn::GetAtt" in value:
        return ref(".".join(value["Fn::GetAtt"]))
    if "Fn::Sub" in value:
        return re.sub(r"\$\{([^}]+)\}", lambda m: ref(m.group(1)), value["Fn::Sub"])
    if "Fn::Split" in value:
        sep, text = value["Fn::Split"]
        return str(resolve(text, ref, holds)).split(sep)
    if "Fn::If" in value:
        name, yes, no = value["Fn::If"]
        return resolve(yes if holds[name] else no, ref, holds)
    out = {k: resolve(v, ref, holds) for k, v in value.items()}
    return {k: v for k, v in out.items() if v is not NO_VALUE}


#: CloudFormation's CorsRule property names -> the S3 API's (PutBucketCors).
_CORS_FIELDS = {
    "Id": "ID",
    "AllowedOrigins": "AllowedOrigins",
    "AllowedMethods": "AllowedMethods",
    "AllowedHeaders": "AllowedHeaders",
    "ExposedHeaders": "ExposeHeaders",
    "MaxAge": "MaxAgeSeconds",
}


def cors_configuration(resolved: dict[str, Any]) -> dict[str, Any]:
    """A resolved ``CorsConfiguration`` property as PutBucketCors's ``CORSConfiguration``."""
    return {"CORSRules": [{_CORS_FIELDS[k]: v for k, v in rule.items()} for rule in resolved["CorsRules"]]}


def media_bucket_cors(origins: str, template: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The media bucket's CORS configuration (API form) when deployed with ``UiOrigins=origins``;
    None when the template gives it none."""
    template = template or load()
    params = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()}
    params["UiOrigins"] = origins
    cors = resolve(
        template["Resources"]["MediaBucket"]["Properties"]["CorsConfiguration"],
        params.__getitem__,
        conditions(template, params),
    )
    return None if cors is NO_VALUE else cors_configuration(cors)
