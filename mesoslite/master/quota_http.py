"""Weights and quota over HTTP: the operator calls and Mesos' v0 endpoints.

``POST /api/v1`` calls (``CALLS``), in Mesos' JSON::

    {"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [
        {"role": "dev", "weight": 2.0}]}}
    {"type": "UPDATE_QUOTA", "update_quota": {"force": false, "quota_configs": [
        {"role": "dev", "guarantees": {"cpus": {"value": 2}},
         "limits": {"cpus": {"value": 4}}}]}}

answered 202 once stored; ``GET_WEIGHTS`` answers ``{"weight_infos": [...]}`` and
``GET_QUOTA`` ``{"status": {"infos": [...], "configs": [...]}}``.  A config with no
guarantees and no limits removes the role's quota.

v0: ``GET /weights`` (a JSON array of ``{"role", "weight"}``), ``PUT /weights`` (the
same array), ``GET /quota`` (the ``QuotaStatus``), ``POST /quota`` (Mesos' legacy
``QuotaRequest``: ``{"role", "guarantee": [Resource], "force"}``, whose guarantees
are also its limits; 409 if the role has quota already) and ``DELETE /quota/<role>``.

ACL actions: reads need ``view_state`` on ``master`` (as ``GET_ROLES``); updates need
``update_weights`` / ``update_quota`` on every role they name.  Bad input is a 400
naming the field, a guarantee the cluster cannot hold without ``force`` a 409; either
way nothing changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from mesoslite.httpapi import HTTPError, json_response, read_json
from mesoslite.master import operator_quota as ops
from mesoslite.master.stimuli import Refusal
from mesoslite.resources import Resources

if TYPE_CHECKING:
    from mesoslite.master.operator_api import OperatorCall
    from mesoslite.master.server import MasterServer


# ---------------------------------------------------------------- views


def weight_infos(server: MasterServer) -> list[dict[str, Any]]:
    """Mesos' ``WeightInfo`` list: every role with a weight set, by name."""
    return [{"role": role, "weight": weight}
            for role, weight in sorted(server.state.role_weights.items())]


def quota_status(server: MasterServer) -> dict[str, Any]:
    """Mesos' ``QuotaStatus``: the legacy ``infos`` (guarantees as resources) and the
    ``configs`` (guarantees and limits as name -> {"value"})."""
    infos, configs = [], []
    for role, quota in sorted(server.state.quotas.items()):
        infos.append({"role": role, "guarantee": Resources(
            scalars=quota.guarantees).to_json()})
        config: dict[str, Any] = {"role": role}
        if quota.guarantees:
            config["guarantees"] = {k: {"value": v} for k, v in quota.guarantees.items()}
        if quota.limits:
            config["limits"] = {k: {"value": v} for k, v in quota.limits.items()}
        configs.append(config)
    return {"infos": infos, "configs": configs}


# ---------------------------------------------------------------- reading requests


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise HTTPError(400, f"Expecting '{where}' to be an object", [(where, ["is required"])])
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise HTTPError(400, f"Expecting '{where}' to be an array", [(where, ["is required"])])
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HTTPError(400, f"Expecting '{where}' to be a number",
                        [(where, ["must be a number"])])
    return float(value)


def _role(item: dict[str, Any], where: str) -> str:
    role = item.get("role")
    if not isinstance(role, str) or not role:
        raise HTTPError(400, f"Expecting '{where}.role' to be a role name",
                        [(f"{where}.role", ["is required"])])
    return role


def read_weights(items: object, where: str) -> dict[str, float]:
    """``[{"role", "weight"}]`` as role -> weight (400 naming the bad field)."""
    weights: dict[str, float] = {}
    for i, item in enumerate(_list(items, where)):
        item = _object(item, f"{where}[{i}]")
        role = _role(item, f"{where}[{i}]")
        if role in weights:
            raise HTTPError(400, f"Role '{role}' is named twice in '{where}'",
                            [(f"{where}[{i}].role", ["is repeated"])])
        weights[role] = _number(item.get("weight"), f"{where}[{i}].weight")
    return weights


def _scalars(value: object, where: str) -> dict[str, float]:
    """``{"cpus": {"value": 2}}`` (a ``map<string, Value.Scalar>``) as name -> value."""
    if value is None:
        return {}
    out = {}
    for name, scalar in _object(value, where).items():
        out[name] = _number(_object(scalar, f"{where}.{name}").get("value"),
                            f"{where}.{name}.value")
    return out


def read_quota_configs(items: object, where: str) -> list[ops.QuotaConfig]:
    configs = []
    for i, item in enumerate(_list(items, where)):
        at = f"{where}[{i}]"
        item = _object(item, at)
        configs.append(ops.QuotaConfig(_role(item, at),
                                       _scalars(item.get("guarantees"), f"{at}.guarantees"),
                                       _scalars(item.get("limits"), f"{at}.limits")))
    return configs


