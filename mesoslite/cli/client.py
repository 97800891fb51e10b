"""A small synchronous HTTP client for the CLI: JSON in and out, one-line errors.

Every failure becomes a ``click.ClickException`` whose text is one plain line (the
server's ``message`` when it sent one), so commands never show a traceback.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
from typing import Any

import click

from mesoslite.auth import basic_header

TIMEOUT = 10.0


def request(method: str, url: str, body: Any = None, timeout: float = TIMEOUT,
            raw: bool = False) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    auth = authorization_header()
    if auth:
        req.add_header("Authorization", auth)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    req.add_header("Accept", "application/json")
    opener = urllib.request.build_opener(_KeepMethodOnRedirect(),
                                         urllib.request.HTTPSHandler(context=_ssl_context()))
    try:
        with opener.open(req, timeout=timeout) as resp:
            payload = resp.read()
            if raw:
                return payload, dict(resp.headers)
            return json.loads(payload) if payload else None
    except urllib.error.HTTPError as exc:
        raise click.ClickException(_error_line(exc)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise click.ClickException(f"cannot reach {url}: {reason}") from None
    except json.JSONDecodeError:
        raise click.ClickException(f"{url} did not answer with JSON") from None


class _KeepMethodOnRedirect(urllib.request.HTTPRedirectHandler):
    """Follow 307/308 for any method, with its body (what those codes mean): a
    follower master answers a POST with 307 to the leader."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> urllib.request.Request | None:
        if code in (307, 308) and req.get_method() not in ("GET", "HEAD"):
            return urllib.request.Request(newurl, data=req.data, method=req.get_method(),
                                          headers=dict(req.header_items()))
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def authorization_header() -> str | None:
    """Credentials for every request, from the environment: MESOSLITE_TOKEN (bearer)
    or MESOSLITE_PRINCIPAL + MESOSLITE_SECRET (Basic).  Kept out of argv on purpose:
    command lines are visible to every user of the machine."""
    token = os.environ.get("MESOSLITE_TOKEN")
    if token:
        return f"Bearer {token}"
    principal, secret = os.environ.get("MESOSLITE_PRINCIPAL"), os.environ.get("MESOSLITE_SECRET")
    if principal and secret:
        return basic_header(principal, secret)
    return None


def _ssl_context() -> ssl.SSLContext | None:
    ca = os.environ.get("MESOSLITE_CA_FILE")
    return ssl.create_default_context(cafile=ca) if ca else None


def get(url: str, **kwargs: Any) -> Any:
    return request("GET", url, **kwargs)


def _error_line(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
        message = body.get("message") or exc.reason
        details = body.get("details") or []
        if details:
            first = details[0]
            message += f" ({first.get('path')}: {'; '.join(first.get('errors', []))})"
    except (json.JSONDecodeError, AttributeError):
        message = exc.reason
    return f"{exc.code}: {message}"


def master_get(masters: str, path: str) -> Any:
    """GET ``path`` from the first of the comma-separated ``masters`` that answers
    (followers redirect to the leader; urllib follows the 307)."""
    urls = [m.strip().rstrip("/") for m in masters.split(",") if m.strip()]
    last: click.ClickException | None = None
    for url in urls:
        try:
            return get(url + path)
        except click.ClickException as exc:
            last = exc
    raise last or click.ClickException("no master URL given")


def master_post(masters: str, path: str, body: Any) -> Any:
    """POST ``body`` to ``path`` on the first of the comma-separated ``masters`` that
    can be reached (a follower redirects to the leader); the answer's JSON or None.
    A master that answers (even with an error) is the last one asked: a call that
    changes something is sent to one leader only."""
    urls = [m.strip().rstrip("/") for m in masters.split(",") if m.strip()]
    last: click.ClickException | None = None
    for url in urls:
        try:
            return request("POST", url + path, body)
        except click.ClickException as exc:
            if not exc.message.startswith("cannot reach"):
                raise
            last = exc
    raise last or click.ClickException("no master URL given")


def driver_security() -> dict[str, Any]:
    """Driver options (authorization, TLS) for a framework reaching a secured master,
    from the same environment variables as the CLI's own requests."""
    options: dict[str, Any] = {}
    auth = authorization_header()
    if auth:
        options["authorization"] = auth
    context = _ssl_context()
    if context is not None:
        options["ssl_context"] = context
    return options
