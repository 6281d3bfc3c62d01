"""The HTTP service: FastAPI, ONNX Runtime, FAISS and numpy; never torch, ``model.nn`` or ``index_builder``.

It learns everything about a model from its bundle (``model.runtime.bundle_format``). Public API:

- ``service.main.create_app(settings=None)``: the app factory (``uvicorn --factory service.main:create_app``).
- ``service.cli.main``: the ``unihpr-serve`` command.
- ``service.config.Settings`` and ``get_settings()``: runtime settings from ``UNIHPR_*`` environment variables.
- ``service.routes``: one router per resource (``health``, ``embed``, ``retrieve``, ``lift``, ``clips``,
  ``admin``) and ``pages`` (the web page and the API docs).
- ``service.schemas``: request and response models; ``service.errors``: the domain errors and their handlers.

Nothing is imported here, so importing a submodule loads only what that submodule needs.
"""