def _force(value: object, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise HTTPError(400, f"Expecting '{where}' to be a boolean",
                        [(where, ["must be true or false"])])
    return value


# ---------------------------------------------------------------- doing it


async def update_weights(server: MasterServer, request: web.Request,
                         weights: dict[str, float]) -> None:
    for role in sorted(weights):
        server.auth.require(request, "update_weights", role)
    _answer(server.handle(ops.OperatorUpdatesWeights(weights)), "update_weights")
    await server.flush()  # stored before the answer


async def update_quota(server: MasterServer, request: web.Request,
                       configs: list[ops.QuotaConfig], force: bool) -> None:
    for config in configs:
        server.auth.require(request, "update_quota", config.role)
    _answer(server.handle(ops.OperatorUpdatesQuota(configs, force)), "update_quota")
    await server.flush()  # stored before the answer


def _answer(result: object, field: str) -> None:
    if isinstance(result, Refusal):
        where = f"{field}.{result.path}" if result.path else field
        raise HTTPError(result.status, result.message, [(where, [result.message])])


# ---------------------------------------------------------------- POST /api/v1


async def _get_weights(server: MasterServer, request: web.Request,
                       body: dict[str, Any]) -> dict[str, Any]:
    server.auth.require(request, "view_state", "master")
    return {"type": "GET_WEIGHTS", "get_weights": {"weight_infos": weight_infos(server)}}


async def _update_weights(server: MasterServer, request: web.Request,
                          body: dict[str, Any]) -> None:
    call = _object(body.get("update_weights"), "update_weights")
    await update_weights(server, request,
                         read_weights(call.get("weight_infos"), "update_weights.weight_infos"))


async def _get_quota(server: MasterServer, request: web.Request,
                     body: dict[str, Any]) -> dict[str, Any]:
    server.auth.require(request, "view_state", "master")
    return {"type": "GET_QUOTA", "get_quota": {"status": quota_status(server)}}


async def _update_quota(server: MasterServer, request: web.Request,
                        body: dict[str, Any]) -> None:
    call = _object(body.get("update_quota"), "update_quota")
    configs = read_quota_configs(call.get("quota_configs"), "update_quota.quota_configs")
    await update_quota(server, request, configs, _force(call.get("force"),
                                                        "update_quota.force"))


CALLS: dict[str, OperatorCall] = {
    "GET_WEIGHTS": _get_weights,
    "UPDATE_WEIGHTS": _update_weights,
    "GET_QUOTA": _get_quota,
    "UPDATE_QUOTA": _update_quota,
}


# ---------------------------------------------------------------- v0


class QuotaHTTP:
    """``/weights`` and ``/quota`` (see the module docstring)."""

    def __init__(self, server: MasterServer) -> None:
        self.server = server

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/weights", self.get_weights)
        app.router.add_put("/weights", self.put_weights)
        app.router.add_get("/quota", self.get_quota)
        app.router.add_post("/quota", self.post_quota)
        app.router.add_delete("/quota/{role:.+}", self.delete_quota)

    async def _read(self, request: web.Request) -> None:
        await self.server.check_leader(request)
        self.server.auth.require(request, "view_state", "master")

    async def get_weights(self, request: web.Request) -> web.Response:
        await self._read(request)
        return json_response(weight_infos(self.server))

    async def put_weights(self, request: web.Request) -> web.Response:
        await self.server.check_leader(request)
        weights = read_weights(await read_json(request), "weights")
        await update_weights(self.server, request, weights)
        return web.Response(status=200)

    async def get_quota(self, request: web.Request) -> web.Response:
        await self._read(request)
        return json_response(quota_status(self.server))

    async def post_quota(self, request: web.Request) -> web.Response:
        """Mesos' legacy set: the guarantees are the limits too."""
        await self.server.check_leader(request)
        body = _object(await read_json(request), "body")
        role = _role(body, "body")
        guarantee = self._guarantee(body.get("guarantee"))
        if role in self.server.state.quotas:
            raise HTTPError(409, f"Role '{role}' has quota already: change it with "
                                 "UPDATE_QUOTA or remove it first", [("role", ["has quota"])])
        config = ops.QuotaConfig(role, guarantee, dict(guarantee))
        await update_quota(self.server, request, [config], _force(body.get("force"), "force"))
        return web.Response(status=200)

    async def delete_quota(self, request: web.Request) -> web.Response:
        await self.server.check_leader(request)
        role = request.match_info["role"]
        if role not in self.server.state.quotas:
            raise HTTPError(400, f"Role '{role}' has no quota set", [("role", ["no quota"])])
        await update_quota(self.server, request, [ops.QuotaConfig(role, {}, {})], False)
        return web.Response(status=200)

    @staticmethod
    def _guarantee(items: object) -> dict[str, float]:
        try:
            resources = Resources.from_json(_list(items, "guarantee"), "guarantee")
        except ValueError as exc:
            raise HTTPError(400, f"Invalid 'guarantee': {exc}",
                            [("guarantee", [str(exc)])]) from None
        if resources.ranges or resources.sets:
            raise HTTPError(400, "Quota guarantees are scalars only",
                            [("guarantee", ["scalars only"])])
        return dict(resources.scalars)
