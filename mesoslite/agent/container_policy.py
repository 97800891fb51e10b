"""The agent's container hardening policy (pure: no engine calls).

Every DOCKER container an agent starts is hardened unless its framework's principal
has been granted an exception by the agent's operator:

* **no privileged containers** (``DockerInfo.privileged``); exception:
  ``--allow-privileged-principal NAME``;
* **no host network** (``DockerInfo.network = HOST``); exception:
  ``--allow-host-network-principal NAME``;
* **capabilities**: all are dropped (``CapDrop: ALL``) and only ``DEFAULT_CAPABILITIES``
  are added back (``--container-capabilities`` changes that set); a task may drop more
  (docker parameter ``cap-drop``) but may add one (``cap-add``) only when its principal
  was granted it with ``--allow-capability NAME=CAP[,CAP...]`` (``ALL``: any);
* **no-new-privileges** always (setuid binaries and file capabilities cannot raise a
  process' privileges);
* **read-only root filesystem** when the agent runs with ``--read-only-rootfs`` (a
  task may then not ask for ``read-only=false``; the sandbox and volumes stay writable).

Host-path volumes are checked against ``--allowed-host-paths`` before this (see
``agent/volumes.py``).  A privileged container gets none of the above restrictions
(it would hold every capability anyway).  A request the policy does not allow raises
``PolicyError`` (a ``LaunchError``): the task fails at once with a sentence naming
what was refused and the flag that would allow it; nothing is silently downgraded.

Principals are the framework's ``FrameworkInfo.principal`` as the master passed it
(the master checks it against the authenticated principal when authentication is
on; without it a framework may claim any principal, so grant exceptions only on
clusters whose master authenticates frameworks).  Names are shell-style patterns as
in ACLs (``ops-*``; ``*`` also matches frameworks without a principal).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mesoslite.agent.containerizers.base import LaunchError

# Docker's default set minus NET_RAW (raw sockets: ARP and ICMP spoofing on the
# bridge), MKNOD (device nodes), AUDIT_WRITE, SETFCAP (file capabilities) and
# SYS_CHROOT: what ordinary services need (own files, switch user, bind ports < 1024,
# signal their children), nothing that reaches past the container.
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETGID",
    "SETPCAP", "SETUID",
)
# Linux capabilities by name (capabilities(7)); anything else is a typo.
KNOWN_CAPABILITIES = frozenset({
    "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF",
    "CHECKPOINT_RESTORE", "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID",
    "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE", "LINUX_IMMUTABLE", "MAC_ADMIN",
    "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW",
    "PERFMON", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYSLOG", "SYS_ADMIN",
    "SYS_BOOT", "SYS_CHROOT", "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE",
    "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "WAKE_ALARM",
})
ALL = "ALL"
NO_NEW_PRIVILEGES = "no-new-privileges"


class PolicyError(LaunchError):
    """The task asked for more than the agent's policy allows its principal."""


def capability(name: str) -> str:
    """``cap_net_raw`` / ``NET_RAW`` -> ``NET_RAW``; ValueError for unknown names."""
    cap = name.strip().upper()
    cap = cap.removeprefix("CAP_")
    if cap != ALL and cap not in KNOWN_CAPABILITIES:
        raise ValueError(f"unknown capability '{name}'")
    return cap


@dataclass(frozen=True)
class ContainerPolicy:
    """What the agent allows in containers; see the module docstring.  Principal
    fields hold patterns; ``capability_grants`` maps a pattern to the capabilities
    (or ``ALL``) its tasks may add."""

    capabilities: tuple[str, ...] = DEFAULT_CAPABILITIES
    read_only_rootfs: bool = False
    privileged_principals: tuple[str, ...] = ()
    host_network_principals: tuple[str, ...] = ()
    capability_grants: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def local_dev(cls) -> ContainerPolicy:
        """In-process clusters (``mesoslite up``, the test clusters): hardened, but
        host networking is allowed to every principal, because it is the default
        networking of Marathon apps (and batch steps may ask for it; one machine,
        loopback-only listeners).  A real agent (``mesoslite agent``) uses ``ContainerPolicy()``."""
        return cls(host_network_principals=("*",))

    def may_run_privileged(self, principal: str | None) -> bool:
        return _matches(self.privileged_principals, principal)

    def may_use_host_network(self, principal: str | None) -> bool:
        return _matches(self.host_network_principals, principal)

    def grantable(self, principal: str | None) -> frozenset[str]:
        """The capabilities ``principal``'s tasks may add (may contain ``ALL``)."""
        out: set[str] = set()
        for pattern, caps in self.capability_grants:
            if _matches((pattern,), principal):
                out.update(caps)
        return frozenset(out)


