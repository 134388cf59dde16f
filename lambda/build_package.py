"""Build the S3 trigger's Lambda package: ``app.py`` + the pure-Python ``vsrflow`` package.

Usage: ``python lambda/build_package.py -o build/lambda/vsrflow-s3-trigger.zip`` (what ``make
lambda-package`` runs). The zip holds ``app.py`` (handler ``app.handler``) at its root and the
``vsrflow`` source tree without caches and without ``vsrflow/localstack`` (the local stack). No
third-party packages: the Lambda Python runtime provides boto3, and nothing the trigger imports
needs numpy, PyAV or torch (tests/unit/test_aws_lambda_package.py imports the built package with
them blocked). The zip is reproducible: sorted entries, fixed timestamps and permissions.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src" / "vsrflow"
APP = REPO / "lambda" / "s3_trigger" / "app.py"
#: Parts of the package the trigger never uses (the local stack depends on a running moto; the web
#: page on starlette/uvicorn, which the Lambda runtime does not ship).
EXCLUDED = ("localstack", "web")
#: 1980-01-01, the earliest timestamp a zip entry can hold.
EPOCH = (1980, 1, 1, 0, 0, 0)


def package_files() -> list[tuple[str, Path]]:
    """(name in the zip, file on disk), sorted by name."""
    files = [("app.py", APP)]
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if "__pycache__" in rel or any(rel == e or rel.startswith(e + "/") for e in EXCLUDED):
            continue
        files.append((f"vsrflow/{rel}", path))
    return sorted(files)


def build(output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, path in package_files():
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    tmp.replace(output)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-o", "--output", type=Path, default=REPO / "build" / "lambda" / "vsrflow-s3-trigger.zip"
    )
    args = parser.parse_args(argv)
    path = build(args.output)
    print(f"{path} ({path.stat().st_size} bytes, {len(package_files())} files)", file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
