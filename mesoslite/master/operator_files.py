"""The operator API's ``LIST_FILES`` and ``READ_FILE`` on the master: the agents'
sandboxes under one tree, ``/agents/<agent id>/<path under that agent's sandboxes>``::

    {"type": "LIST_FILES", "list_files": {"path": "/agents/<id>/<framework>/<task>"}}
    {"type": "READ_FILE", "read_file": {"path": "/agents/<id>/<fw>/<task>/stdout",
                                        "offset": 0, "length": 4096}}

``/`` lists ``/agents``, and ``/agents`` lists the agents that are connected.  Below
that the call goes to the agent's own operator API (``agent/operator_api.py``), with
the caller's credentials, and its answer comes back with the paths rewritten into this
tree.  *Deviation from Mesos:* Mesos' master serves its own log files here (``/master/
log``); mesoslite's master logs to its standard streams, and what operators read most
is sandboxes, which Mesos makes them fetch from each agent.

Needs ``view_state`` on ``sandbox`` (as the dashboard's sandbox proxy).  400 for a
path with ``..`` or a bad offset/length, 404 for a path outside the tree or an agent
not connected, 502/504 when the agent does not answer; the agent's own 4xx pass
through.
"""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from mesoslite.httpapi import HTTPError
from mesoslite.master.dashboard_http import safe_relative
from mesoslite.master.model import AgentState

if TYPE_CHECKING:
    from mesoslite.master.operator_api import OperatorCall
    from mesoslite.master.server import MasterServer

_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=3)
_DIR = {"nlink": 1, "size": 0, "mode": stat.S_IFDIR | 0o755, "uid": "", "gid": ""}


def _path(call: dict[str, Any], field: str) -> str:
    body = call.get(field)
    value = body.get("path") if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        where = f"{field}.path"
        raise HTTPError(400, f"Expecting '{where}' to be a string", [(where, ["is required"])])
    return value


def _split(path: str, where: str) -> tuple[str, str] | None:
    """(agent id, relative path) for a path in an agent's tree; None for ``/`` and
    ``/agents``; 404 for anything else."""
    parts = [p for p in path.split("/") if p]
    if parts in ([], ["agents"]):
        return None
    if parts[0] != "agents":
        raise HTTPError(404, f"No such path: {path!r} (the master serves "
                             "/agents/<agent id>/<sandbox path>)", [(where, ["not found"])])
    return parts[1], safe_relative("/".join(parts[2:]))


async def _agent_call(server: MasterServer, request: web.Request, agent_id: str,
                      body: dict[str, Any], where: str) -> dict[str, Any]:
    agent = server.state.agents.get(agent_id)
    if agent is None or agent.state != AgentState.ACTIVE:
        raise HTTPError(404, f"Agent {agent_id} is not connected to this master",
                        [(where, ["unknown agent"])])
    scheme = "https" if getattr(server.config, "agent_https", False) else "http"
    url = f"{scheme}://{agent.address}:{agent.port}/api/v1"
    header = request.headers.get("Authorization")
    try:
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as http, http.post(
                url, json=body, headers={"Authorization": header} if header else {},
                allow_redirects=False) as response:
            answer = await response.json(content_type=None)
            status = response.status
    except TimeoutError:
        raise HTTPError(504, f"Agent {agent_id} did not answer in time") from None
    except (aiohttp.ClientError, ValueError) as exc:
        raise HTTPError(502, f"Agent {agent_id} cannot be read: {exc}") from None
    if status != 200:
        message = answer.get("message", "") if isinstance(answer, dict) else ""
        raise HTTPError(status, f"Agent {agent_id}: {message}", [(where, [message])])
    return answer


async def _list_files(server: MasterServer, request: web.Request, call: dict[str, Any]
                      ) -> dict[str, Any]:
    server.auth.require(request, "view_state", "sandbox")
    path = _path(call, "list_files")
    target = _split(path, "list_files.path")
    if target is None:
        if [p for p in path.split("/") if p] == []:
            infos = [{"path": "/agents", **_DIR}]
        else:
            infos = [{"path": f"/agents/{aid}", **_DIR}
                     for aid, agent in sorted(server.state.agents.items())
                     if agent.state == AgentState.ACTIVE]
        return {"type": "LIST_FILES", "list_files": {"file_infos": infos}}
    agent_id, relative = target
    answer = await _agent_call(server, request, agent_id, {
        "type": "LIST_FILES", "list_files": {"path": relative or "."}}, "list_files.path")
    base = f"/agents/{agent_id}/{relative}".rstrip("/")
    infos = answer.get("list_files", {}).get("file_infos", [])
    for info in infos:
        info["path"] = f"{base}/{str(info.get('path', '')).rsplit('/', 1)[-1]}"
    return {"type": "LIST_FILES", "list_files": {"file_infos": infos}}


async def _read_file(server: MasterServer, request: web.Request, call: dict[str, Any]
                     ) -> dict[str, Any]:
    server.auth.require(request, "view_state", "sandbox")
    path = _path(call, "read_file")
    target = _split(path, "read_file.path")
    if target is None or not target[1]:
        raise HTTPError(400, f"{path!r} is a directory", [("read_file.path", ["directory"])])
    agent_id, relative = target
    body = {"path": relative}
    for name in ("offset", "length"):
        value = call["read_file"].get(name)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                where = f"read_file.{name}"
                raise HTTPError(400, f"'{where}' must be a non-negative integer",
                                [(where, ["must be >= 0"])])
            body[name] = value
    answer = await _agent_call(server, request, agent_id,
                               {"type": "READ_FILE", "read_file": body}, "read_file.path")
    return {"type": "READ_FILE", "read_file": answer.get("read_file", {})}


CALLS: dict[str, OperatorCall] = {"LIST_FILES": _list_files, "READ_FILE": _read_file}
