"""``vsrflow run``: weights -> upscale -> evaluate over a directory, every stage in its own process.

Contract:

* Inputs: the files of ``input_dir`` with a video extension (:data:`INPUT_SUFFIXES`, any case,
  hidden files ignored), sorted by name. An empty or missing directory is an :class:`InputError`.
* Output of ``IN/<stem>.<ext>``: ``OUT/<stem>_x<scale>.<ext>`` when ``ext`` is one the upscaler
  writes (.mp4 .mkv .mov .m4v), else ``.mkv``. Two inputs with the same stem are refused.
* Weights (once, before any video): present, or ``vsrflow models import-ncnn ID`` then
  ``vsrflow models fetch ID``; with ``skip_download`` missing weights are an InputError.
* Each video: ``vsrflow upscale`` in a child process, then (with a reference directory)
  ``vsrflow evaluate OUTPUT --reference REF/<stem>.* --json FILE`` in another. A failing child
  fails only that video, with the child's error line; the other videos go on. Child output goes to
  ``OUT/.vsrflow-run/logs/``.
* Resume: a video whose done-marker proves its output (see :mod:`vsrflow.batch.markers`) is
  skipped, its recorded evaluation reused for the same reference; ``force`` redoes everything.
* ``OUT/run-summary.json`` is written at the end (and on Ctrl-C, marked interrupted).
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vsrflow.batch import markers
from vsrflow.batch.steps import ChildRunner, vsrflow_argv
from vsrflow.batch.summary import VideoResult, evaluation_metrics, summary_json, write_summary
from vsrflow.config import Settings
from vsrflow.errors import InputError, ModelError
from vsrflow.formats import INPUT_SUFFIXES, output_suffix_for

log = logging.getLogger(__name__)

#: Input files picked up from the input directory (compared lower-case).
#: Containers the upscaler writes; other inputs get an .mkv output.
SUMMARY_NAME = "run-summary.json"


@dataclass(frozen=True)
class BatchOptions:
    """One ``vsrflow run``.

    Attributes:
        input_dir, output_dir: where videos come from / go (output_dir is created).
        reference_dir: HR references named like the inputs (``<stem>.*``); None: no evaluation.
        model, preset: model choice as for ``vsrflow upscale`` (both None: the default preset).
        scale: output scale; None: the model's native scale.
        skip_download: never download/import weights; they must be present.
        skip_upscale: use the existing outputs (they must exist and probe).
        skip_evaluate: do not evaluate even with a reference directory.
        force: redo videos that are already done.
        jobs: videos processed at once (each upscale is one child process).
    """

    input_dir: Path
    output_dir: Path
    reference_dir: Path | None = None
    model: str | None = None
    preset: str | None = None
    scale: float | None = None
    skip_download: bool = False
    skip_upscale: bool = False
    skip_evaluate: bool = False
    force: bool = False
    jobs: int = 1


@dataclass(frozen=True)
class BatchReport:
    """The outcome of :func:`run_batch`: per-video results and where the summary was written."""

    results: list[VideoResult]
    model: str
    scale: float
    summary_path: Path

    @property
    def failed(self) -> int:
        return sum(not r.ok for r in self.results)


def scale_label(scale: float) -> str:
    """``4`` for 4.0, ``1.5`` for 1.5: the ``_x<scale>`` part of output names."""
    return f"{scale:g}"


def discover_inputs(input_dir: Path) -> list[Path]:
    """The video files of ``input_dir`` in name order (module contract)."""
    if not input_dir.is_dir():
        raise InputError(f"input directory {input_dir} does not exist", hint="check --input-dir")
    found = sorted(
        p
        for p in input_dir.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in INPUT_SUFFIXES
    )
    if not found:
        raise InputError(
            f"input directory {input_dir} holds no videos",
            hint=f"put files with one of {' '.join(INPUT_SUFFIXES)} in it",
        )
    stems: dict[str, Path] = {}
    for path in found:
        if path.stem in stems:
            raise InputError(
                f"{stems[path.stem].name} and {path.name} in {input_dir} would both write "
                f"{path.stem}_x<scale>",
                hint="rename one of them",
            )
        stems[path.stem] = path
    return found


def output_for(input_path: Path, output_dir: Path, scale: float) -> Path:
    """``OUT/<stem>_x<scale>.<ext or mkv>`` (module contract)."""
    suffix = output_suffix_for(input_path.name)
    return output_dir / f"{input_path.stem}_x{scale_label(scale)}{suffix}"


def find_reference(reference_dir: Path, input_path: Path) -> Path:
    """The one ``REF/<stem>.<video ext>`` of ``input_path``; InputError if none or several."""
    matches = sorted(
        p
        for p in reference_dir.glob(f"{input_path.stem}.*")
        if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES
    )
    if not matches:
        raise InputError(f"no reference {input_path.stem}.* in {reference_dir}")
    if len(matches) > 1:
        names = ", ".join(p.name for p in matches)
        raise InputError(f"several references for {input_path.name} in {reference_dir}: {names}")
    return matches[0]


class BatchRunner:
    """Runs one :class:`BatchOptions` (see the module contract); one instance per run."""

    def __init__(
        self,
        options: BatchOptions,
        settings: Settings,
        on_result: Callable[[VideoResult], None] | None = None,
    ) -> None:
        self.options = options
        self.settings = settings
        self.on_result = on_result or (lambda result: None)
        self.children = ChildRunner()
        self.state_dir = options.output_dir / markers.STATE_DIR

    # -- stage 1: weights ------------------------------------------------------------------
    def ensure_model(self) -> tuple[str, float]:
        """Resolve the model, make sure its weights are present; return (model id, scale)."""
        from vsrflow.models.registry import resolve
        from vsrflow.models.store import WeightStore

        opts = self.options
        store = WeightStore(self.settings.weights_dir)
        spec = resolve(opts.model, opts.preset, scale=opts.scale, available=store.has)
        scale = float(opts.scale) if opts.scale is not None else float(spec.scale)
        if opts.skip_upscale or store.has(spec):
            return spec.id, scale
        if opts.skip_download or self.settings.no_download:
            raise InputError(
                f"weights of {spec.id} are not in {store.root} and downloads are off (--no-download)",
                hint=f"run `vsrflow models import-ncnn {spec.id}` or `vsrflow models fetch {spec.id}`",
            )
        errors: list[str] = []
        attempts = []
        if spec.ncnn is not None:
            attempts.append(("import-ncnn", vsrflow_argv("models", "import-ncnn", spec.id)))
        if spec.url is not None:
            attempts.append(("fetch", vsrflow_argv("models", "fetch", spec.id)))
        for action, argv in attempts:
            result = self.children.run(argv, self.state_dir / "logs" / f"models-{action}.log")
            if result.ok and store.has(spec):
                log.info("weights of %s ready (%s)", spec.id, action)
                return spec.id, scale
            errors.append(f"{action}: {result.error}")
        raise ModelError(
            f"could not get the weights of {spec.id}: " + ("; ".join(errors) or "no source known"),
            hint=f"see the logs in {self.state_dir / 'logs'}",
        )

    # -- stages 2 and 3: one video ---------------------------------------------------------
    def process(self, input_path: Path, model: str, scale: float) -> VideoResult:
        """Upscale (or skip) and evaluate one video; failures are recorded, never raised."""
        t0 = time.monotonic()
        output = output_for(input_path, self.options.output_dir, scale)
        result = VideoResult(input=input_path, output=output)
        try:
            marker = self._upscale(result, model, scale)
            if (
                marker is not None
                and self.options.reference_dir is not None
                and not self.options.skip_evaluate
            ):
                self._evaluate(result, marker)
        except Exception as exc:  # a bug in this video's bookkeeping must not stop the others
            log.debug("processing %s failed", input_path, exc_info=True)
            result.error = result.error or f"{type(exc).__name__}: {exc}"
        result.seconds = time.monotonic() - t0
        return result

    def _upscale(self, result: VideoResult, model: str, scale: float) -> dict[str, object] | None:
        """Run/skip the upscale; return the video's marker, or None after recording a failure."""
        marker_file = markers.marker_path(self.options.output_dir, result.input)
        marker = None if self.options.force else markers.read_marker(marker_file)
        if markers.upscale_is_done(marker, result.input, result.output, model, scale):
            result.upscale = "skipped"
            return marker
        if self.options.skip_upscale:
            if not result.output.is_file():
                result.upscale = "failed"
                result.error = f"upscale: {result.output.name} does not exist (--skip-upscale)"
                return None
            result.upscale = "existing"
            return {"evaluation": None}  # nothing recorded: the output was not made by this run
        marker_file.unlink(missing_ok=True)  # a stale marker must not vouch for a new output
        argv = vsrflow_argv(
            "upscale",
            str(result.input),
            "-o",
            str(result.output),
            "--model",
            model,
            "--scale",
            scale_label(scale),
            "--overwrite",
        )  # fmt: skip  (the child's progress lines go to its log, for `tail -f`)
        child = self.children.run(argv, self.state_dir / "logs" / f"{result.input.name}.upscale.log")
        if not child.ok:
            result.upscale = "failed"
            result.error = f"upscale: {child.error}"
            return None
        result.upscale = "upscaled"
        record = markers.upscale_record(result.input, result.output, model, scale, child.seconds)
        markers.write_marker(marker_file, record)
        return record

    def _evaluate(self, result: VideoResult, marker: dict[str, object]) -> None:
        assert self.options.reference_dir is not None
        try:
            reference = find_reference(self.options.reference_dir, result.input)
        except InputError as exc:
            result.evaluate, result.error = "failed", f"evaluate: {exc}"
            return
        result.reference = reference
        recorded = markers.reusable_evaluation(marker, reference) if result.upscale == "skipped" else None
        if recorded is not None:
            result.evaluate, result.metrics = "reused", evaluation_metrics({"metrics": recorded})
            return
        json_path = self.state_dir / f"{result.input.name}.evaluate.json"
        json_path.unlink(missing_ok=True)
        argv = vsrflow_argv(
            "evaluate", str(result.output), "--reference", str(reference), "--json", str(json_path)
        )
        child = self.children.run(argv, self.state_dir / "logs" / f"{result.input.name}.evaluate.log")
        if not child.ok:
            result.evaluate, result.error = "failed", f"evaluate: {child.error}"
            return
        try:
            data = json.loads(json_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            result.evaluate, result.error = "failed", f"evaluate: unreadable {json_path}: {exc}"
            return
        result.evaluate, result.metrics = "evaluated", evaluation_metrics(data)
        if result.upscale in ("upscaled", "skipped"):
            marker["evaluation"] = {
                "reference": markers.FileStamp.of(reference).to_json(),
                "metrics": data.get("metrics", data) if isinstance(data, dict) else None,
            }
            markers.write_marker(markers.marker_path(self.options.output_dir, result.input), dict(marker))

    # -- the whole run ---------------------------------------------------------------------
    def run(self) -> BatchReport:
        """Run every stage; returns the report (failed videos inside it), raises for bad usage.

        Raises:
            InputError: missing/empty input directory, missing reference directory, bad model.
            ModelError: the weights could not be obtained.
            KeyboardInterrupt: after stopping every child and writing the partial summary.
        """
        opts = self.options
        if opts.jobs < 1:
            raise InputError(f"--jobs {opts.jobs} must be at least 1")
        inputs = discover_inputs(opts.input_dir)
        if opts.reference_dir is not None and not opts.reference_dir.is_dir():
            raise InputError(
                f"reference directory {opts.reference_dir} does not exist", hint="check --reference-dir"
            )
        opts.output_dir.mkdir(parents=True, exist_ok=True)
        model, scale = self.ensure_model()
        summary_path = opts.output_dir / SUMMARY_NAME
        done: dict[Path, VideoResult] = {}
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=opts.jobs, thread_name_prefix="vsrflow-run")
        try:
            futures = {pool.submit(self.process, p, model, scale): p for p in inputs}
            pending = set(futures)
            while pending:
                # A timed wait keeps the main thread responsive to Ctrl-C.
                finished, pending = concurrent.futures.wait(
                    pending, timeout=0.2, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in finished:
                    result = future.result()
                    done[result.input] = result
                    self.on_result(result)
        except KeyboardInterrupt:
            self.children.stop_all()
            pool.shutdown(wait=True, cancel_futures=True)
            ordered = [done[p] for p in inputs if p in done]
            write_summary(summary_path, summary_json(ordered, model=model, scale=scale, interrupted=True))
            raise
        pool.shutdown(wait=True)
        results = [done[p] for p in inputs]
        write_summary(summary_path, summary_json(results, model=model, scale=scale))
        return BatchReport(results=results, model=model, scale=scale, summary_path=summary_path)
