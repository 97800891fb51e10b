"""Test "hosts" in network namespaces, and links between them that tests can cut.

A ``NetLab`` is one private network on this machine::

    root namespace                               namespace "mesoslite-<tag>-a1"
    master on GATEWAY (10.231.X.1) -- bridge -- outer veth ==== inner veth  10.231.X.11
                                             \\- outer veth ==== inner veth  10.231.X.12
                                                             namespace "mesoslite-<tag>-a2"

Each ``Host`` is a network namespace joined to the bridge by a veth pair; the bridge
holds the gateway address, so a process in the root namespace listening on
``lab.gateway`` is reachable from every host.  Processes in the root namespace reach
the gateway through the loopback device (it is a local address), so no cut below
ever affects them: only traffic between the root namespace and a host crosses a
veth pair.

Cuts (silent, like a failure somewhere along the wire: the endpoints get no error,
their packets just vanish and TCP retransmits; only once a neighbour (ARP) entry
expires during a long cut do new sends fail with "no route to host"):

* ``partition(host)``: both directions dropped (a ``blackhole`` qdisc on the egress of
  both veth ends);
* ``partition(host, Direction.TO_HOST)`` / ``Direction.FROM_HOST``: one direction only;
  the other still passes (the blackhole on one end's egress);
* ``link_down(host)`` / ``link_up(host)``: the bridge's veth end administratively
  down (a pulled cable: the host's veth loses carrier);
* ``heal(host)``: removes every cut of ``host``;
* ``forget_connections(host)``: the root namespace drops its TCP connections with
  ``host`` (what its kernel does ~100 s into a partition), leaving them half-open;
* ``flap(host, schedule)``: a coroutine toggling a cut on a schedule, to run on the
  test's event loop next to what the test is doing.

Example (a test; ``agent_process`` and friends from ``mesoslite.testing.processes``)::

    with net_lab() as lab:
        a1 = lab.add_host("a1")
        master = hosted(master_process(work, None, "--host", lab.gateway, "--insecure"),
                        lab.gateway)
        await master.start()
        agent = hosted(agent_process(master.url, work_a1, resources, 5051,
                                     "--host", a1.address, "--insecure"), a1.address, a1)
        await agent.start()
        lab.partition(a1)                      # ... assert on the master's reaction
        lab.heal(a1)
        await lab.flap(a1, flap_schedule(total=5.0))
        # stop the processes; leaving the block kills what is left inside a1

Programs run inside a host with ``host.command(...)``, which prefixes
``nsenter --net=/run/netns/NAME --``.  Not ``ip netns exec``: that one also unshares
the mount namespace and remounts ``/sys``, hiding the cgroup hierarchies mounted
below it (which the agent's process containerizer needs).

Cleanup is the context manager's contract: ``with net_lab() as lab`` removes, on any
exit (a failing test included), every namespace, veth and bridge it made, after
SIGKILLing the processes still inside its namespaces (by pid; all of them were started
by the test).  A lab also records what it made under ``/run/mesoslite-netlab``; a new
lab first removes the network objects of labs whose process has died (a run killed by
``kill -9``), leaving any processes of theirs alone.

Needs root, ``ip``/``tc``/``ss`` (iproute2) and ``nsenter`` (util-linux), and the kernel's
veth, bridge and ``sch_blackhole`` support.  Addresses are taken from 10.231.0.0/16,
one /24 per lab, chosen under a file lock so concurrent labs never share one.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import fcntl
import functools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mesoslite.testing.processes import Process

SUBNET_PREFIX = "10.231"
REGISTRY = Path("/run/mesoslite-netlab")
_LOCK = REGISTRY / ".lock"
_NETNS_DIR = Path("/run/netns")


class NetLabError(RuntimeError):
    """A command building or changing the lab failed; the text has its stderr."""


class Direction(enum.Enum):
    """Which traffic a partition drops, seen from the root namespace."""

    BOTH = "both"
    TO_HOST = "to-host"  # root namespace -> host dropped (e.g. master -> agent)
    FROM_HOST = "from-host"  # host -> root namespace dropped (e.g. agent -> master)


@functools.cache
def unavailable_reason() -> str | None:
    """Why labs cannot be built here (None when they can): not root, a tool missing,
    or the kernel refusing a namespace, veth, bridge or blackhole qdisc (found by
    building and removing a one-host lab, once per process)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "tc", "ss", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool!r} is not installed"
    try:
        with net_lab() as lab:
            host = lab.add_host("probe")
            lab.partition(host)
            lab.heal(host)
    except NetLabError as exc:
        return str(exc)
    return None


