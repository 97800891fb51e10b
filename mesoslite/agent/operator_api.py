"""The agent's operator API, ``POST /api/v1`` (Mesos' ``mesos.v1.agent.Call``), in
JSON or protobuf (read by ``Content-Type``, answered by ``Accept``; the codec is
``messages/wire.py``).  Behind ``view_state`` on ``agent`` like every other read of
this agent (``server.py``'s middleware).

Calls: ``GET_HEALTH``, ``GET_VERSION``, ``GET_FLAGS``, ``GET_METRICS``, ``GET_AGENT``,
``GET_FRAMEWORKS``, ``GET_EXECUTORS``, ``GET_TASKS``, ``GET_STATE`` (the last three
together), ``GET_CONTAINERS``, and ``LIST_FILES`` / ``READ_FILE`` over the agent's
sandboxes (the paths ``/files/browse`` and ``/files/read`` serve; anything outside them
is 403).  Another call type is 400.  Answers are ``mesos.v1.agent.Response``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mesoslite import __version__
from mesoslite.agent.sandbox_http import MAX_READ, SandboxHTTP, read_range
from mesoslite.httpapi import (
    HTTPError,
    answer_media_type,
    body_media_type,
    message_response,
    read_call,
)
from mesoslite.messages import wire

if TYPE_CHECKING:
    from mesoslite.agent.server import Agent

PATH = "/api/v1"
_SECRET_FLAGS = frozenset({"agent_secret"})  # never shown, as secrets never are


class AgentOperatorAPI:
    def __init__(self, agent: Agent, files: SandboxHTTP) -> None:
        self.agent = agent
        self.files = files
        self.calls: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "GET_HEALTH": self._health, "GET_VERSION": self._version,
            "GET_FLAGS": self._flags, "GET_METRICS": self._metrics, "GET_AGENT": self._agent,
            "GET_FRAMEWORKS": self._frameworks, "GET_EXECUTORS": self._executors,
            "GET_TASKS": self._tasks, "GET_STATE": self._state,
            "GET_CONTAINERS": self._containers, "LIST_FILES": self._list_files,
            "READ_FILE": self._read_file}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(PATH, self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        media = body_media_type(request)
        answer = answer_media_type(request)
        call = await read_call(request, wire.AGENT_CALL, media)
        kind = call.get("type") if isinstance(call, dict) else None
        if not isinstance(kind, str):
            raise HTTPError(400, "Expecting 'type' to be present", [("type", ["is required"])])
        handler = self.calls.get(kind)
        if handler is None:
            raise HTTPError(400, f"Call type {kind} is not supported by the mesoslite agent",
                            [("type", ["unsupported"])])
        body = await handler(call)
        return message_response(wire.AGENT_RESPONSE, {"type": kind, kind.lower(): body},
                                answer)

    # ---------------------------------------------------------------- reads

    async def _health(self, call: dict[str, Any]) -> dict[str, Any]:
        return {"healthy": True}

    async def _version(self, call: dict[str, Any]) -> dict[str, Any]:
        return {"version_info": {"version": __version__}}

    async def _flags(self, call: dict[str, Any]) -> dict[str, Any]:
        config = self.agent.config
        flags = [{"name": f.name, "value": _flag(getattr(config, f.name))}
                 for f in dataclasses.fields(config) if f.name not in _SECRET_FLAGS]
        return {"flags": flags}

    async def _metrics(self, call: dict[str, Any]) -> dict[str, Any]:
        text = generate_latest(self.agent.metrics.registry).decode()
        return {"metrics": [
            {"name": s.name + "".join(f"/{k}={v}" for k, v in sorted(s.labels.items())),
             "value": float(s.value)}
            for family in text_string_to_metric_families(text) for s in family.samples]}

    def _agent_info(self) -> dict[str, Any]:
        agent = self.agent
        info: dict[str, Any] = {
            "hostname": agent.hostname, "port": agent.config.port,
            "resources": agent.config.resources.to_json(),
            "attributes": [{"name": k, "type": "TEXT", "text": {"value": v}}
                           for k, v in sorted(agent.config.attributes.items())]}
        if agent.agent_id:
            info["id"] = {"value": agent.agent_id}
        return info

    async def _agent(self, call: dict[str, Any]) -> dict[str, Any]:
        return {"agent_info": self._agent_info()}

    async def _frameworks(self, call: dict[str, Any]) -> dict[str, Any]:
        # checkpoint files: read off the event loop, which serves tasks' updates
        infos = await asyncio.to_thread(self.agent.cp.frameworks)
        live = {t.framework_id for t in self.agent.tasks.tasks.values()} | {
            fid for fid, _ in self.agent.executors.runs}
        return {"frameworks": [{"framework_info": msgspec.to_builtins(infos[fid])}
                               for fid in sorted(live) if fid in infos]}

    async def _executors(self, call: dict[str, Any]) -> dict[str, Any]:
        return {"executors": [{"executor_info": msgspec.to_builtins(run.cp.info)}
                              for _, run in sorted(self.agent.executors.runs.items())]}

    async def _tasks(self, call: dict[str, Any]) -> dict[str, Any]:
        agent_id = self.agent.agent_id or ""
        launched, terminated = [], []
        for task in self.agent.tasks.tasks.values():
            info = task.cp.task
            entry = {"name": info.name, "task_id": msgspec.to_builtins(info.task_id),
                     "framework_id": {"value": task.framework_id},
                     "agent_id": {"value": agent_id}, "state": task.state.value,
                     "resources": msgspec.to_builtins(info.resources)}
            (terminated if task.state.terminal else launched).append(entry)
        return {"launched_tasks": launched, "terminated_tasks": terminated}

    async def _state(self, call: dict[str, Any]) -> dict[str, Any]:
        return {"get_tasks": await self._tasks(call),
                "get_executors": await self._executors(call),
                "get_frameworks": await self._frameworks(call)}

    async def _containers(self, call: dict[str, Any]) -> dict[str, Any]:
        out = [{"framework_id": {"value": t.framework_id},
                "container_id": {"value": t.cp.container_id}}
               for t in self.agent.tasks.tasks.values() if t.container is not None]
        out += [{"framework_id": {"value": fid}, "executor_id": {"value": eid},
                 "executor_name": run.cp.info.name or eid,
                 "container_id": {"value": run.cp.container_id}}
                for (fid, eid), run in sorted(self.agent.executors.runs.items())
                if run.container is not None]
        return {"containers": out}

    # ---------------------------------------------------------------- files

    async def _list_files(self, call: dict[str, Any]) -> dict[str, Any]:
        path = self.files.resolve(_string(call, "list_files", "path"))
        if not path.is_dir():
            raise HTTPError(404, f"No such directory: {path}",
                            [("list_files.path", ["not found"])])
        return {"file_infos": [_file_info(child) for child in sorted(path.iterdir())]}

    async def _read_file(self, call: dict[str, Any]) -> dict[str, Any]:
        path = self.files.resolve(_string(call, "read_file", "path"))
        body = call["read_file"]
        offset, length = body.get("offset", 0), body.get("length", MAX_READ)
        if not (isinstance(offset, int) and isinstance(length, int)) or offset < 0 or \
                length < 0:
            raise HTTPError(400, "'read_file.offset' and 'length' must be non-negative "
                                 "integers", [("read_file.offset", ["must be >= 0"])])
        data, size = read_range(path, offset, min(length, MAX_READ))
        return {"size": size, "data": data}


def _string(call: dict[str, Any], field: str, name: str) -> str:
    body = call.get(field)
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        where = f"{field}.{name}"
        raise HTTPError(400, f"Expecting '{where}' to be a string", [(where, ["is required"])])
    return value


def _file_info(path: Path) -> dict[str, Any]:
    st = path.lstat()
    return {"path": str(path), "nlink": st.st_nlink, "size": st.st_size,
            "mtime": {"nanoseconds": int(st.st_mtime * 1e9)}, "mode": st.st_mode,
            "uid": str(st.st_uid), "gid": str(st.st_gid)}


def _flag(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in sorted(value.items()))
    return "" if value is None else str(value)
