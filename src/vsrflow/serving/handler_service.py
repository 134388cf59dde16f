"""The handler service Multi Model Server loads (``default_service_handler`` in the server config).

MMS imports this module and instantiates its only class (it requires exactly one class defined
here), calls ``initialize`` once per worker (``model_fn``: the model is loaded and warmed) and
``handle`` per request batch.
"""

from __future__ import annotations

from sagemaker_inference.default_handler_service import DefaultHandlerService

from vsrflow.serving.toolkit import EndpointTransformer


class HandlerService(DefaultHandlerService):
    """The toolkit's default handler service around :class:`EndpointTransformer`."""

    def __init__(self) -> None:
        super().__init__(transformer=EndpointTransformer())
