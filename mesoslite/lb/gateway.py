"""The address Docker containers reach this host at: the default bridge's gateway.

Docker resolves ``--add-host NAME:host-gateway`` to the default bridge's address
(``docker0``, usually 172.17.0.1), so the proxy listens there for containers.  The
address comes from the engine (``network inspect bridge``: IPAM gateway, else the
bridge interface's own address); None when there is no engine or no bridge.
"""

from __future__ import annotations

import fcntl
import ipaddress
import logging
import socket
import struct

log = logging.getLogger(__name__)

SIOCGIFADDR = 0x8915


def interface_address(name: str) -> str | None:
    """The IPv4 address of network interface ``name`` (None if it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), SIOCGIFADDR,
                                 struct.pack("256s", name.encode()[:15]))
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])


def docker_bridge_gateway(timeout: float = 3.0) -> str | None:
    """The default bridge's gateway address (see the module docstring)."""
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        try:
            attrs = client.api.inspect_network("bridge")
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - no engine, no bridge: no address
        log.debug("no docker bridge: %s", exc)
        return None
    for config in (attrs.get("IPAM") or {}).get("Config") or []:
        gateway = config.get("Gateway")
        if gateway:
            try:
                return str(ipaddress.ip_address(gateway))
            except ValueError:
                continue
    name = (attrs.get("Options") or {}).get("com.docker.network.bridge.name", "docker0")
    return interface_address(name)
