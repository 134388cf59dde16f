"""What one endpoint serves: written by the launcher into the model directory, read by ``model_fn``.

SageMaker hands ``model_fn`` the model directory (``$SAGEMAKER_BASE_DIR/model``), so the endpoint's
configuration travels as a file there (``endpoint.json``) rather than as environment variables:
several endpoints on one host each get their own base directory.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vsrflow.config import ENDPOINT_PORT_HINT, endpoint_port_rule
from vsrflow.errors import InputError

SPEC_NAME = "endpoint.json"


@dataclass(frozen=True)
class EndpointSpec:
    """One endpoint.

    Attributes:
        model: registry model id loaded once by ``model_fn``.
        scale: scale warmed at start (other scales load on their first request), 1..8.
        device: torch device the worker uses (``cpu``, ``cuda:0``: the launcher restricts
            ``CUDA_VISIBLE_DEVICES`` to the endpoint's GPU, so that GPU is ``cuda:0`` inside).
        precision: ``auto`` (fp16 on CUDA, fp32 on CPU), the same as in-process chunk tasks.
        cache_dir: vsrflow cache dir whose ``weights/`` holds the model (a mounted cache in containers).
        port: the HTTP port (informational inside the worker).
        gpu: the host GPU index this endpoint owns, or None on CPU.
    """

    model: str
    scale: float
    device: str
    cache_dir: Path
    port: int
    precision: str = "auto"
    gpu: int | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.scale) or not 1 <= self.scale <= 8:
            raise InputError(f"endpoint scale {self.scale} is outside 1..8", hint="use e.g. 2 or 4")
        rule = endpoint_port_rule(self.port)
        if rule is not None:
            raise InputError(f"endpoint port {self.port} {rule}", hint=ENDPOINT_PORT_HINT)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "scale": self.scale,
            "device": self.device,
            "precision": self.precision,
            "cache_dir": str(self.cache_dir),
            "port": self.port,
            "gpu": self.gpu,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EndpointSpec:
        return cls(
            model=str(data["model"]),
            scale=float(data["scale"]),
            device=str(data["device"]),
            precision=str(data.get("precision", "auto")),
            cache_dir=Path(data["cache_dir"]),
            port=int(data["port"]),
            gpu=None if data.get("gpu") is None else int(data["gpu"]),
        )

    def write(self, model_dir: Path) -> Path:
        model_dir.mkdir(parents=True, exist_ok=True)
        path = model_dir / SPEC_NAME
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, model_dir: Path | str) -> EndpointSpec:
        path = Path(model_dir) / SPEC_NAME
        try:
            return cls.from_json(json.loads(path.read_text()))
        except FileNotFoundError as err:
            raise InputError(
                f"{path} is missing: this model directory was not prepared by `vsrflow serve`",
                hint="start endpoints with `vsrflow serve --model ID --port P`",
            ) from err
        except (ValueError, KeyError, TypeError) as err:
            raise InputError(f"{path} is not a valid endpoint spec: {err}", hint="restart it") from err
