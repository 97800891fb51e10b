"""HTTP side of the driver: master URLs, SUBSCRIBE with leader discovery, calls.

Speaks exactly the Mesos v1 scheduler HTTP API: ``POST /api/v1/scheduler`` with
JSON bodies; SUBSCRIBE answers 200 with a RecordIO event stream and a
``Mesos-Stream-Id`` header; every other call carries that header and answers 202.
A master that is not the leader answers 307 with a ``Location`` naming the leader
(Mesos writes it scheme-relative: ``//host:port/api/v1/scheduler``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import aiohttp

from mesoslite.scheduler.errors import CallError, MasterConnectionError, MasterUnreachableError
from mesoslite.scheduler.recordio import RecordIOError, RecordIOParser

log = logging.getLogger(__name__)

API_PATH = "/api/v1/scheduler"
STREAM_ID_HEADER = "Mesos-Stream-Id"
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
_REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5


def endpoint(master: str) -> str:
    """The scheduler endpoint of ``master``.

    Accepts ``host:port``, ``http://host:port``, ``http://host:port/prefix`` or the
    full endpoint URL; returns ``scheme://host:port[/prefix]/api/v1/scheduler``.
    """
    text = master.strip()
    if "://" not in text:
        text = "http://" + text.lstrip("/")
    parts = urlsplit(text)
    if not parts.netloc:
        raise ValueError(f"master URL {master!r} has no host")
    path = parts.path.rstrip("/")
    if not path.endswith(API_PATH):
        path += API_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def resolve_redirect(current: str, location: str) -> str:
    """The endpoint a redirect from ``current`` to ``location`` points at."""
    return endpoint(urljoin(current, location))


@dataclass
class Subscription:
    """An open event stream: the response to read, where it came from, its id."""

    response: aiohttp.ClientResponse
    url: str
    stream_id: str


class StreamLost(Exception):
    """The event stream ended, broke or went silent; the driver re-subscribes."""


class _TryNext(Exception):
    """This master cannot serve us now; try the next one."""


async def open_subscription(
    session: aiohttp.ClientSession,
    candidates: list[str],
    body: bytes,
    connect_timeout: float,
) -> Subscription:
    """POST the SUBSCRIBE ``body`` to each candidate endpoint in turn, following
    redirects to the leader, and return the first 200 stream.

    Raises ``CallError`` when a master rejects the call itself (4xx: retrying
    elsewhere cannot help) and ``MasterUnreachableError`` when every candidate was
    unreachable, answered 5xx or redirected in circles.
    """
    failures: list[str] = []
    for url in candidates:
        try:
            return await _subscribe_via(session, url, body, connect_timeout)
        except _TryNext as exc:
            log.info("SUBSCRIBE via %s failed: %s", url, exc)
            failures.append(f"{url}: {exc}")
    raise MasterUnreachableError("no master accepted SUBSCRIBE (" + "; ".join(failures) + ")")


async def _subscribe_via(
    session: aiohttp.ClientSession, url: str, body: bytes, connect_timeout: float
) -> Subscription:
    # The stream stays open indefinitely: only connecting is bounded here; the
    # driver's heartbeat check bounds the silence on an established stream.
    timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=None)
    for _ in range(MAX_REDIRECTS + 1):
        try:
            response = await session.post(
                url, data=body, headers=JSON_HEADERS, allow_redirects=False, timeout=timeout
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _TryNext(_describe(exc)) from None
        if response.status in _REDIRECTS and "Location" in response.headers:
            target = resolve_redirect(url, response.headers["Location"])
            response.release()
            log.info("master %s redirected SUBSCRIBE to leader %s", url, target)
            url = target
            continue
        if response.status == 200:
            stream_id = response.headers.get(STREAM_ID_HEADER)
            if stream_id:
                return Subscription(response, url, stream_id)
            response.close()
            raise _TryNext(f"200 without a {STREAM_ID_HEADER} header")
        try:
            text = await _read_text(response)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _TryNext(_describe(exc)) from None
        if 400 <= response.status < 500:
            raise CallError(response.status, error_message(text), "SUBSCRIBE")
        raise _TryNext(f"HTTP {response.status}: {error_message(text)}")
    raise _TryNext(f"more than {MAX_REDIRECTS} redirects")


async def event_records(
    response: aiohttp.ClientResponse, silence_limit: Callable[[], float]
) -> AsyncIterator[list[bytes]]:
    """Yield the whole RecordIO records of an event stream, batch by batch.

    Raises ``StreamLost`` when the stream ends, breaks or is malformed, or when no
    whole record arrived within ``silence_limit()`` seconds of the consumer asking
    for the next batch.  The clock restarts only on a whole record, so a trickle of
    partial data cannot keep a wedged stream alive, and it does not run while the
    consumer handles a batch.
    """
    parser = RecordIOParser()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + silence_limit()
    while True:
        try:
            async with asyncio.timeout_at(deadline):
                chunk = await response.content.readany()
        except TimeoutError:
            raise StreamLost(f"no event for {silence_limit():g}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise StreamLost(f"stream broke: {exc or type(exc).__name__}") from None
        if not chunk:
            raise StreamLost("the server closed the event stream")
        try:
            records = parser.feed(chunk)
        except RecordIOError as exc:
            raise StreamLost(str(exc)) from None
        if records:
            yield records
            deadline = loop.time() + silence_limit()


async def post_call(
    session: aiohttp.ClientSession,
    url: str,
    stream_id: str,
    body: bytes,
    call_type: str,
    timeout: float,
) -> None:
    """POST one non-SUBSCRIBE call; return on any 2xx.

    Raises ``CallError`` (status, the master's message, and ``location`` for a
    redirect, which means the master lost leadership) on any other status, and
    ``MasterConnectionError`` when the master cannot be reached in ``timeout`` s.
    """
    headers = {**JSON_HEADERS, STREAM_ID_HEADER: stream_id}
    try:
        async with session.post(
            url,
            data=body,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            # Reading the (empty) body lets aiohttp keep the connection alive.
            text = await _read_text(response)
            if 200 <= response.status < 300:
                return
            location = response.headers.get("Location")
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        raise MasterConnectionError(f"{call_type} to {url} failed: {_describe(exc)}") from exc
    raise CallError(response.status, error_message(text), call_type, location)


async def _read_text(response: aiohttp.ClientResponse) -> str:
    try:
        data = await response.read()
    finally:
        response.release()
    return data.decode("utf-8", "replace").strip()


def error_message(body: str) -> str:
    """The master's explanation from an error body: Mesos answers plain text,
    mesoslite ``{"message": ..., "details": [...]}``; either way, one line."""
    if body.startswith("{"):
        try:
            data = json.loads(body)
        except ValueError:
            return body
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return data["message"]
    return body


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
