"""HTTP conventions shared by every mesoslite server.

Errors are JSON ``{"message": ..., "details": [{"path": ..., "errors": [...]}]}``
with a 4xx status; ``error_middleware`` turns aiohttp's own errors (404, 405, 413)
into that shape and any unexpected exception into a 500 with a generic message
(logged with its traceback, never shown to the client).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec
from aiohttp import web

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 16 * 1024 * 1024
_enc = msgspec.json.Encoder()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> web.Response:
    return web.Response(body=_enc.encode(data), status=status,
                        content_type="application/json", headers=headers)


def error_response(
    status: int,
    message: str,
    details: Iterable[tuple[str, list[str]]] = (),
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = {
        "message": message,
        "details": [{"path": path, "errors": errors} for path, errors in details],
    }
    return json_response(body, status, headers)


class HTTPError(Exception):
    """Raise from a handler to answer with ``error_response``."""

    def __init__(self, status: int, message: str,
                 details: Iterable[tuple[str, list[str]]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = list(details)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HTTPError as exc:
        return error_response(exc.status, exc.message, exc.details)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = {
            404: f"Not found: {request.path}",
            405: f"Method {request.method} is not allowed on {request.path}",
            413: f"Request body too large (the limit is {MAX_REQUEST_BYTES} bytes)",
        }.get(exc.status, exc.reason)
        return error_response(exc.status, message, headers=_allow_header(exc))
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "Internal error; the server log has the details")


def _allow_header(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow") if exc.headers else None
    return {"Allow": allow} if allow else None


async def read_json(request: web.Request, max_depth: int = 64) -> Any:
    """The request body as JSON; 400 naming the problem when it isn't."""
    body = await request.read()
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise HTTPError(400, f"Request body is not valid JSON: {exc}") from None
    except RecursionError:  # msgspec's own nesting limit (thousands of levels)
        raise HTTPError(400, f"Request body nests deeper than {max_depth} levels") from None
    if _depth(data, max_depth) > max_depth:
        raise HTTPError(400, f"Request body nests deeper than {max_depth} levels")
    return data


def _depth(value: Any, limit: int, level: int = 0) -> int:
    if level > limit:
        return level
    if isinstance(value, dict):
        return max((_depth(v, limit, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, limit, level + 1) for v in value), default=level + 1)
    return level


def make_app(**kwargs: Any) -> web.Application:
    """An aiohttp application with the shared middleware and request size cap."""
    middlewares = [error_middleware, *kwargs.pop("middlewares", [])]
    return web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=middlewares, **kwargs)
