"""The CPU steps of a job (submit, extract, encode) never import torch.

On a head node and in the CPU jobs, torch's import alone costs about 2 s of CPU per process, paid
once per job and step (a burst of 20 uploads paid it 60 times). Only the chunk step needs it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.mediagen import make_video

SCRIPT = """
import sys
from pathlib import Path
from vsrflow.config import Settings
from vsrflow.workflow.job import stages
from vsrflow.workflow.job.manifest import ManifestStore
from vsrflow.workflow.job.submit import PathJobRequest, create_path_job

src, root, cache = (Path(a) for a in sys.argv[1:4])
settings = Settings(cache_dir=cache)
request = PathJobRequest(source=src, output=root / "out.mkv", model="realesr-animevideov3", scale=2)
job = create_path_job(request, root / "jobs", settings)
assert "torch" not in sys.modules, "submit imported torch"
stages.extract(job)
assert "torch" not in sys.modules, "extract imported torch"
print(ManifestStore(job).load().chunk_count, job.path)
"""

ENCODE = """
import sys
from pathlib import Path
from vsrflow.config import Settings
from vsrflow.workflow.job import stages
from vsrflow.workflow.job.layout import JobDir

root, job_id, cache = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
stages.encode(JobDir.open(root, job_id), Settings(cache_dir=cache))
assert "torch" not in sys.modules, "encode imported torch"
"""


def _python(code: str, *args: str, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_submit_extract_and_encode_import_no_torch(model_env: dict[str, str], tmp_path: Path) -> None:
    src = make_video(tmp_path / "clip.mp4", frames=6, audio_tracks=1)
    cache = model_env["VSRFLOW_CACHE_DIR"]
    chunks, job_path = _python(SCRIPT, str(src), str(tmp_path), cache, env=model_env).split()
    job = Path(job_path)
    for index in range(int(chunks)):  # the one step that needs the model (and torch)
        proc = subprocess.run(
            [sys.executable, "-m", "vsrflow", "job", "upscale-chunk", str(job), "--index", str(index)],
            env=model_env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    _python(ENCODE, str(job.parent), job.name, cache, env=model_env)
    assert (tmp_path / "out.mkv").is_file()
