"""The dashboard's HTTP side on the master: static files and the proxies it reads
through, so the browser only ever talks to the master (one origin: authentication
and TLS apply once, agents and frameworks need no CORS).

* ``GET /`` and ``GET /ui/...``: the single-page dashboard (``mesoslite/master/ui``),
  served with a strict Content-Security-Policy (no inline script, same-origin only).
* ``GET /master/sandbox/{agent_id}/{framework_id}/{task_id}/{file}?offset=&length=``:
  bytes of a sandbox file from the agent (its ``/sandbox/...``), with ``X-File-Size``;
  served as ``text/plain`` with ``nosniff`` so a task cannot make the master's origin
  render its HTML.
* ``GET /master/browse/{agent_id}/{framework_id}/{task_id}?path=``: the sandbox's
  listing (the agent's ``/files/browse``) with paths relative to the sandbox;
  ``{"exists": false, "entries": []}`` while it does not exist yet.
* ``GET /master/queues``: for each framework that announced a ``webui_url``, what its
  queue endpoint answers (the first of ``QUEUE_PATHS`` that answers JSON: Marathon's
  ``v2/queue``, the batch framework's ``mesoslite/v1/queue``, Metronome's
  ``v1/queue``), for the "why is this waiting?" panel.  Fetched by the master, cached for a second.
* ``GET /master/frameworks/{framework_id}/api/{path}``: a GET to the framework's
  ``webui_url`` + path, JSON answers only, for dashboard plugins; a request that
  accepts ``text/event-stream`` (``EventSource``) gets the framework's event stream
  relayed as it comes, resuming with the browser's ``Last-Event-ID``.

Paths are checked for ``..`` here as well as on the agent.  The caller's
``Authorization`` header is passed to agents (cluster components that check it
themselves).  A framework's URL gets it only when the framework's (authenticated)
principal is allowed ``FORWARD_ACTION`` on ``FORWARD_OBJECT``: a framework whose API
checks the same credentials (the services and batch frameworks with ``--auth``) then
answers the dashboard, and a framework nobody vouched for never sees an operator's
password.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp
import msgspec
from aiohttp import web

from mesoslite.httpapi import HTTPError, json_response

if TYPE_CHECKING:
    from mesoslite.master.model import AgentRecord
    from mesoslite.master.server import MasterServer

log = logging.getLogger(__name__)

UI_DIR = Path(__file__).resolve().parent / "ui"
QUEUE_PATHS = ("v2/queue", "mesoslite/v1/queue", "v1/queue")
MAX_PROXY_BYTES = 4 * 1024 * 1024
PROXY_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=3)
QUEUE_TIMEOUT = aiohttp.ClientTimeout(total=2, connect=1)
STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=3, sock_read=None)
EVENT_STREAM = "text/event-stream"
QUEUE_CACHE_SECONDS = 1.0
FORWARD_ACTION = "receive_credentials"
FORWARD_OBJECT = "dashboard"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
       "form-action 'self'")
UI_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
              "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def require(server: MasterServer, request: web.Request, action: str, obj: str) -> None:
    """Authorization when the server has it configured (``mesoslite.auth``)."""
    auth = getattr(server, "auth", None)
    if auth is not None:
        auth.require(request, action, obj)


def safe_relative(path: str) -> str:
    """A relative path with no ``..``/``.`` segment (400 otherwise); '' for the root."""
    parts = [p for p in path.split("/") if p]
    if path.startswith("/") or any(p in (".", "..") for p in parts) or "\\" in path:
        raise HTTPError(400, f"Invalid path {path!r}: must be relative, without '..'")
    return "/".join(parts)


class DashboardHTTP:
    def __init__(self, server: MasterServer) -> None:
        self.server = server
        self._session: aiohttp.ClientSession | None = None
        self._queue_cache: dict[str, tuple[float, dict[str, Any], dict[str, str]]] = {}
        self._streams: set[aiohttp.ClientResponse] = set()

    def add_routes(self, app: web.Application) -> None:
        for path in ("/", "/ui", "/ui/"):
            app.router.add_get(path, self.index)
        app.router.add_get("/ui/{name:.+}", self.static)
        app.router.add_get(
            "/master/sandbox/{agent_id}/{framework_id}/{task_id}/{name:.+}", self.sandbox)
        app.router.add_get("/master/browse/{agent_id}/{framework_id}/{task_id}", self.browse)
        app.router.add_get("/master/queues", self.queues)
        app.router.add_get("/master/frameworks/{framework_id}/api/{path:.*}", self.framework_api)
        app.on_shutdown.append(self._close_streams)
        app.on_cleanup.append(self._close)

    async def _close_streams(self, app: web.Application) -> None:
        for upstream in list(self._streams):
            upstream.close()  # ends the relaying handlers

    async def _close(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=PROXY_TIMEOUT)
        return self._session

    # ---------------------------------------------------------------- static files

    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(UI_DIR / "index.html", headers=UI_HEADERS)

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = safe_relative(request.match_info["name"])
        path = (UI_DIR / name).resolve()
        if UI_DIR not in path.parents or not path.is_file():
            raise HTTPError(404, f"Not found: {request.path}")
        return web.FileResponse(path, headers=UI_HEADERS)

    # ---------------------------------------------------------------- sandboxes

    def _agent(self, agent_id: str) -> AgentRecord:
        agent = self.server.state.agents.get(agent_id)
        if agent is None:
            raise HTTPError(404, f"Unknown agent {agent_id}")
        return agent

    def agent_url(self, agent: AgentRecord, path: str) -> str:
        scheme = "https" if getattr(self.server.config, "agent_https", False) else "http"
        return f"{scheme}://{agent.address}:{agent.port}{path}"

    def _auth_header(self, request: web.Request) -> dict[str, str]:
        header = request.headers.get("Authorization")
        return {"Authorization": header} if header else {}

    async def sandbox(self, request: web.Request) -> web.StreamResponse:
        require(self.server, request, "view_state", "sandbox")
        m = request.match_info
        agent = self._agent(m["agent_id"])
        fid, tid = safe_relative(m["framework_id"]), safe_relative(m["task_id"])
        name = safe_relative(m["name"])
        params = {k: request.query[k] for k in ("offset", "length") if k in request.query}
        url = self.agent_url(agent, f"/sandbox/{quote(fid)}/{quote(tid)}/{quote(name)}")
        status, body, headers = await self._get(url, params, self._auth_header(request))
        out = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
        if "X-File-Size" in headers:
            out["X-File-Size"] = headers["X-File-Size"]
        if status != 200:
            return web.Response(status=status, body=body, content_type="application/json",
                                headers=out)
        return web.Response(body=body, content_type="text/plain", charset="utf-8",
                            headers=out)

    async def browse(self, request: web.Request) -> web.Response:
        require(self.server, request, "view_state", "sandbox")
        m = request.match_info
        agent = self._agent(m["agent_id"])
        fid, tid = safe_relative(m["framework_id"]), safe_relative(m["task_id"])
        sub = safe_relative(request.query.get("path", ""))
        root = f"{fid}/{tid}"
        target = f"{root}/{sub}" if sub else root
        status, body, _ = await self._get(self.agent_url(agent, "/files/browse"),
                                          {"path": target}, self._auth_header(request))
        if status == 404:
            return json_response({"path": sub, "exists": False, "entries": []})
        if status != 200:
            return web.Response(status=status, body=body, content_type="application/json")
        entries = []
        marker = f"/{root}/"
        for entry in _json(body):
            full = str(entry.get("path", ""))
            rel = full[full.find(marker) + len(marker):] if marker in full else full
            entries.append({"path": rel, "size": entry.get("size"), "mtime": entry.get("mtime"),
                            "mode": entry.get("mode"),
                            "dir": str(entry.get("mode", "")).startswith("d")})
        return json_response({"path": sub, "exists": True, "entries": entries})

    async def _get(self, url: str, params: dict[str, str], headers: dict[str, str],
                   timeout: aiohttp.ClientTimeout = PROXY_TIMEOUT
                   ) -> tuple[int, bytes, dict[str, str]]:
        """GET with a size cap; (status, body, headers), 502/504 when unreachable."""
        try:
            async with self.session().get(url, params=params, headers=headers,
                                          allow_redirects=False, timeout=timeout) as resp:
                body = await resp.content.read(MAX_PROXY_BYTES + 1)
                if len(body) > MAX_PROXY_BYTES:
                    raise HTTPError(502, "The answer is larger than the proxy's limit")
                return resp.status, body, dict(resp.headers)
        except TimeoutError:
            raise HTTPError(504, f"No answer from {_origin(url)} in time") from None
        except aiohttp.ClientError as exc:
            raise HTTPError(502, f"Could not reach {_origin(url)}: "
                                 f"{exc.__class__.__name__}") from None

    # ---------------------------------------------------------------- frameworks

    def _framework_url(self, framework_id: str) -> str:
        fw = self.server.state.frameworks.get(framework_id)
        if fw is None:
            raise HTTPError(404, f"Unknown framework {framework_id}")
        url = (fw.info.webui_url or "").rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise HTTPError(404, f"Framework {framework_id} announced no http(s) webui_url")
        return url

    def _framework_auth(self, request: web.Request, framework_id: str) -> dict[str, str]:
        """The caller's ``Authorization`` for a framework trusted with it, else nothing."""
        auth = getattr(self.server, "auth", None)
        fw = self.server.state.frameworks.get(framework_id)
        if auth is None or not auth.enabled or fw is None or not fw.info.principal:
            return {}
        if not auth.allowed(fw.info.principal, FORWARD_ACTION, FORWARD_OBJECT):
            return {}
        return self._auth_header(request)

    async def framework_api(self, request: web.Request) -> web.Response:
        require(self.server, request, "view_state", "master")
        fid = request.match_info["framework_id"]
        base = self._framework_url(fid)
        path = safe_relative(request.match_info["path"])
        credentials = self._framework_auth(request, fid)
        if EVENT_STREAM in request.headers.get("Accept", ""):
            return await self._relay_events(request, f"{base}/{path}", credentials)
        status, body, headers = await self._get(f"{base}/{path}", dict(request.query),
                                                credentials)
        if status in (401, 403):
            # the framework's refusal is not the caller's: the master signed in fine
            raise HTTPError(502, f"The framework answered {status}: its API needs "
                                 "credentials the master does not forward to it")
        if not headers.get("Content-Type", "").startswith("application/json"):
            raise HTTPError(502, "The framework did not answer JSON")
        return web.Response(status=status, body=body, content_type="application/json",
                            headers={"Cache-Control": "no-store"})

    async def _relay_events(self, request: web.Request, url: str,
                            credentials: dict[str, str]) -> web.StreamResponse:
        """The framework's SSE stream, relayed chunk by chunk until either side ends."""
        headers = {"Accept": EVENT_STREAM, **credentials}
        if request.headers.get("Last-Event-ID"):
            headers["Last-Event-ID"] = request.headers["Last-Event-ID"]
        try:
            upstream = await self.session().get(url, params=dict(request.query),
                                                headers=headers, allow_redirects=False,
                                                timeout=STREAM_TIMEOUT)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HTTPError(502, f"Could not reach {_origin(url)}: "
                                 f"{exc.__class__.__name__}") from None
        self._streams.add(upstream)
        try:
            if upstream.status != 200 or upstream.content_type != EVENT_STREAM:
                raise HTTPError(502, f"The framework answered {upstream.status} "
                                     f"({upstream.content_type}), not an event stream")
            response = web.StreamResponse(headers={
                "Content-Type": EVENT_STREAM, "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no", "X-Content-Type-Options": "nosniff"})
            await response.prepare(request)
            await response.write(b"retry: 1000\n\n")
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (aiohttp.ClientError, ConnectionResetError):
                pass  # either side went away: the browser reconnects with Last-Event-ID
            return response
        finally:
            self._streams.discard(upstream)
            upstream.close()

    async def queues(self, request: web.Request) -> web.Response:
        """``{"frameworks": [{framework_id, name, path, status, queue | error}]}``."""
        require(self.server, request, "view_state", "master")
        ids = [f.id for f in self.server.state.frameworks.values()
               if (f.info.webui_url or "").startswith(("http://", "https://")) and f.connected]
        results = await asyncio.gather(*(
            self._queue_of(fid, self._framework_auth(request, fid)) for fid in ids))
        return json_response({"frameworks": list(results)})

    async def _queue_of(self, framework_id: str, credentials: dict[str, str]
                        ) -> dict[str, Any]:
        now = time.monotonic()
        cached = self._queue_cache.get(framework_id)
        # an answer is reused only for the same credentials: a framework's ACLs may
        # show one principal what they hide from another
        if (cached is not None and now - cached[0] < QUEUE_CACHE_SECONDS
                and cached[2] == credentials):
            return cached[1]
        fw = self.server.state.frameworks[framework_id]
        base = (fw.info.webui_url or "").rstrip("/")
        result: dict[str, Any] = {"framework_id": framework_id, "name": fw.info.name,
                                  "webui_url": base, "path": None, "queue": None, "error": None}
        for path in QUEUE_PATHS:
            try:
                status, body, headers = await self._get(f"{base}/{path}", {}, credentials,
                                                        timeout=QUEUE_TIMEOUT)
                is_json = headers.get("Content-Type", "").startswith("application/json")
                if status == 200 and is_json:
                    result.update(path=path, queue=_json(body), error=None)
                    break
                result["error"] = f"{path}: HTTP {status}"
            except HTTPError as exc:
                result["error"] = exc.message
                break
        self._queue_cache[framework_id] = (now, result, credentials)
        for stale in set(self._queue_cache) - set(self.server.state.frameworks):
            del self._queue_cache[stale]
        return result


def _origin(url: str) -> str:
    return url.split("/", 3)[2] if "://" in url else url


def _json(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise HTTPError(502, "The upstream answer is not valid JSON") from None
