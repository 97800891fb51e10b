"""What the fetcher takes in ``CommandInfo.uris`` (``mesoslite.uris``): the rules the
master, the frameworks and the agent share."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesoslite.messages.mesos import CommandURI
from mesoslite.uris import (
    Source,
    UriError,
    archive_kind,
    output_error,
    sandbox_name,
    source_of,
    validate_uris,
)


@pytest.mark.parametrize(("value", "source"), [
    ("http://h/app.tgz", Source("http", "http://h/app.tgz")),
    ("HTTPS://h:8443/a/b.zip?x=1", Source("http", "HTTPS://h:8443/a/b.zip?x=1")),
    ("file:///opt/app.jar", Source("file", "/opt/app.jar")),
    ("file://localhost/opt/app.jar", Source("file", "/opt/app.jar")),
    ("  /opt/app.jar", Source("file", "/opt/app.jar")),  # leading blanks, as Mesos trims
])
def test_supported_sources(value, source):
    assert source_of(value) == source


@pytest.mark.parametrize(("value", "words"), [
    ("ftp://h/a.tgz", "unsupported scheme 'ftp://'"),
    ("ftps://h/a.tgz", "unsupported scheme 'ftps://'"),
    ("hdfs://nn:8020/a.jar", "unsupported scheme 'hdfs://'"),
    ("s3://bucket/a.zip", "unsupported scheme 's3://'"),
    ("app.tgz", "relative path"),
    ("file://relative/x", "absolute path"),
    ("http:///nohost/x", "names no host"),
    ("", "must not be empty"),
])
def test_unsupported_sources_say_why(value, words):
    with pytest.raises(UriError, match=words):
        source_of(value)


@pytest.mark.parametrize(("uri", "name"), [
    (CommandURI(value="http://h/dl/app-1.0.tgz?token=x#frag"), "app-1.0.tgz"),
    (CommandURI(value="/srv/a/b.sh"), "b.sh"),
    (CommandURI(value="http://h/download?id=1", output_file="app.zip"), "app.zip"),
    (CommandURI(value="http://h/x", output_file="lib/./x.jar"), "lib/x.jar"),
])
def test_sandbox_names(uri, name):
    assert sandbox_name(uri) == name


def test_a_url_without_a_file_name_needs_output_file():
    with pytest.raises(UriError, match="set output_file"):
        sandbox_name(CommandURI(value="http://h/"))
    assert sandbox_name(CommandURI(value="http://h/", output_file="index.html")) == "index.html"


def test_validate_uris_names_the_field():
    ok = CommandURI(value="http://h/a")
    assert validate_uris([ok], "command.uris") is None
    assert validate_uris([ok, CommandURI(value="s3://b/k")], "command.uris").startswith(
        "'command.uris[1].value': unsupported scheme 's3://'")
    assert validate_uris([CommandURI(value="http://h/a", output_file="/etc/passwd")],
                         "executor.command.uris").startswith(
        "'executor.command.uris[0].output_file': '/etc/passwd' is absolute")
    assert "('..')" in validate_uris([CommandURI(value="http://h/a", output_file="a/../../b")],
                                     "command.uris")


@pytest.mark.parametrize(("name", "kind"), [
    ("a.tar", "tar"), ("a.tar.gz", "tar"), ("a.tgz", "tar"), ("a.tar.bz2", "tar"),
    ("a.tbz2", "tar"), ("a.tar.xz", "tar"), ("a.txz", "tar"), ("a.zip", "zip"),
    ("a.gz", "gz"), ("a.jar", None), ("a.TGZ", None), ("tgz", None),
])
def test_archives_are_known_by_their_extension_as_in_mesos(name, kind):
    assert archive_kind(name) == kind


@given(st.text(alphabet="ab./", max_size=12))
def test_an_accepted_output_file_always_stays_inside_the_sandbox(output_file):
    if output_error(output_file) is None:
        joined = posixpath.normpath(posixpath.join("/sandbox", output_file))
        assert joined.startswith("/sandbox/")
        assert joined != "/sandbox/"
