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

from mesoslite.messages import wire

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


def body_media_type(request: web.Request, default: str | None = None) -> str:
    """The encoding of the request body (``wire.JSON`` or ``wire.PROTOBUF``) by its
    ``Content-Type``; ``default`` when it has none and the API allows that; 415
    otherwise."""
    try:
        return wire.request_media_type(request.headers.get("Content-Type"), default)
    except wire.MediaTypeError as exc:
        raise HTTPError(exc.status, exc.message) from None


def answer_media_type(request: web.Request) -> str:
    """The encoding of the answer (or stream) by the request's ``Accept``; 406 when it
    allows neither JSON nor protobuf."""
    try:
        return wire.response_media_type(request.headers.get("Accept"))
    except wire.MediaTypeError as exc:
        raise HTTPError(exc.status, exc.message) from None


async def read_call(request: web.Request, schema: wire.Schema, media_type: str) -> Any:
    """A v1 call body of either encoding as JSON builtins (dicts), for APIs that
    dispatch on dicts (the operator APIs); 400 naming the problem when it is malformed.
    A protobuf body is parsed by ``schema`` (e.g. ``wire.MASTER_CALL``)."""
    if media_type == wire.JSON:
        return await read_json(request)
    try:
        return schema.parse(await request.read())
    except wire.CallError as exc:
        raise HTTPError(400, str(exc), [(exc.path, [str(exc)])] if exc.path else []) from None


def message_response(schema: wire.Schema, value: Any, media_type: str,
                     status: int = 200) -> web.Response:
    """``value`` (a v1 message as a Struct or JSON builtins) answered in ``media_type``;
    JSON is byte for byte ``json_response``'s."""
    return web.Response(body=schema.encode(value, media_type), status=status,
                        content_type=media_type)


def make_app(**kwargs: Any) -> web.Application:
    """An aiohttp application with the shared middleware and request size cap."""
    middlewares = [error_middleware, *kwargs.pop("middlewares", [])]
    return web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=middlewares, **kwargs)
