"""docs/deploy-aws.md cannot drift from the code it tells a user to run.

Every ``vsrflow ...`` line in its ```bash blocks is parsed by the real CLI parser
(:func:`vsrflow.cli.build_parser`: unknown commands or flags, bad choices and deprecated spellings
fail), every ``make ...`` target must be a rule of the Makefile, every ``pcluster ...`` line is parsed
by ParallelCluster's own parser (in the pcluster venv), the stack parameters it passes
and the stack outputs and values fields it names must exist in ``infra/cfn/vsrflow.yaml`` and
``infra/cluster/values.schema.json``.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from vsrflow.cli import build_parser
from vsrflow.config import Settings

RUNBOOK = REPO / "docs" / "deploy-aws.md"
SEPARATORS = {"&&", "||", ";", "|"}


def shell_lines(markdown: str) -> list[str]:
    """The command lines of every ```bash block: continuation lines joined, blank lines dropped."""
    lines: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines.extend(line.strip() for line in joined.splitlines() if line.strip())
    return lines


def commands(line: str) -> list[list[str]]:
    """The simple commands of one shell line (comments dropped; split at ``&&``, ``|``, ...), each
    without its leading ``NAME=value`` assignments."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    out: list[list[str]] = []
    current: list[str] = []
    for token in lexer:
        if token in SEPARATORS:
            out.append(current)
            current = []
        else:
            current.append(token)
    out.append(current)
    result = []
    for words in out:
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
            words = words[1:]
        if words:
            result.append(words)
    return result


def runbook_commands(program: str) -> list[list[str]]:
    """Every command of the runbook whose program is ``program`` (``vsrflow``, ``.venv/bin/vsrflow``)."""
    found = []
    for line in shell_lines(RUNBOOK.read_text()):
        for words in commands(line):
            if Path(words[0]).name == program:
                found.append(words)
    return found


def make_targets() -> set[str]:
    rules = re.findall(r"^([A-Za-z0-9_.-]+):(?!=)", (REPO / "Makefile").read_text(), re.M)
    return set(rules)


def test_the_splitter_sees_through_comments_assignments_and_pipes() -> None:
    assert commands('A=1 B="x y" vsrflow status J --watch  # a comment') == [
        ["vsrflow", "status", "J", "--watch"]
    ]
    assert commands("make a && vsrflow b | tr -d x") == [["make", "a"], ["vsrflow", "b"], ["tr", "-d", "x"]]
    (joined,) = shell_lines("```bash\nmake x \\\n  Y=1\n\n```\n")
    assert commands(joined) == [["make", "x", "Y=1"]]


def test_every_vsrflow_line_parses_with_the_real_cli() -> None:
    lines = runbook_commands("vsrflow")
    seen = set()
    for words in lines:
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            try:
                args = build_parser().parse_args(words[1:])
            except SystemExit as exc:
                pytest.fail(
                    f"docs/deploy-aws.md: `{shlex.join(words)}` does not parse: {stderr.getvalue()} ({exc})"
                )
        assert "deprecated" not in stderr.getvalue(), f"`{shlex.join(words)}` uses a deprecated spelling"
        seen.add(" ".join(w for w in words[1:3] if not w.startswith("-")))
        assert args.command == words[1]
    # The steps the runbook exists for (a broken extraction would find nothing and pass silently).
    for step in ("cluster render", "cluster validate", "ui", "bench"):
        assert any(s == step or s.startswith(step + " ") for s in seen), f"no `vsrflow {step}` line found"
    assert any(s.startswith("status") for s in seen)
    assert any("--full" in words for words in lines), "validate --full is a step of the runbook"


def test_every_make_target_exists() -> None:
    targets = make_targets()
    lines = runbook_commands("make")
    named = [w for words in lines for w in words[1:] if not w.startswith("-") and "=" not in w]
    assert {"pcluster-venv", "lambda-package", "wheel", "node-lock"} <= set(named)
    missing = sorted(set(named) - targets)
    assert not missing, f"docs/deploy-aws.md runs make targets the Makefile lacks: {missing}"


#: The runbook's shell variables, with values of the right shape for the pcluster parser.
SAMPLE_VARS = {"REGION": "us-east-1", "CLUSTER": "vsrflow-dev"}

#: Runs in the pcluster venv: parses each argv (JSON on stdin) with pcluster's real parser, in a
#: directory holding the files the lines read (`-c cluster.yaml`); prints one error line per bad argv.
PCLUSTER_PARSE = """
import contextlib, io, json, sys
import pcluster.cli.model as m
from pcluster.cli.entrypoint import add_cli_commands, gen_parser
parser, parser_map = gen_parser(m.load_model(m.package_spec()))
add_cli_commands(parser_map)
for argv in json.load(sys.stdin):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            _, extra = parser.parse_known_args(argv)
        if extra:
            print(argv, "unknown arguments", extra)
    except SystemExit:
        print(argv, err.getvalue().strip().splitlines()[-1])
"""


def test_every_pcluster_line_parses_with_parallelclusters_parser(tmp_path: Path) -> None:
    venv = Settings.from_env().pcluster_venv
    venv = venv if venv.is_absolute() else REPO / venv
    if not (venv / "bin" / "python").exists():
        pytest.fail(f"no ParallelCluster venv at {venv}: run `make pcluster-venv` (the unit target does)")
    argvs = [
        [re.sub(r"\$(\w+)", lambda v: SAMPLE_VARS[v[1]], word) for word in words[1:]]
        for words in runbook_commands("pcluster")
    ]
    assert {argv[0] for argv in argvs} >= {"create-cluster", "describe-cluster", "delete-cluster"}
    (tmp_path / "cluster.yaml").write_text("Region: us-east-1\n")
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-c", PCLUSTER_PARSE],
        input=json.dumps(argvs), cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == "", f"docs/deploy-aws.md: pcluster lines its parser refuses:\n{proc.stdout}"


def _template() -> dict[str, Any]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # !Ref, !Sub, ...
    data: dict[str, Any] = yaml.load((REPO / "infra" / "cfn" / "vsrflow.yaml").read_text(), Loader=Loader)
    return data


def test_stack_parameters_and_outputs_it_names_exist() -> None:
    template = _template()
    text = RUNBOOK.read_text()
    passed = set()
    for words in runbook_commands("aws"):
        if "--parameter-overrides" in words:
            overrides = words[words.index("--parameter-overrides") + 1 :]
            passed |= {w.split("=", 1)[0] for w in overrides if "=" in w and not w.startswith("-")}
    assert {"MediaBucketName", "ClusterName", "LambdaCodeBucket", "UiOrigins"} <= passed
    assert passed <= set(template["Parameters"]), passed - set(template["Parameters"])
    outputs = set(re.findall(r"OutputKey=='(\w+)'", text)) | set(re.findall(r"stack output `(\w+)`", text))
    assert {"BucketName", "TopicArn", "ClusterNodePolicyArn", "UiServerPolicyArn"} <= outputs
    assert outputs <= set(template["Outputs"]), outputs - set(template["Outputs"])
    # What the teardown section says is kept is what the template retains.
    retained = {n for n, r in template["Resources"].items() if r.get("DeletionPolicy") == "Retain"}
    assert retained == {"MediaBucket", "AccessLogsBucket"}


def test_values_fields_it_names_exist_in_the_schema() -> None:
    schema = json.loads((REPO / "infra" / "cluster" / "values.schema.json").read_text())
    section = RUNBOOK.read_text().split("## 4. Fill the values file", 1)[1].split("\n## ", 1)[0]
    fields = re.findall(r"^\| `([a-z0-9_.]+)` \|", section, re.M)
    assert {"cluster_name", "vsrflow.wheel_sha256", "cluster_node_policy_arn", "topic_arn"} <= set(fields)
    for field in fields:
        node = schema
        for part in field.split("."):
            assert part in node.get("properties", {}), f"docs/deploy-aws.md names values field {field!r}"
            node = node["properties"][part]
    # Every required top-level field is in the table (a new required field needs a row).
    assert set(schema["required"]) - {"head_node", "cpu_queue", "gpu_queue", "fsx", "slurm"} <= {
        f.split(".")[0] for f in fields
    }
