"""The agent's secret files on a real tmpfs: layout, permissions, read-only, and the
sweep after an agent restart (tasks that ended while it was down)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from mesoslite.agent import secret_files
from mesoslite.agent.containerizers.base import LaunchError
from mesoslite.messages.agent import SecretFile, SecretVolumeValues
from mesoslite.messages.mesos import Volume, VolumeMode, VolumeSource

SECRET = VolumeSource(type="SECRET")


def volumes() -> list[Volume]:
    return [Volume(container_path="data", host_path="plain-dir"),
            Volume(container_path="pw", mode=VolumeMode.RO, source=SECRET),
            Volume(container_path="conf/all", mode=VolumeMode.RO, source=SECRET)]


def values() -> list[SecretVolumeValues]:
    return [SecretVolumeValues(index=1, files=[SecretFile(name="", data=b"s3cret")]),
            SecretVolumeValues(index=2, files=[SecretFile(name="a", data=b"1"),
                                               SecretFile(name="b", data=b"\x00\xff")])]


def test_process_task_files_are_read_only_and_swept(tmp_path: Path) -> None:
    sandbox = tmp_path / "sandboxes" / "fw" / "task"
    sandbox.mkdir(parents=True)
    left = secret_files.setup(sandbox, volumes(), values(), "process", os.geteuid(),
                              os.getegid())
    try:
        assert [v.container_path for v in left] == ["data"]  # others are links now
        assert (sandbox / "pw").read_bytes() == b"s3cret"
        assert (sandbox / "conf" / "all" / "b").read_bytes() == b"\x00\xff"
        assert oct((sandbox / "pw").stat().st_mode & 0o777) == "0o400"
        assert secret_files.mounted_under(tmp_path) == [sandbox]
        with pytest.raises(OSError) as err:
            (sandbox / ".secrets" / "new").write_text("x")
        assert err.value.errno in (errno.EROFS, errno.EACCES)
        # After a restart: the task is not among the live ones, its tmpfs goes.
        assert secret_files.sweep(tmp_path / "sandboxes", keep=[]) == [sandbox]
        assert secret_files.mounted_under(tmp_path) == []
        assert not (sandbox / "pw").exists()
    finally:
        secret_files.release(sandbox)


def test_docker_tasks_get_read_only_binds_and_live_tasks_are_kept(tmp_path: Path) -> None:
    sandbox = tmp_path / "sandboxes" / "fw" / "task"
    sandbox.mkdir(parents=True)
    vols = [Volume(container_path="/run/secrets/pw", source=SECRET),
            Volume(container_path="rel", source=SECRET)]
    vals = [SecretVolumeValues(index=0, files=[SecretFile(name="", data=b"x")]),
            SecretVolumeValues(index=1, files=[SecretFile(name="", data=b"y")])]
    try:
        out = secret_files.setup(sandbox, vols, vals, "docker", 0, 0)
        assert [(v.container_path, v.host_path, v.mode) for v in out] == [
            ("/run/secrets/pw", ".secrets/0", VolumeMode.RO),
            ("/mnt/mesos/sandbox/rel", ".secrets/1", VolumeMode.RO)]
        assert secret_files.sweep(tmp_path / "sandboxes", keep=[sandbox]) == []
        assert secret_files.mounted_under(tmp_path) == [sandbox]
    finally:
        secret_files.release(sandbox)
    assert secret_files.mounted_under(tmp_path) == []


def test_process_tasks_need_relative_paths(tmp_path: Path) -> None:
    vols = [Volume(container_path="/etc/pw", source=SECRET)]
    vals = [SecretVolumeValues(index=0, files=[SecretFile(name="", data=b"x")])]
    with pytest.raises(LaunchError, match="use a relative container path"):
        secret_files.setup(tmp_path, vols, vals, "process", 0, 0)
    assert "<redacted>" in repr(vals[0].files[0])  # values never in a repr
