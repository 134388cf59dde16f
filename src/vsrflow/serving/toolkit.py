"""Glue to the SageMaker inference toolkit: default handlers and the error -> HTTP status mapping.

The toolkit's :class:`~sagemaker_inference.transformer.Transformer` runs ``model_fn`` once and
``input_fn -> predict_fn -> output_fn`` per request. Ours differs in one place: errors. The
toolkit turns every exception that is not one of its own into a 500 with a traceback as the body;
:class:`EndpointTransformer` maps our error tree to statuses (``RequestError`` -> its 4xx,
``InputError`` -> 400, ``TransientError`` -> 503, else 500) and answers a one-line JSON reason,
logging the traceback on the server side.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable
from typing import Any

from sagemaker_inference import utils
from sagemaker_inference.default_inference_handler import DefaultInferenceHandler
from sagemaker_inference.errors import BaseInferenceToolkitError, GenericInferenceToolkitError
from sagemaker_inference.transformer import Transformer

from vsrflow.errors import InputError, TransientError, VsrError
from vsrflow.serving import inference, protocol

log = logging.getLogger("vsrflow.serving")


def to_toolkit_error(exc: BaseException) -> BaseInferenceToolkitError:
    """Our exception -> the toolkit's error carrying the HTTP status and a one-line reason."""
    if isinstance(exc, BaseInferenceToolkitError):
        return exc
    if isinstance(exc, protocol.RequestError):
        status = exc.status
    elif isinstance(exc, InputError):
        status = protocol.BAD_REQUEST
    elif isinstance(exc, TransientError):
        status = protocol.UNAVAILABLE
    else:
        status = protocol.INTERNAL_ERROR
    text = str(exc) if isinstance(exc, VsrError) else f"{type(exc).__name__}: {exc}"
    first = (text.strip().splitlines() or [type(exc).__name__])[0]
    if status == protocol.INTERNAL_ERROR and not isinstance(exc, VsrError):
        first = f"internal error: {first}"
    return GenericInferenceToolkitError(status, first)


def _mapped(func: Callable[..., Any]) -> Callable[..., Any]:
    """Re-raise any error of ``func`` as the toolkit error with the right status."""

    @functools.wraps(func)
    def wrapper(*args: Any) -> Any:
        try:
            return func(*args)
        except Exception as exc:
            raise to_toolkit_error(exc) from exc

    return wrapper


class InferenceHandler(DefaultInferenceHandler):
    """The toolkit's default handlers, pointing at :mod:`vsrflow.serving.inference`."""

    def default_model_fn(self, model_dir: str, context: Any = None) -> Any:
        return inference.model_fn(model_dir, context)

    def default_input_fn(self, input_data: Any, content_type: str, context: Any = None) -> Any:
        return _mapped(inference.input_fn)(input_data, content_type, context)

    def default_predict_fn(self, data: Any, model: Any, context: Any = None) -> Any:
        return _mapped(inference.predict_fn)(data, model, context)

    def default_output_fn(self, prediction: Any, accept: str, context: Any = None) -> Any:
        return _mapped(inference.output_fn)(prediction, accept, context)


class EndpointTransformer(Transformer):
    """The toolkit's transformer with our error mapping and JSON error bodies."""

    def __init__(self) -> None:
        super().__init__(default_inference_handler=InferenceHandler())

    def _validate_user_module_and_set_functions(self) -> None:
        # Always our handlers: never a stray module named `inference` that happens to be importable.
        handler = self._default_inference_handler
        self._model_fn = handler.default_model_fn
        self._input_fn = handler.default_input_fn
        self._predict_fn = handler.default_predict_fn
        self._output_fn = handler.default_output_fn
        self._transform_fn = self._default_transform_fn

    @staticmethod
    def handle_error(context: Any, inference_exception: Any, trace: str) -> list[bytes]:
        status = int(getattr(inference_exception, "status_code", protocol.INTERNAL_ERROR))
        message = str(getattr(inference_exception, "message", inference_exception))
        if status >= protocol.INTERNAL_ERROR:
            log.error("request failed (%d): %s\n%s", status, message, trace)
        else:
            log.info("request refused (%d): %s", status, message)
        context.set_response_status(code=status, phrase=utils.remove_crlf(message)[:200])
        context.set_response_content_type(0, protocol.JSON)
        return [protocol.error_body(status, message)]

    def transform(self, data: Any, context: Any) -> Any:
        try:
            return super().transform(data, context)
        except Exception as exc:  # model_fn failures surface here on the first request
            return self.handle_error(context, to_toolkit_error(exc), traceback.format_exc())
