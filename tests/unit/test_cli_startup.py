"""The CLI starts without importing torch: every `vsrflow` process (SSM command, Slurm stage, status)
would otherwise pay seconds before doing anything. Commands import torch when they need it."""

from __future__ import annotations

import subprocess
import sys


def test_cli_import_does_not_load_torch() -> None:
    code = "import sys, vsrflow.cli; print('torch' in sys.modules)"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == "False"
