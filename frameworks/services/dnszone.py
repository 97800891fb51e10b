"""DNS names for apps and the zone built from their endpoints.  Pure (no I/O).

Names follow Mesos-DNS: an app id's path, reversed, as labels under the domain
(default ``mesoslite.``)::

    /redis-master        A    redis-master.mesoslite.
    /prod/web            A    web.prod.mesoslite.
                         SRV  _web._tcp.prod.mesoslite.          every service port
                         SRV  _http._web._tcp.prod.mesoslite.    the port named "http"
                         SRV  _port0._web._tcp.prod.mesoslite.   the port at index 0
                         A    <task>.web.prod.mesoslite.         one task (SRV targets)

A records list the distinct agent addresses of the app's routable tasks (see
``endpoints``); SRV records one (task, host port) each, priority 0, weight 1, target
the task's own name.  Only routable (running, healthy) tasks appear.  A name that
exists but has no records of the asked type (an app with no healthy task, an SRV name
asked for A, an intermediate label such as ``prod.mesoslite.``) answers NOERROR with
no records; a name under the domain that names nothing answers NXDOMAIN; a name
outside the domain is REFUSED (this is not a recursive resolver).  Both negative
answers carry the zone's SOA, whose minimum -- the negative-caching TTL -- is the same
short TTL as the records.  Names are case-insensitive.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from frameworks.services.endpoints import AppEndpoints

DEFAULT_DOMAIN = "mesoslite."
DEFAULT_TTL = 5
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

NOERROR, NXDOMAIN, REFUSED = "NOERROR", "NXDOMAIN", "REFUSED"


def normalize_domain(domain: str) -> str:
    """``mesoslite`` / ``.mesoslite.`` -> ``mesoslite.`` (lower case, one trailing dot)."""
    labels = [x for x in domain.strip().lower().split(".") if x]
    if not labels or not all(_LABEL.match(x) for x in labels):
        raise ValueError(f"{domain!r} is not a valid DNS domain")
    return ".".join(labels) + "."


def app_labels(app_id: str) -> list[str]:
    """``/prod/web`` -> ``["web", "prod"]``: the id's path reversed, lower case."""
    return [s.lower() for s in reversed(app_id.strip("/").split("/")) if s]


def dns_name(app_id: str, domain: str = DEFAULT_DOMAIN) -> str:
    """The app's A name: ``/prod/web`` -> ``web.prod.mesoslite.``."""
    return ".".join([*app_labels(app_id), domain.rstrip(".")]) + "."


def srv_name(app_id: str, domain: str = DEFAULT_DOMAIN, port: str | None = None,
             protocol: str = "tcp") -> str:
    """The app's SRV name: ``_web._tcp.prod.mesoslite.``; with ``port`` (a port's name
    or ``port<index>``) ``_http._web._tcp.prod.mesoslite.``."""
    first, *rest = app_labels(app_id)
    labels = ([f"_{port.lower()}"] if port else []) + [f"_{first}", f"_{protocol}", *rest]
    return ".".join([*labels, domain.rstrip(".")]) + "."


