"""``/master/secrets`` and ``/master/configs``: the operators' API for secrets and config
maps (the CLI's ``mesoslite secrets`` / ``mesoslite configs``).

=========================================  ==========================================
``GET /master/secrets``                    ``{"secrets": [metadata...]}``
``POST /master/secrets``                   create ``{"name", "data"|"string_data"}``:
                                           201, 409 when it exists
``GET /master/secrets/{name}``             metadata
``PUT /master/secrets/{name}``             create (201) or replace = rotate (200)
``DELETE /master/secrets/{name}``          200 with the metadata it had
``/master/configs[/{name}]``               the same for config maps; ``GET`` of one
                                           also answers its ``data``
=========================================  ==========================================

Secret bodies: ``data`` maps keys to base64 values, ``string_data`` keys to text
(both may be given; ``string_data`` wins).  Config bodies: ``data`` maps keys to text.
Metadata is ``{name, keys, version, created_at, updated_at}`` (secrets add
``usable``: whether this master's key opens it).  **No answer ever contains a
secret's value**, and error messages name keys, never values.

ACL actions (object: the name): ``view_secret`` (list, metadata), ``manage_secret``
(create, replace, delete), ``read_config`` (list, read), ``manage_config`` (write).
Lists show only what the principal may see.  Secrets need the master's key
(``--secrets-key-file``): without one, every ``/master/secrets`` request answers 503
(config maps keep working).  Invalid input answers 422 with ``details``.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from aiohttp import web

from mesoslite.auth import PRINCIPAL
from mesoslite.httpapi import HTTPError, json_response, read_json
from mesoslite.secrets.model import ObjectError, check_name

if TYPE_CHECKING:
    from mesoslite.master.server import MasterServer

PLURAL = {"secret": "secrets", "config": "configs"}
READ = {"secret": "view_secret", "config": "read_config"}
WRITE = {"secret": "manage_secret", "config": "manage_config"}
NO_KEY = ("secrets are disabled on this master: start it with --secrets-key-file FILE or "
          "MESOSLITE_SECRETS_KEY ('mesoslite secrets keygen' makes a key)")


class SecretsHTTP:
    def __init__(self, server: MasterServer) -> None:
        self.server = server

    def add_routes(self, app: web.Application) -> None:
        for kind, plural in PLURAL.items():
            base = f"/master/{plural}"
            app.router.add_get(base, self._handler(self.list, kind))
            app.router.add_post(base, self._handler(self.create, kind))
            app.router.add_get(base + "/{name}", self._handler(self.show, kind))
            app.router.add_put(base + "/{name}", self._handler(self.replace, kind))
            app.router.add_delete(base + "/{name}", self._handler(self.delete, kind))

    def _handler(self, method: Any, kind: str) -> Any:
        async def handle(request: web.Request) -> web.Response:
            await self.server.check_leader(request)
            if kind == "secret" and self.server.secrets.keyring is None:
                raise HTTPError(503, NO_KEY)
            return await method(request, kind)

        return handle

    # ---------------------------------------------------------------- handlers

    async def list(self, request: web.Request, kind: str) -> web.Response:
        secrets = self.server.secrets
        principal = request.get(PRINCIPAL)
        items = [self._meta(o) for o in secrets.list(kind)
                 if self.server.auth.allowed(principal, READ[kind], o.name)]
        return json_response({PLURAL[kind]: items})

    async def show(self, request: web.Request, kind: str) -> web.Response:
        name = request.match_info["name"]
        self.server.auth.require(request, READ[kind], name)
        obj = self._existing(kind, name)
        body = self._meta(obj)
        if kind == "config":
            body["data"] = dict(obj.text)
        return json_response(body)

    async def create(self, request: web.Request, kind: str) -> web.Response:
        body = await _object_body(request, kind, with_name=True)
        name = body.get("name")
        if not isinstance(name, str):
            raise HTTPError(422, f"A {kind} needs a 'name'",
                            [("name", ["is required (a string)"])])
        return await self._put(request, kind, name, body, create_only=True)

    async def replace(self, request: web.Request, kind: str) -> web.Response:
        body = await _object_body(request, kind, with_name=True)
        name = request.match_info["name"]
        if body.get("name") not in (None, name):
            raise HTTPError(422, f"The name in the body differs from the URL's ('{name[:80]}')",
                            [("name", [f"must be '{name[:80]}' or left out"])])
        return await self._put(request, kind, name, body, create_only=False)

    async def delete(self, request: web.Request, kind: str) -> web.Response:
        name = request.match_info["name"]
        self.server.auth.require(request, WRITE[kind], name)
        obj = await self.server.secrets.delete(kind, name)
        if obj is None:
            raise HTTPError(404, f"{kind} '{name}' does not exist")
        return json_response(self._meta(obj))

    # ---------------------------------------------------------------- helpers

    async def _put(self, request: web.Request, kind: str, name: str, body: dict[str, Any],
                   create_only: bool) -> web.Response:
        try:
            check_name(name, kind)
        except ObjectError as exc:
            raise HTTPError(422, str(exc), [("name", [str(exc)])]) from None
        self.server.auth.require(request, WRITE[kind], name)
        secrets = self.server.secrets
        values = _values(body, kind)
        try:
            obj, created = await secrets.put(kind, name, values, self.server.clock.now(),
                                             create_only=create_only)
        except ObjectError as exc:  # names the rule and the key, never a value
            raise HTTPError(422, str(exc), [(_data_field(kind), [str(exc)])]) from None
        except FileExistsError as exc:
            raise HTTPError(409, f"{exc}; replace it with PUT /master/{PLURAL[kind]}/{name}"
                            ) from None
        return json_response(self._meta(obj), 201 if created else 200)

    def _existing(self, kind: str, name: str) -> Any:
        obj = self.server.secrets.get(kind, name)
        if obj is None:
            raise HTTPError(404, f"{kind} '{name}' does not exist")
        return obj

    def _meta(self, obj: Any) -> dict[str, Any]:
        return obj.metadata(self.server.secrets.usable(obj))


async def _object_body(request: web.Request, kind: str, with_name: bool) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise HTTPError(400, "The body must be a JSON object")
    allowed = {"name", "data", "string_data"} if kind == "secret" else {"name", "data"}
    unknown = sorted(str(k)[:80] for k in body if k not in allowed)
    if unknown:
        raise HTTPError(422, f"Unknown field(s) in a {kind}: {', '.join(unknown)}",
                        [(k, [f"is not a field of a {kind} ({', '.join(sorted(allowed))})"])
                         for k in unknown])
    return body


def _data_field(kind: str) -> str:
    return "data" if kind == "config" else "data/string_data"


def _values(body: dict[str, Any], kind: str) -> dict[str, bytes]:
    """The keys and values of a create/replace body (see the module docstring)."""
    values: dict[str, bytes] = {}
    data = _string_map(body, "data")
    if kind == "secret":
        for key, text in data.items():
            try:
                values[key] = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise HTTPError(422, f"data: the value of key '{key[:80]}' is not base64 "
                                "(use string_data for text)",
                                [(f"data.{key[:80]}", ["must be base64"])]) from None
        data = _string_map(body, "string_data")
    values.update({k: v.encode() for k, v in data.items()})
    if not values:
        field = "data or string_data" if kind == "secret" else "data"
        raise HTTPError(422, f"A {kind} needs at least one key in {field}",
                        [(_data_field(kind), ["needs at least one key"])])
    return values


def _string_map(body: dict[str, Any], field: str) -> dict[str, str]:
    raw = body.get(field)
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise HTTPError(422, f"'{field}' must map keys to strings",
                        [(field, ["must map keys to strings"])])
    return raw
