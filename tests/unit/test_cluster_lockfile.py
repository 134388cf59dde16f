"""vsrflow.cluster.lockfile: the hashed requirements file is made by a real `pip download` (here
offline, from a local index of tiny wheels) and every hash is that of the downloaded bytes."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from vsrflow.cluster import lockfile
from vsrflow.errors import VsrError


def _wheel(dest: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A minimal installable pure-Python wheel."""
    dist = f"{name}-{version}.dist-info"
    path = dest / f"{name}-{version}-py3-none-any.whl"
    meta = "".join(f"Requires-Dist: {r}\n" for r in requires) + (
        "Provides-Extra: aws\n" if "extra ==" in str(requires) else ""
    )
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}/__init__.py", "")
        zf.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{meta}")
        zf.writestr(
            f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        zf.writestr(f"{dist}/RECORD", "")
    return path


def test_lock_pins_and_hashes_the_resolved_closure(tmp_path: Path) -> None:
    index = tmp_path / "index"
    index.mkdir()
    dep = _wheel(index, "tinydep", "1.2.0")
    _wheel(index, "tinydep", "0.9.0")  # an older one pip must not pick
    extra = _wheel(index, "tinyextra", "3.0", ("tinydep>=1",))
    pip_wheel = _wheel(index, "pip", "99.0")
    app = _wheel(tmp_path, "vsrflow", "0.1.0", ("tinydep>=1", 'tinyextra; extra == "aws"'))
    out = tmp_path / "vsrflow-0.1.0-requirements.lock"
    lines = lockfile.generate(
        app, out, extras="aws", pip_version="99.0", download_args=["--no-index", "--find-links", str(index)]
    )
    sha = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (dep, extra, pip_wheel)}
    assert lines == [
        f"pip==99.0 \\\n    --hash=sha256:{sha[pip_wheel.name]}",
        f"tinydep==1.2.0 \\\n    --hash=sha256:{sha[dep.name]}",
        f"tinyextra==3.0 \\\n    --hash=sha256:{sha[extra.name]}",
    ]
    text = out.read_text()
    assert text.endswith("\n".join(lines) + "\n") and "vsrflow==" not in text  # the wheel has its own pin


def test_unresolvable_requirements_fail_and_write_nothing(tmp_path: Path) -> None:
    index = tmp_path / "index"
    index.mkdir()
    app = _wheel(tmp_path, "vsrflow", "0.1.0", ("nosuchdep",))
    out = tmp_path / "out.lock"
    with pytest.raises(VsrError, match="pip download failed"):
        lockfile.generate(
            app, out, extras="", pip_version="99.0", download_args=["--no-index", "--find-links", str(index)]
        )
    assert not out.exists()