@dataclass
class Request:
    """What a task asked for that the policy decides on."""

    privileged: bool = False
    host_network: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    read_only: bool | None = None  # None: not asked


def who(principal: str | None) -> str:
    return f"principal '{principal}'" if principal else "frameworks without a principal"


def harden(policy: ContainerPolicy, principal: str | None, request: Request
           ) -> dict[str, Any]:
    """Host-config entries (``create_host_config`` keywords) enforcing ``policy`` for
    ``request``; ``PolicyError`` names what is refused and the flag that allows it."""
    if request.privileged:
        if not policy.may_run_privileged(principal):
            raise PolicyError(f"Privileged containers are not allowed for {who(principal)} "
                              "on this agent (the operator may allow it with "
                              "--allow-privileged-principal)")
        return {"privileged": True, **_read_only(policy, request)}
    if request.host_network and not policy.may_use_host_network(principal):
        raise PolicyError(f"Host networking is not allowed for {who(principal)} on this "
                          "agent: use BRIDGE (container/bridge) networking, or the "
                          "operator may allow it with --allow-host-network-principal")
    added = _added(policy, principal, request.cap_add)
    dropped = set(request.cap_drop)
    if ALL in dropped:
        caps: list[str] = []
    else:
        caps = [c for c in dict.fromkeys([*policy.capabilities, *added]) if c not in dropped]
    out: dict[str, Any] = {"privileged": False, "cap_drop": [ALL],
                           "security_opt": [NO_NEW_PRIVILEGES], **_read_only(policy, request)}
    if ALL in added and ALL not in dropped:
        out["cap_drop"] = sorted(dropped)  # everything the engine grants, less the dropped
        out["cap_add"] = [ALL]
    elif caps:
        out["cap_add"] = caps
    return out


def _added(policy: ContainerPolicy, principal: str | None, asked: list[str]) -> list[str]:
    if not asked:
        return []
    granted = policy.grantable(principal)
    refused = [c for c in asked if ALL not in granted and c not in granted]
    if refused:
        raise PolicyError(f"Adding capabilities {', '.join(refused)} is not allowed for "
                          f"{who(principal)} on this agent (the operator may grant them "
                          "with --allow-capability PRINCIPAL=CAP)")
    return asked


def _read_only(policy: ContainerPolicy, request: Request) -> dict[str, Any]:
    if policy.read_only_rootfs:
        if request.read_only is False:
            raise PolicyError("This agent runs containers with a read-only root filesystem "
                              "(--read-only-rootfs): 'read-only=false' is not allowed; "
                              "write to the sandbox, a volume or a tmpfs")
        return {"read_only": True}
    return {"read_only": True} if request.read_only else {}


def _matches(patterns: Iterable[str], principal: str | None) -> bool:
    name = principal or ""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def parse_grant(text: str) -> tuple[str, tuple[str, ...]]:
    """``NAME=CAP[,CAP...]`` (an ``--allow-capability`` value); ValueError if bad."""
    name, sep, caps = text.partition("=")
    if not sep or not name.strip() or not caps.strip():
        raise ValueError(f"'{text}': expected PRINCIPAL=CAP[,CAP...]")
    return name.strip(), tuple(capability(c) for c in caps.split(",") if c.strip())


def build_policy(capabilities: str | None = None, read_only_rootfs: bool = False,
                 privileged: Iterable[str] = (), host_network: Iterable[str] = (),
                 grants: Iterable[str] = ()) -> ContainerPolicy:
    """The policy from the agent's flags (``capabilities``: a comma list, "" for none,
    None for the default set).  ValueError names a bad value."""
    caps = DEFAULT_CAPABILITIES
    if capabilities is not None:
        caps = tuple(capability(c) for c in capabilities.split(",") if c.strip())
        if ALL in caps:
            raise ValueError("--container-capabilities cannot be ALL; grant it to a "
                             "principal with --allow-capability")
    return ContainerPolicy(
        capabilities=caps, read_only_rootfs=read_only_rootfs,
        privileged_principals=tuple(privileged), host_network_principals=tuple(host_network),
        capability_grants=tuple(parse_grant(g) for g in grants))
