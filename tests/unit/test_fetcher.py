"""The agent's fetcher against a real HTTP server on loopback and real files:
archives, executables, output names, refusals, the cache and its sharing."""

from __future__ import annotations

import asyncio
import gzip
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mesoslite.agent.fetcher import LOG_PREFIX, Fetcher, FetchError
from mesoslite.messages.mesos import CommandURI
from mesoslite.testing.artifacts import ArtifactServer, tar_bytes, zip_bytes
from mesoslite.testing.poll import wait_for, within

SCRIPT = b"#!/bin/sh\necho fetched\n"
FILES = {"app/run.sh": SCRIPT, "app/data.txt": b"data\n"}


@pytest.fixture
async def server() -> AsyncIterator[ArtifactServer]:
    srv = await ArtifactServer().start()
    yield srv
    await srv.stop()


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    path = tmp_path / "sandbox"
    path.mkdir()
    return path


@pytest.fixture
async def fetcher(tmp_path: Path) -> AsyncIterator[Fetcher]:
    f = Fetcher(tmp_path / "cache", cache_size_mb=16, timeout_s=30)
    yield f
    await f.close()


def fetch_log(sandbox: Path) -> list[str]:
    return [line.removeprefix(LOG_PREFIX) for line in
            (sandbox / "stderr").read_text().splitlines() if line.startswith(LOG_PREFIX)]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------- archives

@pytest.mark.parametrize(("name", "archive"), [
    ("app.tar", tar_bytes(FILES, "w", executable=("app/run.sh",))),
    ("app.tar.gz", tar_bytes(FILES, "w:gz", executable=("app/run.sh",))),
    ("app.tgz", tar_bytes(FILES, "w:gz", executable=("app/run.sh",))),
    ("app.tar.bz2", tar_bytes(FILES, "w:bz2", executable=("app/run.sh",))),
    ("app.tbz2", tar_bytes(FILES, "w:bz2", executable=("app/run.sh",))),
    ("app.tar.xz", tar_bytes(FILES, "w:xz", executable=("app/run.sh",))),
    ("app.txz", tar_bytes(FILES, "w:xz", executable=("app/run.sh",))),
    ("app.zip", zip_bytes(FILES, executable=("app/run.sh",))),
])
async def test_archives_are_extracted_into_the_sandbox_beside_the_download(
        server, fetcher, sandbox, name, archive):
    url = server.add(name, archive)
    await fetcher.fetch([CommandURI(value=url)], sandbox)
    assert (sandbox / "app" / "run.sh").read_bytes() == SCRIPT
    assert (sandbox / "app" / "data.txt").read_bytes() == b"data\n"
    assert mode(sandbox / "app" / "run.sh") & 0o111, "the archive's executable bit is kept"
    assert not mode(sandbox / "app" / "data.txt") & 0o111
    assert (sandbox / name).read_bytes() == archive  # not cached: the archive stays too
    [line] = fetch_log(sandbox)
    assert url in line and "not cached" in line and "extracted" in line


async def test_a_gz_file_is_uncompressed(server, fetcher, sandbox):
    url = server.add("notes.txt.gz", gzip.compress(b"plain\n"))
    await fetcher.fetch([CommandURI(value=url)], sandbox)
    assert (sandbox / "notes.txt").read_bytes() == b"plain\n"


async def test_extract_false_keeps_the_archive_as_it_is(server, fetcher, sandbox):
    archive = tar_bytes(FILES)
    url = server.add("app.tgz", archive)
    await fetcher.fetch([CommandURI(value=url, extract=False)], sandbox)
    assert (sandbox / "app.tgz").read_bytes() == archive
    assert not (sandbox / "app").exists()


async def test_executable_sets_the_mode_and_does_not_extract(server, fetcher, sandbox):
    url = server.add("tool.tgz", b"#!/bin/sh\necho not really a tarball\n")
    plain = server.add("notes.txt", b"text\n")
    await fetcher.fetch([CommandURI(value=url, executable=True), CommandURI(value=plain)],
                        sandbox)
    assert mode(sandbox / "tool.tgz") == 0o755
    assert not mode(sandbox / "notes.txt") & 0o111


