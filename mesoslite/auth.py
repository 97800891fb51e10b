"""Authentication and authorization for every mesoslite HTTP server.

**Credentials** (``--credentials FILE``, JSON)::

    {"credentials": [{"principal": "ops", "secret": "..."}],
     "tokens": [{"principal": "ci", "token": "..."}]}

A request authenticates with HTTP Basic (principal:secret) or ``Authorization:
Bearer <token>``.  Secrets are compared in constant time and never logged.

**ACLs** (``--acls FILE``, JSON): rules tried in order, the first that matches
decides; once ACLs are configured anything no rule allows is denied::

    {"rules": [
      {"principals": ["ops"], "actions": ["*"], "objects": ["*"], "allow": true},
      {"principals": ["web-fw"], "actions": ["register_framework"], "objects": ["web"]},
      {"principals": ["*"], "actions": ["view_state"], "objects": ["*"], "allow": false}]}

Principals, actions and objects are shell-style patterns (``*``, ``web-*``).  Actions
used by the servers: ``register_framework`` (object: role), ``teardown_framework`` and
``kill_task`` (object: the framework's principal), ``view_state`` (object: what is
read, e.g. ``master``, ``sandbox``), ``update_weights`` and ``update_quota`` (object: the
role whose weight or quota changes), Mesos' maintenance actions
``update_maintenance_schedule``, ``get_maintenance_schedule``,
``get_maintenance_status``, ``start_maintenance`` and ``stop_maintenance`` (object:
the machine's hostname, or its IP; the reads leave out the machines they may not
see), and the frameworks' own (``manage_app``...).

The operator's agent calls: ``drain_agent``, ``deactivate_agent``, ``reactivate_agent``
and ``mark_agent_gone`` (object: the agent id); a drain that marks the agent gone needs
``mark_agent_gone`` too.

Without a credentials file every request is anonymous and allowed: that is only
permitted on loopback listeners (see ``check_exposure``).
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from mesoslite.httpapi import HTTPError, error_response

ANONYMOUS = None
# Where the middleware leaves the authenticated principal (None: anonymous).
PRINCIPAL: web.RequestKey[str | None] = web.RequestKey("principal", object)
PUBLIC_PATHS = frozenset({"/health", "/ping"})


class AuthConfigError(ValueError):
    """A credentials or ACL file that cannot be used; the text names the problem."""


@dataclass(frozen=True)
class Rule:
    principals: tuple[str, ...]
    actions: tuple[str, ...]
    objects: tuple[str, ...]
    allow: bool = True

    def matches(self, principal: str | None, action: str, obj: str) -> bool:
        who = principal if principal is not None else ""
        return (_any(self.principals, who) and _any(self.actions, action)
                and _any(self.objects, obj))


def _any(patterns: Iterable[str], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


@dataclass
class Auth:
    """Who may call (authentication) and what they may do (authorization)."""

    secrets: dict[str, str] = field(default_factory=dict)  # principal -> secret
    tokens: dict[str, str] = field(default_factory=dict)  # token -> principal
    rules: list[Rule] | None = None  # None: no ACLs configured (allow everyone)

    @property
    def enabled(self) -> bool:
        return bool(self.secrets or self.tokens)

    def authenticate(self, header: str | None) -> str | None:
        """The principal an ``Authorization`` header proves, or raise 401."""
        if not header:
            raise HTTPError(401, "Authentication required")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic":
            try:
                principal, _, secret = base64.b64decode(value, validate=True).decode().partition(
                    ":")
            except (binascii.Error, UnicodeDecodeError):
                raise HTTPError(401, "Malformed Basic credentials") from None
            expected = self.secrets.get(principal, "")
            # compare even for unknown principals, so timing tells nothing
            if hmac.compare_digest(secret.encode(), expected.encode()) and expected:
                return principal
        elif scheme.lower() == "bearer":
            found = None
            for token, principal in self.tokens.items():
                if hmac.compare_digest(value.encode(), token.encode()):
                    found = principal
            if found is not None:
                return found
        raise HTTPError(401, "Invalid credentials")

    def allowed(self, principal: str | None, action: str, obj: str) -> bool:
        if self.rules is None:
            return True
        for rule in self.rules:
            if rule.matches(principal, action, obj):
                return rule.allow
        return False

    def require(self, request: web.Request, action: str, obj: str) -> None:
        """Raise 403 unless the request's principal may do ``action`` on ``obj``."""
        principal = request.get(PRINCIPAL)
        if not self.allowed(principal, action, obj):
            raise HTTPError(403, f"Principal '{principal or 'anonymous'}' is not authorized "
                            f"to {action.replace('_', ' ')} '{obj}'")

    def middleware(self, public: Iterable[str] = PUBLIC_PATHS) -> Callable[..., Any]:
        public_paths = frozenset(public)

        @web.middleware
        async def auth_middleware(request: web.Request,
                                  handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                                  ) -> web.StreamResponse:
            request[PRINCIPAL] = ANONYMOUS
            if self.enabled and request.path not in public_paths:
                try:
                    request[PRINCIPAL] = self.authenticate(
                        request.headers.get("Authorization"))
                except HTTPError as exc:
                    return error_response(exc.status, exc.message, headers={
                        "WWW-Authenticate": 'Basic realm="mesoslite"'})
            return await handler(request)

        return auth_middleware


