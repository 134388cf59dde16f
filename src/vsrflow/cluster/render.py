"""Render ``cluster.yaml.j2`` from a values file (jinja2 with ``StrictUndefined``).

A template directory holds ``cluster.yaml.j2`` and ``values.schema.json`` (the repository's is
``infra/cluster/``). The rendered text is parsed back as YAML before it is returned, so a template
bug never produces a file ``pcluster`` cannot read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from vsrflow.cluster.values import check_values, load_schema, load_values, render_context
from vsrflow.errors import InputError

TEMPLATE_NAME = "cluster.yaml.j2"
SCHEMA_NAME = "values.schema.json"

#: The repository's template directory (an editable install or a source checkout).
REPO_TEMPLATE_DIR = Path(__file__).resolve().parents[3] / "infra" / "cluster"


@dataclass(frozen=True)
class Rendered:
    """A rendered configuration: ``text`` (YAML, what ``pcluster`` reads) and ``config`` (parsed)."""

    text: str
    config: dict[str, Any]
    cluster_name: str
    region: str


def find_template_dir(values_path: Path, explicit: Path | None = None) -> Path:
    """The template directory: ``explicit``, else the values file's ``../`` (``values/x.yaml`` sits
    next to the template), else the repository's ``infra/cluster``. Raises InputError if none fits."""
    candidates = (
        [explicit] if explicit is not None else [values_path.resolve().parent.parent, REPO_TEMPLATE_DIR]
    )
    for candidate in candidates:
        if (candidate / TEMPLATE_NAME).is_file() and (candidate / SCHEMA_NAME).is_file():
            return candidate
    where = explicit if explicit is not None else values_path.resolve().parent.parent
    raise InputError(
        f"no {TEMPLATE_NAME} + {SCHEMA_NAME} in {where}",
        hint="pass --template-dir infra/cluster (the directory holding the template)",
    )


def render_values(values_path: Path, template_dir: Path | None = None) -> Rendered:
    """Check the values file and render the template. Raises InputError naming the bad field."""
    directory = find_template_dir(values_path, template_dir)
    values = check_values(
        load_values(values_path), load_schema(directory / SCHEMA_NAME), source=str(values_path)
    )
    context = render_context(values, values_name=values_path.name)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # YAML, not HTML: every scalar is emitted through `tojson` instead
    )
    env.filters["tojson"] = _tojson
    try:
        text = env.get_template(TEMPLATE_NAME).render(**context)
    except jinja2.UndefinedError as exc:
        raise InputError(
            f"{values_path}: the template needs a value that is missing: {exc.message}",
            hint="add it to the values file (and to values.schema.json if the template is new)",
        ) from exc
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # a template bug, not the user's: still say where
        raise InputError(f"{directory / TEMPLATE_NAME}: rendered text is not valid YAML: {exc}") from exc
    return Rendered(text=text, config=config, cluster_name=values["cluster_name"], region=values["region"])


def _tojson(value: Any) -> str:
    """A JSON scalar/list, which YAML reads back unchanged: a value can never inject YAML structure.

    Replaces jinja2's own ``tojson``, which serialises a ``StrictUndefined`` as a TypeError instead of
    reporting the missing name.
    """
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    return json.dumps(value, ensure_ascii=False)
