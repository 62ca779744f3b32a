"""aiayn.serve: a translation server with dynamic batching, its metrics, and the attention page.

`create_app` (in `aiayn.serve.app`) needs the `[serve]` extra (FastAPI, uvicorn,
prometheus-client); it is not imported here, so `import aiayn.serve` works without them.
"""

from aiayn.serve.config import ServeConfig
from aiayn.serve.requests import DecodeSettings, RequestError, TranslateRequest

__all__ = ["DecodeSettings", "RequestError", "ServeConfig", "TranslateRequest"]