async def test_output_file_renames_the_download_and_may_name_a_subdirectory(
        server, fetcher, sandbox):
    url = server.add("download", b"data")
    script = server.add("dl/script", SCRIPT)
    await fetcher.fetch([CommandURI(value=script, output_file="bin/run.sh", executable=True),
                         CommandURI(value=url + "?id=7", output_file="data.bin")], sandbox)
    assert (sandbox / "bin" / "run.sh").read_bytes() == SCRIPT
    assert mode(sandbox / "bin" / "run.sh") == 0o755
    assert (sandbox / "data.bin").read_bytes() == b"data"
    assert sorted(p.name for p in sandbox.iterdir()) == ["bin", "data.bin", "stderr"]


async def test_a_url_query_is_not_part_of_the_name(server, fetcher, sandbox):
    url = server.add("app.tgz", tar_bytes(FILES))
    await fetcher.fetch([CommandURI(value=url + "?token=abc")], sandbox)
    assert (sandbox / "app" / "run.sh").read_bytes() == SCRIPT


# ---------------------------------------------------------------- local files

async def test_file_uris_and_absolute_paths_are_copied(fetcher, sandbox, tmp_path):
    source = tmp_path / "artifacts"
    source.mkdir()
    (source / "a.txt").write_bytes(b"a\n")
    (source / "b.zip").write_bytes(zip_bytes({"b/inner.txt": b"b\n"}))
    await fetcher.fetch([CommandURI(value=f"file://{source}/a.txt"),
                         CommandURI(value=f"{source}/b.zip")], sandbox)
    assert (sandbox / "a.txt").read_bytes() == b"a\n"
    assert (sandbox / "b" / "inner.txt").read_bytes() == b"b\n"
    assert (source / "a.txt").exists()


async def test_a_missing_local_file_names_the_path(fetcher, sandbox, tmp_path):
    missing = tmp_path / "nowhere.bin"
    with pytest.raises(FetchError) as err:
        await fetcher.fetch([CommandURI(value=str(missing))], sandbox)
    assert str(missing) in str(err.value)
    assert "No such file" in str(err.value)


# ---------------------------------------------------------------- refusals

@pytest.mark.parametrize(("archive", "name"), [
    (tar_bytes({"../escaped.txt": b"x"}), "up.tgz"),
    (tar_bytes({"/tmp/absolute-from-tar.txt": b"x"}), "abs.tgz"),
    (tar_bytes({"ok.txt": b"x"}, symlinks={"link": "/etc"}), "link.tgz"),
    (tar_bytes({"ok.txt": b"x"}, symlinks={"link": "../.."}), "uplink.tgz"),
    (zip_bytes({"../escaped.txt": b"x"}), "up.zip"),
    (zip_bytes({"/tmp/absolute-from-zip.txt": b"x"}), "abs.zip"),
])
async def test_archive_members_escaping_the_sandbox_refuse_the_whole_archive(
        server, fetcher, sandbox, archive, name):
    url = server.add(name, archive)
    with pytest.raises(FetchError) as err:
        await fetcher.fetch([CommandURI(value=url)], sandbox)
    assert url in str(err.value) and "refusing to extract" in str(err.value)
    assert not (sandbox.parent / "escaped.txt").exists()
    assert not (sandbox / "ok.txt").exists(), "nothing of a refused archive is extracted"
    assert not Path("/tmp/absolute-from-tar.txt").exists()
    assert not Path("/tmp/absolute-from-zip.txt").exists()
    assert fetch_log(sandbox) == [str(err.value)]


async def test_a_damaged_archive_fails_with_the_cause(server, fetcher, sandbox):
    url = server.add("broken.tgz", b"this is no gzip stream")
    with pytest.raises(FetchError, match="cannot extract broken.tgz"):
        await fetcher.fetch([CommandURI(value=url)], sandbox)


@pytest.mark.parametrize("value", ["ftp://example.com/a.tgz", "hdfs://nn/a.jar",
                                   "s3://bucket/a.zip", "relative/path.txt"])
async def test_unsupported_uris_fail_before_anything_is_downloaded(
        server, fetcher, sandbox, value):
    good = server.add("good.txt", b"good")
    with pytest.raises(FetchError) as err:
        await fetcher.fetch([CommandURI(value=good), CommandURI(value=value)], sandbox)
    assert value in str(err.value)
    assert server.requests["/good.txt"] == 0
    assert not (sandbox / "good.txt").exists()


async def test_output_files_leaving_the_sandbox_are_refused(server, fetcher, sandbox):
    url = server.add("x", b"x")
    for bad in ("../x", "/etc/x", "a/../../x"):
        with pytest.raises(FetchError, match="sandbox"):
            await fetcher.fetch([CommandURI(value=url, output_file=bad)], sandbox)
    assert server.requests["/x"] == 0


# ---------------------------------------------------------------- network failures

