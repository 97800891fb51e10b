"""Per-container cgroups for the process containerizer (cgroup v1 or v2).

Layout: ``<hierarchy>/<root>/<agent_id>/<container_id>`` (v1: one such directory per
controller mount; v2: one directory in the unified hierarchy), so two agents on one
host never share or clean up each other's cgroups.

Standard library only: ``supervisor.py`` imports this file by path and runs without
site-packages, so nothing here may import mesoslite or third-party code.
"""

from __future__ import annotations

import errno
import math
import os
import signal

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time

if TYPE_CHECKING:
    from typing import Any

# No ``logging``/``re``/``typing`` at import: the per-task supervisor imports this
# module, and those imports would be most of its start-up time.


class _LazyLog:
    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        import logging

        return getattr(logging.getLogger(__name__), name)


log = _LazyLog()

V1_CONTROLLERS = ("memory", "cpu", "cpuacct")
V2_CONTROLLERS = ("memory", "cpu")
CFS_PERIOD_US = 100_000
MIN_CFS_QUOTA_US = 1_000  # the kernel rejects quotas below 1 ms
CPU_SHARES_PER_CPU = 1024  # as Mesos
MIN_CPU_SHARES = 2
UNLIMITED = "max"


def safe_name(value: str) -> str:
    """A single, harmless path component for an id (no '/', never '.' or '..')."""
    name = "".join(c if c.isascii() and (c.isalnum() or c in "_.@-") else "_"
                   for c in value) or "_"
    return "_" + name if name in (".", "..") else name


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _write(path: str, value: str) -> None:
    """One write(2) call: cgroup files reject values split over several writes."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _keyed(text: str | None) -> dict[str, int]:
    """Parse ``key value`` lines (memory.stat, cpu.stat, memory.events, oom_control)."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _int(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.lstrip("-").isdigit() else None