def _run(argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=30,
                            check=False)
    if check and result.returncode != 0:
        raise NetLabError(f"{' '.join(argv)}: exit {result.returncode}: "
                          f"{result.stderr.strip() or result.stdout.strip()}")
    return result


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


@dataclass
class Host:
    """One test host: a network namespace with one address on the lab's bridge."""

    name: str
    netns: str
    address: str
    outer: str  # the veth end in the root namespace (a bridge port)
    inner: str  # the veth end inside the namespace
    blackholed: set[str] = field(default_factory=set)  # veth ends whose egress drops
    link_is_down: bool = False

    @property
    def netns_path(self) -> Path:
        return _NETNS_DIR / self.netns

    def command(self, *argv: str) -> list[str]:
        """``argv`` to run inside this host's network namespace (and only that one:
        mounts, pids and cgroups stay the caller's)."""
        return ["nsenter", f"--net={self.netns_path}", "--", *argv]

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the host to completion; output captured as text.
        Blocking: from a coroutine use ``asyncio.to_thread``."""
        return _run(self.command(*argv), check=check)

    def pids(self) -> list[int]:
        """Pids of every process whose network namespace is this host's."""
        try:
            target = os.stat(self.netns_path)
        except FileNotFoundError:
            return []
        found = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                st = os.stat(f"/proc/{entry.name}/ns/net")
            except OSError:
                continue  # gone meanwhile, or a kernel thread
            if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
                found.append(int(entry.name))
        return sorted(found)


@dataclass
class FlapRecord:
    """What ``NetLab.flap`` did: the outages it made, as monotonic (cut, healed) times."""

    outages: list[tuple[float, float]] = field(default_factory=list)

    @property
    def longest(self) -> float:
        return max((end - start for start, end in self.outages), default=0.0)


def flap_schedule(total: float, low: float = 0.3, high: float = 1.0, seed: int = 0
                  ) -> list[tuple[float, float]]:
    """(down, up) pairs, each drawn uniformly from [low, high] seconds, until their
    sum reaches ``total``; the same seed gives the same schedule."""
    rng = random.Random(seed)
    schedule: list[tuple[float, float]] = []
    elapsed = 0.0
    while elapsed < total:
        down, up = rng.uniform(low, high), rng.uniform(low, high)
        schedule.append((down, up))
        elapsed += down + up
    return schedule