async def test_http_404_fails_naming_the_uri_and_status(server, fetcher, sandbox):
    url = server.url("missing.tgz")
    with pytest.raises(FetchError) as err:
        await fetcher.fetch([CommandURI(value=url)], sandbox)
    assert str(err.value) == f"Failed to fetch '{url}': HTTP 404 Not Found"
    assert not any(p.name.endswith(".fetching") for p in sandbox.iterdir())


async def test_connection_refused_fails_naming_the_uri(fetcher, sandbox, server):
    url = server.url("gone.tgz")
    await server.stop()  # the port is closed now
    with pytest.raises(FetchError) as err:
        await fetcher.fetch([CommandURI(value=url)], sandbox)
    assert str(err.value) == (f"Failed to fetch '{url}': cannot connect to "
                              f"127.0.0.1:{server.port}: Connection refused")
    assert fetch_log(sandbox) == [str(err.value)]


async def test_a_download_over_the_size_limit_fails(server, sandbox, tmp_path):
    url = server.add("big.bin", b"x" * (2 << 20))
    f = Fetcher(tmp_path / "cache", cache_size_mb=16, max_download_mb=1)
    try:
        with pytest.raises(FetchError, match="larger .* than the agent's limit of 1 MB"):
            await f.fetch([CommandURI(value=url)], sandbox)
    finally:
        await f.close()
    assert not (sandbox / "big.bin").exists()


async def test_a_download_that_takes_too_long_fails_with_the_timeout(server, sandbox, tmp_path):
    url = server.add("slow.bin", b"x")
    server.hold = asyncio.Event()  # never set until the server stops
    f = Fetcher(tmp_path / "cache", cache_size_mb=16, timeout_s=0.2)
    try:
        with pytest.raises(FetchError, match="not complete within 0.2s"):
            await f.fetch([CommandURI(value=url)], sandbox)
    finally:
        await f.close()


# ---------------------------------------------------------------- the cache

async def test_cached_uris_are_downloaded_once_and_extracted_from_the_cache(
        server, fetcher, tmp_path):
    url = server.add("app.tgz", tar_bytes(FILES))
    first, second = tmp_path / "s1", tmp_path / "s2"
    for sandbox in (first, second):
        sandbox.mkdir()
        await fetcher.fetch([CommandURI(value=url, cache=True)], sandbox)
        assert (sandbox / "app" / "run.sh").read_bytes() == SCRIPT
        assert not (sandbox / "app.tgz").exists(), "a cached archive is only extracted"
    assert server.requests["/app.tgz"] == 1
    assert "cache miss" in fetch_log(first)[0]
    assert "cache hit" in fetch_log(second)[0]


async def test_a_cached_executable_is_copied_and_made_executable(server, fetcher, tmp_path):
    url = server.add("tool", SCRIPT)
    for name in ("s1", "s2"):
        sandbox = tmp_path / name
        sandbox.mkdir()
        await fetcher.fetch([CommandURI(value=url, cache=True, executable=True)], sandbox)
        assert mode(sandbox / "tool") == 0o755
    assert server.requests["/tool"] == 1


async def test_the_least_recently_used_entries_are_evicted_to_stay_within_the_limit(
        server, sandbox, tmp_path):
    one_mb = b"x" * (1 << 20)
    urls = {n: server.add(n, one_mb) for n in ("a", "b", "c")}
    f = Fetcher(tmp_path / "cache", cache_size_mb=2.5)
    try:
        for name in ("a", "b", "a", "c"):  # c needs room: b is the least recently used
            await f.fetch([CommandURI(value=urls[name], cache=True)], sandbox)
        assert f.cache.cached() == [urls["a"], urls["c"]]
        assert f.cache.used_bytes == 2 << 20
        assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["c1-a", "c3-c"]
        await f.fetch([CommandURI(value=urls["b"], cache=True)], sandbox)  # again
    finally:
        await f.close()
    assert server.requests == {"/a": 1, "/b": 2, "/c": 1}


async def test_a_download_larger_than_the_cache_is_delivered_but_not_kept(
        server, sandbox, tmp_path):
    url = server.add("big", b"x" * (2 << 20))
    f = Fetcher(tmp_path / "cache", cache_size_mb=1)
    try:
        await f.fetch([CommandURI(value=url, cache=True)], sandbox)
        assert (sandbox / "big").stat().st_size == 2 << 20
        assert f.cache.cached() == [] and f.cache.used_bytes == 0
        assert list((tmp_path / "cache").iterdir()) == []
    finally:
        await f.close()
    assert "too large to keep" in fetch_log(sandbox)[0]


