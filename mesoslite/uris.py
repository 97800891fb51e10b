"""What the agent's fetcher accepts in ``CommandInfo.uris`` (pure; docs/fetcher.md).

One place for the rules, used by the master (a bad URI is a TASK_ERROR at ACCEPT),
the bundled frameworks (a 422 naming the field) and the agent's fetcher itself:

* ``value``: ``http://`` or ``https://`` URL, ``file:///absolute/path`` or a bare
  absolute path (a file on the agent, as in Mesos).  Other schemes (``ftp://``,
  ``hdfs://``, ``s3://``: Mesos hands those to a Hadoop client) are refused, and so
  are relative paths (Mesos resolves them against ``--frameworks_home``, which the
  agent does not have).
* the name in the sandbox: ``output_file`` if set (a relative path without ``..``:
  it may name a subdirectory), else the last segment of the URL's path (the query
  is not part of it, unlike in Mesos, so ``.../app.tgz?token=x`` stays an archive).
* archives are recognised by that name's extension, as Mesos does.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from urllib.parse import urlsplit

from mesoslite.messages.mesos import CommandURI

SUPPORTED = "http://, https://, file:///path or an absolute path"
NET_SCHEMES = ("http", "https")
# Longest first: ``.tar.gz`` must win over ``.gz``.
ARCHIVES = ((".tar.gz", "tar"), (".tar.bz2", "tar"), (".tar.xz", "tar"), (".tgz", "tar"),
            (".tbz2", "tar"), (".txz", "tar"), (".tar", "tar"), (".zip", "zip"), (".gz", "gz"))


class UriError(ValueError):
    """A URI the fetcher cannot fetch; the text says why (without the field's name)."""


@dataclass(frozen=True)
class Source:
    """Where a URI's content comes from: a URL (``kind`` "http") or a local path."""

    kind: str  # "http" or "file"
    location: str  # the URL, or the absolute path on the agent


def source_of(value: str) -> Source:
    """The source of ``value``; raises ``UriError`` for what the fetcher cannot fetch."""
    text = value.lstrip()
    if not text:
        raise UriError("must not be empty")
    if "\x00" in text:
        raise UriError("must not contain NUL characters")
    scheme, sep, rest = text.partition("://")
    if not sep:
        if not text.startswith("/"):
            raise UriError(f"'{text}' is a relative path; give {SUPPORTED}")
        return Source("file", text)
    scheme = scheme.lower()
    if scheme == "file":
        path = rest.removeprefix("localhost")
        if not path.startswith("/"):
            raise UriError(f"'{text}': a file URI names an absolute path on the agent "
                           "(file:///path)")
        return Source("file", path)
    if scheme not in NET_SCHEMES:
        raise UriError(f"unsupported scheme '{scheme}://': the fetcher takes {SUPPORTED}")
    try:
        host = urlsplit(text).hostname
    except ValueError as exc:
        raise UriError(f"'{text}' is not a valid URL: {exc}") from None
    if not host:
        raise UriError(f"'{text}' names no host")
    return Source("http", text)


def output_error(output_file: str) -> str | None:
    """Why ``output_file`` cannot name a file in the sandbox (None: it can)."""
    if not output_file:
        return "must not be empty"
    if "\x00" in output_file:
        return "must not contain NUL characters"
    if output_file.startswith("/"):
        return f"'{output_file}' is absolute; it must be a path inside the sandbox"
    parts = output_file.split("/")
    if ".." in parts:
        return f"'{output_file}' leaves the sandbox ('..')"
    if parts[-1] in ("", "."):
        return f"'{output_file}' names a directory, not a file"
    return None


def sandbox_name(uri: CommandURI) -> str:
    """The path, relative to the sandbox, the fetched file gets; raises ``UriError``."""
    if uri.output_file is not None:
        error = output_error(uri.output_file)
        if error:
            raise UriError(error)
        return posixpath.normpath(uri.output_file)
    source = source_of(uri.value)
    path = urlsplit(source.location).path if source.kind == "http" else source.location
    name = path.rsplit("/", 1)[-1]
    if name in ("", ".", ".."):
        raise UriError(f"'{uri.value}' has no file name; set output_file")
    return name


def uri_error(uri: CommandURI) -> tuple[str, str] | None:
    """The first problem of one URI as ``(field, message)``, the field being ``value``
    or ``output_file``; None when the fetcher can fetch it."""
    try:
        source_of(uri.value)
    except UriError as exc:
        return "value", str(exc)
    if uri.output_file is not None:
        error = output_error(uri.output_file)
        return ("output_file", error) if error else None
    try:
        sandbox_name(uri)
    except UriError as exc:
        return "value", str(exc)
    return None


def validate_uris(uris: list[CommandURI], where: str) -> str | None:
    """The first problem of ``uris`` as a sentence naming the field
    (``'command.uris[1].value': unsupported scheme ...``), or None."""
    for i, uri in enumerate(uris):
        if (problem := uri_error(uri)) is not None:
            return f"'{where}[{i}].{problem[0]}': {problem[1]}"
    return None


def archive_kind(name: str) -> str | None:
    """``tar``, ``zip`` or ``gz`` (one compressed file) by ``name``'s extension."""
    for suffix, kind in ARCHIVES:
        if name.endswith(suffix):
            return kind
    return None
