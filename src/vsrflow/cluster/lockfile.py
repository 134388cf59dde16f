"""``python -m vsrflow.cluster.lockfile``: the hashed requirements file shipped next to the wheel.

Cluster nodes install vsrflow's runtime dependencies with
``pip install --require-hashes --no-deps -r vsrflow-<version>-requirements.lock`` (bootstrap/lib.sh),
so every file pip installs on a node, pip itself included, is one whose sha256 was recorded here.
This module makes that file from what really resolves: ``pip download`` of the wheel (with its
extras) and of ``pip==<version>`` into a scratch directory, then one ``name==version
--hash=sha256:...`` line per downloaded distribution, hashed from the downloaded bytes. The wheel
itself is not listed (the node checks it against ``--wheel-sha256`` and installs it ``--no-deps``).

Contract: the output holds exactly the distributions pip downloaded (the closure of the wheel's
requirements for the chosen extras and target), each pinned with ``==`` and one sha256; it is
written atomically; a download that fails raises :class:`~vsrflow.errors.VsrError` and writes
nothing. Extra ``pip download`` arguments (``--platform``, ``--python-version``,
``--only-binary=:all:``, ``--no-index --find-links DIR``) pass through unchanged, as an argv list
(no shell).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from vsrflow.errors import VsrError
from vsrflow.files import sha256_file

#: Extras a node may install: the lock covers their union (head/cpu nodes use a subset).
DEFAULT_EXTRAS = "gpu,serve,aws"
_WHEEL = re.compile(r"^(?P<name>[A-Za-z0-9_.]+)-(?P<version>[^-]+)-.+\.whl$")
_SDIST = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+?)-(?P<version>[0-9][^-]*)\.(tar\.gz|zip)$")


def _name_version(filename: str) -> tuple[str, str]:
    """Normalized project name and version of a downloaded distribution file."""
    match = _WHEEL.match(filename) or _SDIST.match(filename)
    if match is None:
        raise VsrError(f"cannot tell the project and version of downloaded file {filename!r}")
    return re.sub(r"[-_.]+", "-", match["name"]).lower(), match["version"]


def lock_lines(files: Sequence[Path], *, exclude: Sequence[str] = ()) -> list[str]:
    """``name==version --hash=sha256:...`` lines for ``files``, sorted by name (one per file)."""
    skip = {re.sub(r"[-_.]+", "-", n).lower() for n in exclude}
    lines: dict[str, list[str]] = {}
    for path in files:
        name, version = _name_version(path.name)
        if name in skip:
            continue
        lines.setdefault(f"{name}=={version}", []).append(sha256_file(path))
    return [
        " \\\n    ".join([req, *(f"--hash=sha256:{h}" for h in sorted(hashes))])
        for req, hashes in sorted(lines.items())
    ]


def generate(
    wheel: Path,
    output: Path,
    *,
    extras: str = DEFAULT_EXTRAS,
    pip_version: str | None = None,
    download_args: Sequence[str] = (),
    python: str = sys.executable,
) -> list[str]:
    """Write the hashed requirements file for ``wheel[extras]`` (plus ``pip==pip_version``) to
    ``output`` and return its requirement lines. See the module docstring for the contract."""
    wheel = wheel.resolve()
    if not wheel.is_file():
        raise VsrError(f"no wheel at {wheel}")
    pip_version = pip_version or _installed_pip(python)
    target = f"{wheel.name.split('-', 1)[0]}[{extras}] @ {wheel.as_uri()}" if extras else str(wheel)
    with tempfile.TemporaryDirectory(prefix="vsrflow-lock-") as scratch:
        argv = [python, "-m", "pip", "download", "--quiet", "--dest", scratch,
                *download_args, target, f"pip=={pip_version}"]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise VsrError(f"pip download failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        files = sorted(p for p in Path(scratch).iterdir() if p.is_file())
        lines = lock_lines(files, exclude=[wheel.name.split("-", 1)[0]])
    header = [
        f"# Hashed runtime requirements for {wheel.name} [{extras}] (python -m vsrflow.cluster.lockfile).",
        f"# Installed on cluster nodes with: pip install --require-hashes --no-deps -r {output.name}",
    ]
    text = "\n".join([*header, *lines]) + "\n"
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(output)
    return lines


def _installed_pip(python: str) -> str:
    proc = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('pip'))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return proc.stdout.strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vsrflow.cluster.lockfile", description=__doc__.split("\n")[0]
    )
    parser.add_argument("wheel", type=Path, help="the vsrflow wheel the nodes install")
    parser.add_argument(
        "-o", "--output", type=Path, help="default: vsrflow-<version>-requirements.lock next to the wheel"
    )
    parser.add_argument("--extras", default=DEFAULT_EXTRAS, help=f"extras to lock (default {DEFAULT_EXTRAS})")
    parser.add_argument("--pip-version", help="pip version to pin (default: this interpreter's)")
    args, download_args = parser.parse_known_args(argv)
    wheel: Path = args.wheel
    output = args.output or wheel.with_name(f"{'-'.join(wheel.name.split('-')[:2])}-requirements.lock")
    try:
        lines = generate(
            wheel, output, extras=args.extras, pip_version=args.pip_version, download_args=download_args
        )
    except VsrError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{output}: {len(lines)} pinned requirements; sha256 {sha256_file(output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