async def test_cache_size_zero_disables_the_cache(server, sandbox, tmp_path):
    url = server.add("x.txt", b"x")
    f = Fetcher(tmp_path / "cache", cache_size_mb=0)
    try:
        await f.fetch([CommandURI(value=url, cache=True)], sandbox)
        await f.fetch([CommandURI(value=url, cache=True)], sandbox)
    finally:
        await f.close()
    assert server.requests["/x.txt"] == 2
    assert "cache disabled" in fetch_log(sandbox)[0]


async def test_a_failed_cached_download_is_not_cached(server, fetcher, sandbox):
    url = server.url("later.txt")
    with pytest.raises(FetchError, match="HTTP 404"):
        await fetcher.fetch([CommandURI(value=url, cache=True)], sandbox)
    server.add("later.txt", b"now here")
    await fetcher.fetch([CommandURI(value=url, cache=True)], sandbox)
    assert (sandbox / "later.txt").read_bytes() == b"now here"
    assert server.requests["/later.txt"] == 2


async def test_the_cache_directory_starts_empty(tmp_path, server, sandbox):
    leftover = tmp_path / "cache" / "c1-old"
    leftover.parent.mkdir()
    leftover.write_bytes(b"from an earlier run")
    f = Fetcher(tmp_path / "cache", cache_size_mb=1)
    try:
        await f.fetch([CommandURI(value=server.add("n", b"new"), cache=True)], sandbox)
    finally:
        await f.close()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["c1-n"]


async def run_ten(fetcher: Fetcher, server: ArtifactServer, tmp_path: Path, url: str,
                  cache: bool) -> list[Path]:
    """Ten fetches of ``url`` at once, into ten sandboxes, the server holding its
    answers until every fetch is in flight."""
    sandboxes = [tmp_path / f"sandbox{i}" for i in range(10)]
    for sandbox in sandboxes:
        sandbox.mkdir()
    server.hold = asyncio.Event()
    fetches = [asyncio.create_task(fetcher.fetch([CommandURI(value=url, cache=cache)], s))
               for s in sandboxes]
    if cache:
        await wait_for(lambda: fetcher.cache.users(url) == 10,
                       message="all ten fetches to wait for the one download")
    else:
        await wait_for(lambda: server.requests["/app.tgz"] == 10,
                       message="all ten downloads to be in flight")
    server.hold.set()
    await within(30, "the ten fetches", asyncio.gather(*fetches))
    return sandboxes


async def test_ten_concurrent_fetches_of_a_cached_uri_share_one_download(
        server, fetcher, tmp_path):
    url = server.add("app.tgz", tar_bytes(FILES, executable=("app/run.sh",)))
    sandboxes = await run_ten(fetcher, server, tmp_path, url, cache=True)
    assert server.requests["/app.tgz"] == 1
    for sandbox in sandboxes:
        assert (sandbox / "app" / "run.sh").read_bytes() == SCRIPT
        assert os.access(sandbox / "app" / "run.sh", os.X_OK)
    assert sorted("miss" in fetch_log(s)[0] for s in sandboxes) == [False] * 9 + [True]


async def test_ten_concurrent_fetches_of_an_uncached_uri_download_ten_times(
        server, fetcher, tmp_path):
    url = server.add("app.tgz", tar_bytes(FILES))
    await run_ten(fetcher, server, tmp_path, url, cache=False)
    assert server.requests["/app.tgz"] == 10


async def test_a_fetch_cancelled_while_sharing_a_download_leaves_it_to_the_others(
        server, fetcher, tmp_path):
    url = server.add("app.tgz", tar_bytes(FILES))
    first, second = tmp_path / "s1", tmp_path / "s2"
    first.mkdir()
    second.mkdir()
    server.hold = asyncio.Event()
    starter = asyncio.create_task(fetcher.fetch([CommandURI(value=url, cache=True)], first))
    other = asyncio.create_task(fetcher.fetch([CommandURI(value=url, cache=True)], second))
    await wait_for(lambda: fetcher.cache.users(url) == 2, message="both fetches to wait")
    starter.cancel()  # e.g. its task was killed during the launch
    await wait_for(lambda: fetcher.cache.users(url) == 1, message="the first to let go")
    server.hold.set()
    await within(30, "the second fetch", other)
    assert (second / "app" / "run.sh").read_bytes() == SCRIPT
    assert server.requests["/app.tgz"] == 1