def api_guard(auth: Auth, obj: str, read: str = "view_state", write: str = "manage",
              public: Iterable[str] = PUBLIC_PATHS) -> list[Callable[..., Any]]:
    """Middlewares for a framework API: authenticate every request (but ``public``
    paths), then require ``read`` on ``obj`` for GET/HEAD and ``write`` otherwise."""
    public_paths = frozenset(public)

    @web.middleware
    async def authorize(request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                        ) -> web.StreamResponse:
        if request.path not in public_paths:
            action = read if request.method in ("GET", "HEAD", "OPTIONS") else write
            try:
                auth.require(request, action, obj)
            except HTTPError as exc:
                return error_response(exc.status, exc.message)
        return await handler(request)

    return [auth.middleware(public_paths), authorize]


def load_auth(credentials: Path | None, acls: Path | None) -> Auth:
    """Read the files (either may be None).  Raises ``AuthConfigError``."""
    auth = Auth()
    if credentials is not None:
        data = _read_json(credentials)
        for i, item in enumerate(data.get("credentials", [])):
            principal, secret = _strings(item, ("principal", "secret"), f"credentials[{i}]")
            auth.secrets[principal] = secret
        for i, item in enumerate(data.get("tokens", [])):
            principal, token = _strings(item, ("principal", "token"), f"tokens[{i}]")
            auth.tokens[token] = principal
        if not auth.enabled:
            raise AuthConfigError(f"{credentials}: no credentials or tokens in it")
    if acls is not None:
        data = _read_json(acls)
        rules = []
        for i, item in enumerate(data.get("rules", [])):
            try:
                rules.append(Rule(tuple(item["principals"]), tuple(item["actions"]),
                                  tuple(item.get("objects", ["*"])), bool(item.get("allow", True))))
            except (KeyError, TypeError):
                raise AuthConfigError(f"{acls}: rules[{i}] needs 'principals' and 'actions' "
                                      "lists") from None
        auth.rules = rules
    return auth


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise AuthConfigError(f"{path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise AuthConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise AuthConfigError(f"{path}: expected a JSON object")
    return data


def _strings(item: Any, keys: tuple[str, str], where: str) -> tuple[str, str]:
    if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and item.get(k)
                                             for k in keys):
        raise AuthConfigError(f"{where} needs non-empty strings {keys[0]!r} and {keys[1]!r}")
    return item[keys[0]], item[keys[1]]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, auth: Auth, insecure: bool) -> None:
    """Secure by default: a non-loopback listener needs authentication or --insecure."""
    if not is_loopback(host) and not auth.enabled and not insecure:
        raise AuthConfigError(
            f"refusing to listen on {host} without authentication: give --credentials "
            "(and --acls), or --insecure to accept anyone on the network")


def basic_header(principal: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{principal}:{secret}".encode()).decode()
