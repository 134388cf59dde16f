"""The Lambda package: built from the repo, imports and runs without torch, numpy or PyAV."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def _builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_package", REPO / "lambda" / "build_package.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HANDLER_CHECK = r"""
import json, sys
for heavy in ("torch", "numpy", "av", "cv2", "moto", "yaml"):
    sys.modules[heavy] = None  # any import of these now raises ImportError
sys.path.insert(0, sys.argv[1])
import app
import vsrflow
assert vsrflow.__file__.startswith(sys.argv[1]), vsrflow.__file__
class Context:
    aws_request_id = "req-1"
test_event = json.loads(sys.argv[2])
print(json.dumps({
    "test": app.handler(test_event, Context()),
    "malformed": app.handler({"Records": "nope"}, Context()),
}))
"""


def test_package_builds_reproducibly_and_runs_without_heavy_deps(tmp_path: Path) -> None:
    builder = _builder()
    first = builder.build(tmp_path / "a" / "pkg.zip")
    second = builder.build(tmp_path / "b" / "pkg.zip")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "unpacked")
    assert "app.py" in names and "vsrflow/aws/trigger.py" in names and "vsrflow/config.py" in names
    assert not [
        n for n in names if n.startswith(("vsrflow/localstack/", "vsrflow/web/")) or "__pycache__" in n
    ]
    event = (REPO / "tests" / "fixtures" / "events" / "s3-test-event.json").read_text()
    env = {"PATH": "/usr/bin:/bin", "VSRFLOW_AWS_TABLE": "t", "AWS_DEFAULT_REGION": "us-east-1"}
    proc = subprocess.run(
        [sys.executable, "-c", HANDLER_CHECK, str(tmp_path / "unpacked"), event],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["test"] == {"records": []}
    assert [r["outcome"] for r in out["malformed"]["records"]] == ["rejected"]
    # The logs are JSON lines with the request id.
    lines = [json.loads(ln) for ln in proc.stderr.strip().splitlines()]
    assert {ln["request_id"] for ln in lines} == {"req-1"}
    assert any(ln.get("outcome") == "rejected" for ln in lines)