class NetLab:
    """A bridge with a gateway address in the root namespace, and hosts joined to it.

    Build it with ``net_lab()``; every method that changes the network is blocking
    (short ``ip``/``tc`` calls) except ``flap``.
    """

    def __init__(self) -> None:
        self.tag = ""
        self.bridge = ""
        self.subnet = ""
        self.gateway = ""
        self.hosts: dict[str, Host] = {}
        self._undo: list[tuple[str, Callable[[], object]]] = []
        self._record = REGISTRY / "unused"
        self._closed = False

    # ---------------------------------------------------------------- building

    def _open(self) -> None:
        REGISTRY.mkdir(parents=True, exist_ok=True)
        with open(_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            sweep_stale_labs()
            while True:  # a tag no other lab holds: it names our links and namespaces
                self.tag = f"{os.getpid() % 10000:04d}{random.randrange(256):02x}"
                self._record = REGISTRY / f"{self.tag}.json"
                if not self._record.exists():
                    break
            self.bridge = f"mlb{self.tag}"
            third = self._free_subnet()
            self.subnet = f"{SUBNET_PREFIX}.{third}.0/24"
            self.gateway = f"{SUBNET_PREFIX}.{third}.1"
            self._save()  # claims the subnet before the lock is released
            self._undo.append(("record", lambda: self._record.unlink(missing_ok=True)))
            _run(["ip", "link", "add", self.bridge, "type", "bridge"])
            self._undo.append(("bridge", lambda: _run(["ip", "link", "del", self.bridge],
                                                      check=False)))
            _run(["ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge])
            _run(["ip", "link", "set", self.bridge, "up"])

    def _free_subnet(self) -> int:
        used = set(re.findall(rf"{re.escape(SUBNET_PREFIX)}\.(\d+)\.",
                              _run(["ip", "-4", "-o", "addr", "show"]).stdout
                              + _run(["ip", "-4", "route", "show"]).stdout))
        for record in REGISTRY.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                used.add(json.loads(record.read_text())["subnet"].split(".")[2])
        for third in range(1, 255):
            if str(third) not in used:
                return third
        raise NetLabError(f"no free /24 left in {SUBNET_PREFIX}.0.0/16")

    def _save(self) -> None:
        record = {"pid": os.getpid(), "subnet": self.subnet, "bridge": self.bridge,
                  "netns": [h.netns for h in self.hosts.values()],
                  "links": [h.outer for h in self.hosts.values()]}
        self._record.write_text(json.dumps(record))

    def add_host(self, name: str) -> Host:
        """A new namespace ``name`` (letters, digits, '-'), with lo up and the next
        address of the lab's /24 on a veth to the bridge; returns it."""
        if not re.fullmatch(r"[a-z0-9-]{1,20}", name) or name in self.hosts:
            raise ValueError(f"bad or duplicate host name {name!r}")
        index = len(self.hosts) + 1
        if index > 200:
            raise NetLabError("at most 200 hosts per lab")
        host = Host(name=name, netns=f"mesoslite-{self.tag}-{name}",
                    address=f"{self.gateway.rsplit('.', 1)[0]}.{10 + index}",
                    outer=f"mlo{self.tag}{index}", inner=f"mli{self.tag}{index}")
        self.hosts[name] = host
        self._save()
        _run(["ip", "netns", "add", host.netns])
        self._undo.append((f"netns {host.netns}", lambda: self._remove_host(host)))
        _run(["ip", "link", "add", host.outer, "type", "veth", "peer", "name", host.inner,
              "netns", host.netns])
        _run(["ip", "link", "set", host.outer, "master", self.bridge])
        _run(["ip", "link", "set", host.outer, "up"])
        ns = ["ip", "-n", host.netns]
        _run([*ns, "addr", "add", f"{host.address}/24", "dev", host.inner])
        _run([*ns, "link", "set", host.inner, "up"])
        _run([*ns, "link", "set", "lo", "up"])
        return host

    # ---------------------------------------------------------------- cuts

    def partition(self, host: Host, direction: Direction = Direction.BOTH) -> None:
        """Drop ``host``'s traffic in ``direction`` (adds to cuts already in place)."""
        if direction in (Direction.BOTH, Direction.TO_HOST):
            self._blackhole(host, "outer")
        if direction in (Direction.BOTH, Direction.FROM_HOST):
            self._blackhole(host, "inner")

    def _blackhole(self, host: Host, end: str) -> None:
        if end in host.blackholed:
            return
        _run([*self._tc(host, end), "qdisc", "replace", "dev", getattr(host, end), "root",
              "blackhole"])
        host.blackholed.add(end)

    def _tc(self, host: Host, end: str) -> list[str]:
        return ["tc"] if end == "outer" else ["tc", "-n", host.netns]

    def link_down(self, host: Host) -> None:
        """Pull ``host``'s cable: its bridge port down, its veth without carrier."""
        _run(["ip", "link", "set", host.outer, "down"])
        host.link_is_down = True

    def link_up(self, host: Host) -> None:
        _run(["ip", "link", "set", host.outer, "up"])
        host.link_is_down = False

    def heal(self, host: Host) -> None:
        """Remove every cut of ``host``: traffic passes both ways again."""
        for end in sorted(host.blackholed):
            _run([*self._tc(host, end), "qdisc", "del", "dev", getattr(host, end), "root"])
            host.blackholed.discard(end)
        if host.link_is_down:
            self.link_up(host)

    def forget_connections(self, host: Host) -> None:
        """Destroy every TCP socket of the root namespace whose peer is ``host``
        (``ss -K``): what the root side's kernel does by itself once it gives up
        retransmitting into a partition (a closed socket still sending its FIN gives up
        after ~100 s with Linux defaults, ``tcp_orphan_retries``), without waiting for
        it.  Any reset this sends is lost if ``host`` is cut off; ``host``'s own end of
        each connection is left as it is (half-open)."""
        _run(["ss", "-K", "-t", "dst", host.address])

    async def flap(self, host: Host, schedule: Sequence[tuple[float, float]],
                   how: str = "link", direction: Direction = Direction.BOTH,
                   on_toggle: Callable[[bool], object] | None = None) -> FlapRecord:
        """For each (down, up) in ``schedule``: cut ``host`` for ``down`` seconds, then
        heal it for ``up`` seconds.  ``how`` is "link" (``link_down``) or "drop"
        (``partition`` in ``direction``).  ``on_toggle(cut)`` is called right after
        each change (True: just cut), so a test can time its own stimuli to the link.
        Runs on the caller's event loop (the ``ip``/``tc`` calls in a thread); the host
        is healed when it returns, also when cancelled.  Returns the outages as they
        happened."""
        if how not in ("link", "drop"):
            raise ValueError(f"how must be 'link' or 'drop', not {how!r}")
        record = FlapRecord()
        cut = ((lambda: self.link_down(host)) if how == "link"
               else (lambda: self.partition(host, direction)))
        try:
            for down, up in schedule:
                await asyncio.to_thread(cut)
                started = time.monotonic()
                if on_toggle is not None:
                    on_toggle(True)
                await asyncio.sleep(down)  # the stimulus: the outage lasts this long
                await asyncio.to_thread(self.heal, host)
                record.outages.append((started, time.monotonic()))
                if on_toggle is not None:
                    on_toggle(False)
                await asyncio.sleep(up)
        finally:
            self.heal(host)
        return record

    # ---------------------------------------------------------------- teardown

    def kill_processes(self, host: Host, timeout: float = 5.0) -> list[int]:
        """SIGKILL every process inside ``host`` (by pid) and wait until they are gone;
        returns the pids killed."""
        killed = host.pids()
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while any(_pid_alive(p) for p in killed) and time.monotonic() < deadline:
            time.sleep(0.02)
        return killed

    def _remove_host(self, host: Host) -> None:
        self.kill_processes(host)
        _run(["ip", "link", "del", host.outer], check=False)  # takes the inner end too
        _run(["ip", "netns", "del", host.netns], check=False)

    def close(self) -> None:
        """Undo everything, newest first; every step runs even if an earlier one
        failed; raises NetLabError naming the steps that failed.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        failures = []
        while self._undo:
            what, undo = self._undo.pop()
            try:
                undo()
            except Exception as exc:  # noqa: BLE001 - keep cleaning, report at the end
                failures.append(f"{what}: {exc}")
        if failures:
            raise NetLabError("lab cleanup failed: " + "; ".join(failures))


def sweep_stale_labs() -> list[str]:
    """Remove the network objects of labs whose owning process has died; returns the
    tags removed.  Processes left inside their namespaces are not touched."""
    removed = []
    for record_path in REGISTRY.glob("*.json"):
        try:
            record = json.loads(record_path.read_text())
            pid = int(record["pid"])
        except (OSError, ValueError, KeyError):
            continue
        if _pid_alive(pid):
            continue
        for link in [*record.get("links", []), record.get("bridge")]:
            if link:
                _run(["ip", "link", "del", link], check=False)
        for netns in record.get("netns", []):
            _run(["ip", "netns", "del", netns], check=False)
        record_path.unlink(missing_ok=True)
        removed.append(record_path.stem)
    return removed


@contextlib.contextmanager
def net_lab() -> Iterator[NetLab]:
    """A new ``NetLab``; on exit (normal or not) its processes are killed and its
    namespaces, veths and bridge removed."""
    if os.geteuid() != 0:
        raise NetLabError("network namespaces need root")
    lab = NetLab()
    try:
        lab._open()
        yield lab
    finally:
        lab.close()


@dataclass
class HostedProcess(Process):
    """A ``Process`` reached at ``address`` (not 127.0.0.1), optionally started inside
    a host's namespace (``prefix`` = ``host.command()``)."""

    address: str = "127.0.0.1"
    prefix: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    def _spawn(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", "mesoslite.cli.main", *self.args],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
                start_new_session=True,
            )


def hosted(process: Process, address: str, host: Host | None = None) -> HostedProcess:
    """``process`` (from ``master_process``/``agent_process``) reached at ``address``
    and, given ``host``, run inside it.  The caller passes the matching ``--host``."""
    return HostedProcess(args=process.args, log=process.log, port=process.port,
                         env=dict(process.env), address=address,
                         prefix=host.command() if host is not None else [])