class Cgroup:
    """One container's cgroup.  ``dirs`` maps controller -> directory (v1) or has the
    single key ``"unified"`` (v2).  Serialisable with ``to_record``/``from_record``."""

    def __init__(self, version: int, dirs: dict[str, str]) -> None:
        self.version = version
        self.dirs = dict(dirs)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Cgroup:
        return cls(int(record["version"]), dict(record["dirs"]))

    def to_record(self) -> dict[str, Any]:
        return {"version": self.version, "dirs": dict(self.dirs)}

    # ------------------------------------------------------------ membership

    def _dir(self, controller: str) -> str | None:
        return self.dirs.get("unified") if self.version == 2 else self.dirs.get(controller)

    def _unique_dirs(self) -> list[str]:
        # v1 controllers may be co-mounted ("cpu,cpuacct"): one directory, several keys.
        return list(dict.fromkeys(self.dirs.values()))

    def procs_files(self) -> list[str]:
        return [os.path.join(d, "cgroup.procs") for d in self._unique_dirs()]

    def join(self, pid: int) -> None:
        """Move ``pid`` (and, for children forked later, their descendants) in."""
        for path in self.procs_files():
            _write(path, str(pid))

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self._unique_dirs())

    def pids(self) -> set[int]:
        pids: set[int] = set()
        for path in self.procs_files():
            pids.update(int(p) for p in (_read(path) or "").split() if p.isdigit())
        return pids

    def kill_all(self, sig: int = signal.SIGKILL) -> int:
        """Signal every process inside; returns how many were signalled.

        v2 ``cgroup.kill`` is atomic against forks; elsewhere callers loop until empty.
        """
        pids = self.pids()
        if self.version == 2 and sig == signal.SIGKILL and pids:
            try:
                _write(os.path.join(self.dirs["unified"], "cgroup.kill"), "1")
                return len(pids)
            except OSError:
                pass  # kernel < 5.14: fall back to signalling one by one
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return len(pids)

    def remove(self) -> bool:
        """rmdir every directory; True when none is left (EBUSY while processes remain)."""
        gone = True
        for d in self._unique_dirs():
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    log.warning("cannot remove cgroup %s: %s", d, e)
                gone = False
        return gone

    # ------------------------------------------------------------ limits

    def set_limits(self, cpus: float, mem_bytes: int, cpu_limit: float | None = None
                   ) -> list[str]:
        """Apply the limits the hierarchy supports; returns what could not be applied.
        ``cpu_limit`` (TaskInfo.limits): the CFS quota's cpus when not ``cpus``
        (``math.inf``: no quota); the shares always follow ``cpus``."""
        skipped: list[str] = []
        if mem_bytes > 0 and not self._set_memory(mem_bytes):
            skipped.append("memory")
        if cpus > 0 and not self._set_cpu(cpus, cpus if cpu_limit is None else cpu_limit):
            skipped.append("cpu")
        return skipped

    def _set_memory(self, mem_bytes: int) -> bool:
        d = self._dir("memory")
        if self.version == 1:
            if d is None:
                return False
            _write(os.path.join(d, "memory.limit_in_bytes"), str(mem_bytes))
            memsw = os.path.join(d, "memory.memsw.limit_in_bytes")
            if os.path.exists(memsw):  # only with swap accounting; equal = no swap use
                try:
                    _write(memsw, str(mem_bytes))
                except OSError as e:
                    log.debug("memsw limit not set: %s", e)
            return True
        if d is None or not os.path.exists(os.path.join(d, "memory.max")):
            return False
        _write(os.path.join(d, "memory.max"), str(mem_bytes))
        swap = os.path.join(d, "memory.swap.max")
        if os.path.exists(swap):
            _write(swap, "0")
        return True

    def _set_cpu(self, cpus: float, quota_cpus: float) -> bool:
        d = self._dir("cpu")
        unlimited = math.isinf(quota_cpus)
        quota = 0 if unlimited else max(MIN_CFS_QUOTA_US, int(quota_cpus * CFS_PERIOD_US))
        shares = max(MIN_CPU_SHARES, int(cpus * CPU_SHARES_PER_CPU))
        if self.version == 1:
            if d is None:
                return False
            _write(os.path.join(d, "cpu.shares"), str(shares))
            _write(os.path.join(d, "cpu.cfs_period_us"), str(CFS_PERIOD_US))
            _write(os.path.join(d, "cpu.cfs_quota_us"), "-1" if unlimited else str(quota))
            return True
        if d is None or not os.path.exists(os.path.join(d, "cpu.max")):
            return False
        # cgroup v2 weight from v1 shares, the formula systemd and runc use.
        weight = 1 + ((shares - 2) * 9999) // 262142
        _write(os.path.join(d, "cpu.weight"), str(max(1, min(10000, weight))))
        _write(os.path.join(d, "cpu.max"),
               f"{UNLIMITED if unlimited else quota} {CFS_PERIOD_US}")
        return True

    def read_limits(self) -> dict[str, Any]:
        """The limits in force: mem_limit_bytes (None = unlimited), cfs quota/period."""
        out: dict[str, Any] = {}
        mem, cpu = self._dir("memory"), self._dir("cpu")
        if self.version == 1:
            if mem:
                limit = _int(_read(os.path.join(mem, "memory.limit_in_bytes")))
                # v1 spells "unlimited" as a page-rounded 2**63-1.
                out["mem_limit_bytes"] = None if limit is None or limit >= 2**62 else limit
            if cpu:
                out["cfs_quota_us"] = _int(_read(os.path.join(cpu, "cpu.cfs_quota_us")))
                out["cfs_period_us"] = _int(_read(os.path.join(cpu, "cpu.cfs_period_us")))
            return out
        if mem and (text := _read(os.path.join(mem, "memory.max"))) is not None:
            out["mem_limit_bytes"] = None if text.strip() == UNLIMITED else _int(text)
        if cpu and (text := _read(os.path.join(cpu, "cpu.max"))) is not None:
            quota, _, period = text.partition(" ")
            out["cfs_quota_us"] = -1 if quota == UNLIMITED else _int(quota)
            out["cfs_period_us"] = _int(period)
        return out

    # ------------------------------------------------------------ OOM

    def oom_kill_count(self) -> int | None:
        """OOM kills inside this cgroup so far; None when the kernel does not say."""
        d = self._dir("memory")
        if d is None:
            return None
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        return _keyed(_read(os.path.join(d, name))).get("oom_kill")

    def memory_failcnt(self) -> int:
        d = self._dir("memory")
        if d is None or self.version != 1:
            return 0
        return _int(_read(os.path.join(d, "memory.failcnt"))) or 0

    def max_memory_bytes(self) -> int | None:
        d = self._dir("memory")
        if d is None:
            return None
        name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        return _int(_read(os.path.join(d, name)))

    def open_oom_notifier(self) -> tuple[int, int] | None:
        """(fd, poll mask) that becomes ready when the cgroup hits OOM, or None.

        v1: an eventfd registered through cgroup.event_control on memory.oom_control;
        v2: memory.events itself, which signals POLLPRI on every change.
        """
        import select  # local: only the supervisor needs it

        d = self._dir("memory")
        if d is None:
            return None
        try:
            if self.version == 1:
                efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
                cfd = os.open(os.path.join(d, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
                try:
                    _write(os.path.join(d, "cgroup.event_control"), f"{efd} {cfd}")
                except OSError:
                    os.close(efd)
                    raise
                finally:
                    os.close(cfd)
                return efd, select.POLLIN
            fd = os.open(os.path.join(d, "memory.events"), os.O_RDONLY | os.O_CLOEXEC)
            os.read(fd, 4096)  # arms kernfs change notification
            return fd, select.POLLPRI
        except (OSError, AttributeError) as e:
            log.debug("no OOM notification for %s: %s", d, e)
            return None

    def ack_oom_notifier(self, fd: int) -> bool:
        """Consume a notification (so the fd waits for the next one); True when the
        cgroup hit OOM.  v1 notifies only on OOM, and before the kernel's kill shows
        in oom_kill; v2 notifies on every memory.events change, so check its counters.
        """
        try:
            if self.version == 1:
                return os.eventfd_read(fd) > 0
            os.lseek(fd, 0, os.SEEK_SET)
            events = _keyed(os.read(fd, 4096).decode())
        except (BlockingIOError, OSError):
            return False
        return events.get("oom", 0) > 0 or events.get("oom_kill", 0) > 0

    # ------------------------------------------------------------ accounting

    def usage(self) -> dict[str, Any]:
        """Cumulative CPU seconds and memory figures the hierarchy provides.

        Keys (each only when known): cpu_seconds, cpus_user_time_secs,
        cpus_system_time_secs, cpus_nr_throttled, mem_rss_bytes, mem_total_bytes,
        mem_max_bytes, mem_limit_bytes.
        """
        return self._usage_v1() if self.version == 1 else self._usage_v2()

    def _usage_v1(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if acct := self._dir("cpuacct"):
            if (ns := _int(_read(os.path.join(acct, "cpuacct.usage")))) is not None:
                out["cpu_seconds"] = ns / 1e9
            stat = _keyed(_read(os.path.join(acct, "cpuacct.stat")))
            hz = os.sysconf("SC_CLK_TCK")
            if "user" in stat:
                out["cpus_user_time_secs"] = stat["user"] / hz
                out["cpus_system_time_secs"] = stat.get("system", 0) / hz
        cpu = self._dir("cpu")
        stat = _keyed(_read(os.path.join(cpu, "cpu.stat"))) if cpu else {}
        if "nr_throttled" in stat:
            out["cpus_nr_throttled"] = stat["nr_throttled"]
        if mem := self._dir("memory"):
            stat = _keyed(_read(os.path.join(mem, "memory.stat")))
            if "total_rss" in stat:
                out["mem_rss_bytes"] = stat["total_rss"]
            total = _int(_read(os.path.join(mem, "memory.usage_in_bytes")))
            if total is not None:
                out["mem_total_bytes"] = total
            out["mem_max_bytes"] = self.max_memory_bytes()
            out.update({k: v for k, v in self.read_limits().items() if k == "mem_limit_bytes"})
        return out

    def _usage_v2(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        d = self.dirs["unified"]
        stat = _keyed(_read(os.path.join(d, "cpu.stat")))  # core file: always present
        if "usage_usec" in stat:
            out["cpu_seconds"] = stat["usage_usec"] / 1e6
            out["cpus_user_time_secs"] = stat.get("user_usec", 0) / 1e6
            out["cpus_system_time_secs"] = stat.get("system_usec", 0) / 1e6
        if "nr_throttled" in stat:
            out["cpus_nr_throttled"] = stat["nr_throttled"]
        if os.path.exists(os.path.join(d, "memory.current")):
            out["mem_total_bytes"] = _int(_read(os.path.join(d, "memory.current")))
            out["mem_rss_bytes"] = _keyed(_read(os.path.join(d, "memory.stat"))).get("anon")
            out["mem_max_bytes"] = self.max_memory_bytes()
            out["mem_limit_bytes"] = self.read_limits().get("mem_limit_bytes")
        return out
