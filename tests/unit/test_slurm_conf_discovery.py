"""Which Slurm configuration `vsrflow submit --executor slurm` hands to sbatch when none is exported:
the running local emulator's, or an input error saying what to run or export (never Slurm's own
"DNS SRV" error)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vsrflow.errors import InputError
from vsrflow.localstack import slurm


@pytest.fixture
def no_system_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No system slurm.conf and an empty default emulator state (this machine's are not the test's)."""
    monkeypatch.setattr(slurm, "SYSTEM_SLURM_CONFS", (tmp_path / "etc-slurm" / "slurm.conf",))
    monkeypatch.setattr(slurm, "DEFAULT_EMULATOR_STATE", tmp_path / "default-state")
    return tmp_path / "bin"


def _emulator(state: Path, pid: int) -> Path:
    (state / "etc").mkdir(parents=True)
    (state / "run").mkdir()
    conf = state / "etc" / "slurm.conf"
    conf.write_text("ClusterName=vsrflow\n")
    (state / "run" / "slurmctld.pid").write_text(f"{pid}\n")
    return conf


def test_an_exported_or_system_conf_is_left_alone(no_system_conf: Path, tmp_path: Path) -> None:
    assert slurm.find_slurm_conf({"SLURM_CONF": "/x/slurm.conf"}, no_system_conf)[0] is None
    pc = tmp_path / "opt" / "slurm"
    (pc / "etc").mkdir(parents=True)
    (pc / "etc" / "slurm.conf").write_text("")
    conf, why = slurm.find_slurm_conf({}, pc / "bin")  # ParallelCluster: /opt/slurm/{bin,etc}
    assert conf is None and "exists" in why


def test_the_running_emulator_is_found(no_system_conf: Path, tmp_path: Path) -> None:
    state = tmp_path / "emu"
    conf = _emulator(state, os.getpid())  # a live process stands in for slurmctld
    found, why = slurm.find_slurm_conf({"SLURM_EMU_STATE_DIR": str(state)}, no_system_conf)
    assert found == conf and "emulator is running" in why
    default = _emulator(slurm.DEFAULT_EMULATOR_STATE, os.getpid())  # `make slurm-up`'s place
    assert slurm.find_slurm_conf({}, no_system_conf)[0] == default


def test_a_stopped_emulator_or_none_names_the_fix(no_system_conf: Path, tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    _emulator(tmp_path / "emu", int(dead.stdout))
    with pytest.raises(InputError, match="not running") as info:
        slurm.find_slurm_conf({"SLURM_EMU_STATE_DIR": str(tmp_path / "emu")}, no_system_conf)
    assert info.value.hint and "make slurm-up" in info.value.hint
    with pytest.raises(InputError, match="no Slurm configuration found") as info:
        slurm.find_slurm_conf({}, no_system_conf)
    expected = f"export SLURM_CONF={slurm.DEFAULT_EMULATOR_STATE / 'etc' / 'slurm.conf'}"
    assert info.value.hint and expected in info.value.hint and "make slurm-up" in info.value.hint