def task_label(task_id: str) -> str:
    """A DNS label for a task: the unique part of Marathon-style ids
    (``prod_web.<hex>`` -> ``<hex>``), else a digest of the whole id."""
    tail = task_id.rsplit(".", 1)[-1].lower()
    if _LABEL.match(tail) and len(tail) >= 8:
        return tail
    return "t" + hashlib.sha1(task_id.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Record:
    """One resource record: ``rtype`` A, AAAA, SRV, SOA or NS; ``data`` its fields
    (an address; (priority, weight, port, target); (mname, rname, serial, refresh,
    retry, expire, minimum); a name)."""

    name: str
    rtype: str
    ttl: int
    data: object


@dataclass(frozen=True)
class Answer:
    rcode: str
    answers: tuple[Record, ...] = ()
    authority: tuple[Record, ...] = ()
    additional: tuple[Record, ...] = ()


@dataclass
class Zone:
    """Every name of the domain and its records; ``lookup`` answers one question."""

    domain: str = DEFAULT_DOMAIN
    ttl: int = DEFAULT_TTL
    serial: int = 1
    records: dict[str, list[Record]] = field(default_factory=lambda: defaultdict(list))
    names: set[str] = field(default_factory=set)

    @property
    def soa(self) -> Record:
        return Record(self.domain, "SOA", self.ttl, (
            f"ns.{self.domain}", f"hostmaster.{self.domain}", self.serial,
            60, 30, 86400, self.ttl))

    def add(self, record: Record) -> None:
        if record not in self.records[record.name]:
            self.records[record.name].append(record)
        self.declare(record.name)

    def declare(self, name: str) -> None:
        """``name`` exists (even with no records), and so does every label above it."""
        labels = name.split(".")
        for i in range(len(labels)):
            suffix = ".".join(labels[i:])
            if not suffix or not suffix.endswith(self.domain):
                break
            self.names.add(suffix)

    def lookup(self, qname: str, qtype: str) -> Answer:
        name = qname.lower().rstrip(".") + "."
        if name != self.domain and not name.endswith("." + self.domain):
            return Answer(REFUSED)
        if name == self.domain:
            apex = {"SOA": [self.soa], "NS": [Record(self.domain, "NS", self.ttl,
                                                     f"ns.{self.domain}")]}
            found = apex.get(qtype, []) if qtype != "ANY" else apex["SOA"] + apex["NS"]
            return Answer(NOERROR, tuple(found), () if found else (self.soa,))
        if name not in self.names:
            return Answer(NXDOMAIN, authority=(self.soa,))
        records = [r for r in self.records.get(name, []) if qtype in ("ANY", r.rtype)]
        if not records:
            return Answer(NOERROR, authority=(self.soa,))
        extra: list[Record] = []
        for r in records:
            if r.rtype == "SRV":
                target = r.data[3]  # type: ignore[index]
                extra += [a for a in self.records.get(target, []) if a not in extra]
        return Answer(NOERROR, tuple(records), (), tuple(extra))


def address_type(host: str) -> str | None:
    """A, AAAA, or None for a host that is not an IP address (a bare hostname)."""
    try:
        return "A" if ipaddress.ip_address(host).version == 4 else "AAAA"
    except ValueError:
        return None


def build_zone(apps: Mapping[str, AppEndpoints], domain: str = DEFAULT_DOMAIN,
               ttl: int = DEFAULT_TTL, serial: int = 1) -> Zone:
    """The zone for ``apps``' routable endpoints (see the module docstring).  When two
    app ids map to one name (ids with dots: ``/a.b`` and ``/b/a``), the first by id
    keeps it."""
    zone = Zone(normalize_domain(domain), ttl, serial)
    taken: dict[str, str] = {}
    for app_id in sorted(apps):
        app = apps[app_id]
        base = dns_name(app_id, zone.domain)
        if taken.setdefault(base, app_id) != app_id:
            continue
        zone.declare(base)
        for host in app.hosts:
            rtype = address_type(host)
            if rtype is not None:
                zone.add(Record(base, rtype, ttl, host))
        for port in app.ports:
            selectors = [None, f"port{port.index}"]
            if port.name and _LABEL.match(port.name.lower()):
                selectors.append(port.name.lower())
            for protocol in port.protocol.lower().split(","):
                names = [srv_name(app_id, zone.domain, s, protocol) for s in selectors]
                for name in names:
                    zone.declare(name)
                for e in port.endpoints:
                    rtype = address_type(e.host)
                    if rtype is None:
                        continue
                    target = f"{task_label(e.task_id)}.{base}"
                    zone.add(Record(target, rtype, ttl, e.host))
                    for name in names:
                        zone.add(Record(name, "SRV", ttl, (0, 1, e.port, target)))
    return zone
