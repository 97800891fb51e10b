"""Pure parts of service discovery and load balancing: endpoints and their diffs,
DNS names and zone answers (also on the wire), the environment and host entries
tasks get, balancing strategies, the proxy's routing table and SSE parsing."""

from __future__ import annotations

from collections import Counter

import msgspec
import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from frameworks.common.taskinfo import DockerSpec, TaskSpec
from frameworks.services.dns import respond
from frameworks.services.dnszone import (
    build_zone,
    dns_name,
    normalize_domain,
    srv_name,
    task_label,
)
from frameworks.services.endpoints import (
    EndpointsTracker,
    all_endpoints,
    app_endpoints,
    strategy_of,
)
from frameworks.services.linking import (
    dependency_env,
    env_prefix,
    host_aliases,
    linked_spec,
)
from frameworks.services.model import VersionInfo
from frameworks.services.state import ServicesState
from frameworks.services.tasks import TaskRecord
from frameworks.services.validation import Invalid, parse_app
from mesoslite.lb.strategies import LeastConnections, RoundRobin, make_strategy
from mesoslite.lb.table import Backend, Route, RouteTable, diff_routes, routes_of_app
from mesoslite.lb.watcher import SseParser

V = "2024-01-01T00:00:00.000Z"


def app(body: dict):
    parsed, _ = parse_app(body)
    return msgspec.structs.replace(parsed, version=V,
                                   version_info=VersionInfo(V, V))


def web(**extra: object):
    return app({"id": "/prod/web", "cmd": "x", "portDefinitions": [
        {"port": 10001, "name": "http"}, {"port": 10002}], **extra})


def task(tid: str, app_id: str = "/prod/web", ports=(31001, 31002), address="10.0.0.1",
         state="TASK_RUNNING", healthy: bool | None = None, **extra) -> TaskRecord:
    return TaskRecord(id=tid, app_id=app_id, version=V, config_version=V, agent_id="a1",
                      hostname="agent1", staged_at=0.0, address=address, ports=list(ports),
                      state=state, healthy=healthy, **extra)


# ---------------------------------------------------------------- endpoints


def test_endpoints_per_service_port_only_routable_tasks() -> None:
    a = web(healthChecks=[{"protocol": "TCP", "portIndex": 0}])
    tasks = [task("prod_web.aaaaaaaa1", healthy=True),
             task("prod_web.aaaaaaaa2", healthy=False, address="10.0.0.2"),
             task("prod_web.aaaaaaaa3", healthy=None, address="10.0.0.3"),
             task("prod_web.aaaaaaaa4", healthy=True, kill_requested_at=5.0),
             task("prod_web.aaaaaaaa5", state="TASK_STAGING", healthy=None)]
    got = app_endpoints(a, tasks)
    assert [p.service_port for p in got.ports] == [10001, 10002]
    assert [p.name for p in got.ports] == ["http", None]
    assert [(e.task_id, e.host, e.port) for e in got.ports[1].endpoints] == [
        ("prod_web.aaaaaaaa1", "10.0.0.1", 31002)]
    assert got.hosts == ("10.0.0.1",)
    everything = app_endpoints(a, tasks, include_all=True)
    assert len(everything.ports[0].endpoints) == 5
    assert sum(e.routable for e in everything.ports[0].endpoints) == 1


def test_without_health_checks_running_tasks_are_routable() -> None:
    got = app_endpoints(web(), [task("t.11111111", healthy=None)])
    assert len(got.ports[0].endpoints) == 1


def test_readiness_holds_back_new_tasks_only_during_a_deployment() -> None:
    a = web(readinessChecks=[{"portName": "http"}])
    t = task("t.11111111")
    assert app_endpoints(a, [t], deploying=True).ports[0].endpoints == ()
    assert len(app_endpoints(a, [t], deploying=False).ports[0].endpoints) == 1
    ready = msgspec.structs.replace(t, ready=True)
    assert len(app_endpoints(a, [ready], deploying=True).ports[0].endpoints) == 1


def test_bridge_mappings_without_host_port_have_no_endpoints() -> None:
    a = app({"id": "/db", "container": {"type": "DOCKER", "docker": {"image": "i"},
             "portMappings": [{"containerPort": 1, "servicePort": 11000},
                              {"containerPort": 2, "hostPort": 0, "servicePort": 11001}]},
             "networks": [{"mode": "container/bridge"}]})
    a.container.port_mappings[0].host_port = None  # validation defaults it; stored apps may not
    got = app_endpoints(a, [task("db.22222222", app_id="/db", ports=[31005])])
    assert got.ports[0].endpoints == ()
    assert got.ports[1].endpoints[0].port == 31005


def test_strategy_label() -> None:
    assert strategy_of(web()) == "round-robin"
    assert strategy_of(web(labels={"MESOSLITE_LB_STRATEGY": "LEAST_CONNECTIONS"})) \
        == "least-connections"
    # An unknown strategy is refused when the app is submitted (422, the label's path).
    with pytest.raises(Invalid) as refused:
        web(labels={"MESOSLITE_LB_STRATEGY": "random"})
    [(path, _)] = refused.value.details
    assert path == "/labels/MESOSLITE_LB_STRATEGY"


def test_tracker_reports_each_change_once_with_growing_generations() -> None:
    a = web()
    tracker = EndpointsTracker("e1")
    one = {"/prod/web": app_endpoints(a, [task("t.11111111")])}
    [first] = tracker.update(one)
    assert first.added == ("t.11111111",) and first.generation == 1
    assert tracker.update(one) == []  # nothing changed: no event
    two = {"/prod/web": app_endpoints(a, [task("t.11111111"), task("t.22222222")])}
    [second] = tracker.update(two)
    assert second.added == ("t.22222222",) and second.removed == ()
    [gone] = tracker.update({})
    assert gone.now is None and set(gone.removed) == {"t.11111111", "t.22222222"}
    assert gone.generation == 3
    event = tracker.event(gone)
    assert event["app"] is None and event["epoch"] == "e1"


def test_all_endpoints_groups_tasks_by_app() -> None:
    apps = {"/prod/web": web(), "/other": app({"id": "/other", "cmd": "x",
                                               "portDefinitions": [{"port": 10009}]})}
    got = all_endpoints(apps, [task("t.11111111"), task("o.11111111", app_id="/other",
                                                        ports=[31009])])
    assert list(got) == ["/other", "/prod/web"]
    assert got["/other"].ports[0].endpoints[0].port == 31009


# ---------------------------------------------------------------- DNS names and zone


def test_names_reverse_the_app_path() -> None:
    assert dns_name("/prod/web") == "web.prod.mesoslite."
    assert dns_name("/redis-master", "cluster.local.") == "redis-master.cluster.local."
    assert srv_name("/prod/web") == "_web._tcp.prod.mesoslite."
    assert srv_name("/prod/web", port="http") == "_http._web._tcp.prod.mesoslite."
    assert normalize_domain(".Mesoslite") == "mesoslite."
    with pytest.raises(ValueError):
        normalize_domain("bad_domain")
    assert task_label("prod_web.0123456789abcdef") == "0123456789abcdef"
    assert task_label("odd id").startswith("t")


def _zone(tasks: list[TaskRecord], a=None):
    a = a or web()
    return build_zone({a.id: app_endpoints(a, tasks)}, ttl=5)


def test_zone_answers_a_srv_and_negative_answers() -> None:
    zone = _zone([task("prod_web.aaaaaaaa1"), task("prod_web.aaaaaaaa2", address="10.0.0.2"),
                  task("prod_web.aaaaaaaa3", address="10.0.0.2", ports=(31003, 31004))])
    a = zone.lookup("WEB.prod.mesoslite", "A")
    assert a.rcode == "NOERROR" and sorted(r.data for r in a.answers) == ["10.0.0.1", "10.0.0.2"]
    assert all(r.ttl == 5 for r in a.answers)
    srv = zone.lookup("_web._tcp.prod.mesoslite.", "SRV")
    assert sorted(r.data[2] for r in srv.answers) == [31001, 31001, 31002, 31002, 31003, 31004]
    assert {r.name for r in srv.additional} == {r.data[3] for r in srv.answers}
    http = zone.lookup("_http._web._tcp.prod.mesoslite.", "SRV")
    assert sorted(r.data[2] for r in http.answers) == [31001, 31001, 31003]
    assert sorted(r.data[2] for r in zone.lookup("_port1._web._tcp.prod.mesoslite.",
                                                 "SRV").answers) == [31002, 31002, 31004]
    target = srv.answers[0].data[3]
    assert zone.lookup(target, "A").answers[0].rtype == "A"
    nodata = zone.lookup("web.prod.mesoslite.", "TXT")
    assert nodata.rcode == "NOERROR" and not nodata.answers and nodata.authority[0].rtype == "SOA"
    assert zone.lookup("prod.mesoslite.", "A").rcode == "NOERROR"  # an empty non-terminal
    missing = zone.lookup("db.prod.mesoslite.", "A")
    assert missing.rcode == "NXDOMAIN" and missing.authority[0].data[-1] == 5
    assert zone.lookup("example.com.", "A").rcode == "REFUSED"
    assert zone.lookup("mesoslite.", "SOA").answers[0].rtype == "SOA"
    assert len(zone.lookup("web.prod.mesoslite.", "ANY").answers) == 2


def test_an_app_with_no_healthy_task_exists_but_has_no_records() -> None:
    zone = _zone([task("prod_web.aaaaaaaa1", state="TASK_STAGING")])
    for name, qtype in (("web.prod.mesoslite.", "A"), ("_web._tcp.prod.mesoslite.", "SRV")):
        answer = zone.lookup(name, qtype)
        assert answer.rcode == "NOERROR" and answer.answers == ()


def test_ipv6_agents_get_aaaa_and_hostnames_get_nothing() -> None:
    zone = _zone([task("prod_web.aaaaaaaa1", address="fd00::1"),
                  task("prod_web.aaaaaaaa2", address="agent-without-ip")])
    assert [r.data for r in zone.lookup("web.prod.mesoslite.", "AAAA").answers] == ["fd00::1"]
    assert zone.lookup("web.prod.mesoslite.", "A").answers == ()


def test_wire_answers_with_dnslib() -> None:
    zone = _zone([task("prod_web.aaaaaaaa1")])
    query = DNSRecord.question("web.prod.mesoslite.", "A")
    reply = DNSRecord.parse(respond(zone, query.pack()))
    assert reply.header.id == query.header.id and reply.header.aa == 1
    assert [str(r.rdata) for r in reply.rr] == ["10.0.0.1"] and reply.rr[0].ttl == 5
    srv = DNSRecord.parse(respond(zone, DNSRecord.question("_web._tcp.prod.mesoslite.",
                                                           "SRV").pack()))
    assert sorted(r.rdata.port for r in srv.rr) == [31001, 31002]
    assert all(r.rtype == QTYPE.A for r in srv.ar)
    nx = DNSRecord.parse(respond(zone, DNSRecord.question("nope.mesoslite.", "A").pack()))
    assert nx.header.rcode == RCODE.NXDOMAIN and nx.auth[0].rtype == QTYPE.SOA
    odd = DNSRecord.parse(respond(zone, DNSRecord.question("web.prod.mesoslite.",
                                                           "TYPE65000").pack()))
    assert odd.header.rcode == RCODE.NOERROR and not odd.rr
    garbage = DNSRecord.parse(respond(zone, b"\x12\x34garbage"))
    assert garbage.header.id == 0x1234 and garbage.header.rcode == RCODE.FORMERR


def test_large_udp_answers_are_truncated() -> None:
    tasks = [task(f"prod_web.{i:08x}{i:08x}", address=f"10.0.{i // 250}.{i % 250 + 1}")
             for i in range(60)]
    zone = _zone(tasks)
    packet = DNSRecord.question("_web._tcp.prod.mesoslite.", "SRV").pack()
    udp = DNSRecord.parse(respond(zone, packet, limit=65535))
    assert udp.header.tc == 1 and not udp.rr
    tcp = DNSRecord.parse(respond(zone, packet))
    assert tcp.header.tc == 0 and len(tcp.rr) == 120


# ---------------------------------------------------------------- env and host entries


def redis():
    return app({"id": "/redis-master", "container": {"type": "DOCKER", "docker": {"image": "i"},
                "portMappings": [{"containerPort": 6379, "hostPort": 0, "servicePort": 6379,
                                  "name": "redis"}]},
                "networks": [{"mode": "container/bridge"}]})


def test_env_names() -> None:
    assert env_prefix("/redis-master") == "REDIS_MASTER"
    assert env_prefix("/prod/db.main") == "PROD_DB_MAIN"


def test_dependency_env_for_process_and_docker_tasks() -> None:
    client = app({"id": "/client", "cmd": "x", "dependencies": ["/redis-master", "/missing"]})
    apps = {"/redis-master": redis()}
    eps = {"/redis-master": app_endpoints(redis(), [task("r.11111111", "/redis-master",
                                                         ports=[31007])])}
    env = dependency_env(client, apps, eps, "127.0.0.1")
    assert env == {"REDIS_MASTER_HOST": "127.0.0.1", "REDIS_MASTER_SERVICE_HOST": "127.0.0.1",
                   "REDIS_MASTER_PORT": "6379", "REDIS_MASTER_SERVICE_PORT": "6379",
                   "REDIS_MASTER_PORTS": "6379", "REDIS_MASTER_PORT_REDIS": "6379",
                   "REDIS_MASTER_ENDPOINTS": "10.0.0.1:31007"}
    assert dependency_env(client, apps, eps, None)["REDIS_MASTER_HOST"] == "redis-master"


def test_host_aliases_name_every_served_app_and_same_group_short_names() -> None:
    apps = {"/redis-master": redis(), "/prod/web": web(), "/web": app(
        {"id": "/web", "cmd": "x", "portDefinitions": [{"port": 10020}]}),
        "/worker": app({"id": "/worker", "cmd": "x"})}
    top = host_aliases(apps, "/client")
    assert top == {"redis-master": "/redis-master", "redis-master.mesoslite": "/redis-master",
                   "web.prod": "/prod/web", "web.prod.mesoslite": "/prod/web",
                   "web": "/web", "web.mesoslite": "/web"}
    assert host_aliases(apps, "/prod/api")["web"] == "/prod/web"  # same group wins


def test_linked_spec_adds_env_under_the_tasks_own_and_host_entries_first() -> None:
    state = ServicesState()
    state.apps["/redis-master"] = redis()
    client = app({"id": "/client", "cmd": "x", "dependencies": ["/redis-master"],
                  "env": {"REDIS_MASTER_PORT": "1"}})
    spec = TaskSpec(name="client", cmd="x", env={"REDIS_MASTER_PORT": "1"})
    out = linked_spec(spec, client, state)
    assert out.env["REDIS_MASTER_PORT"] == "1" and out.env["REDIS_MASTER_HOST"] == "127.0.0.1"
    docker = TaskSpec(name="client", cmd="x", docker=DockerSpec(
        image="i", parameters=[("add-host", "redis-master:10.9.9.9")]))
    linked = linked_spec(docker, client, state)
    assert linked.env["REDIS_MASTER_HOST"] == "redis-master"
    assert linked.docker.parameters[0] == ("add-host", "redis-master:host-gateway")
    assert linked.docker.parameters[-1] == ("add-host", "redis-master:10.9.9.9")
    bare = linked_spec(docker, client, state, lb_address=None)
    assert "REDIS_MASTER_HOST" not in bare.env and len(bare.docker.parameters) == 1


# ---------------------------------------------------------------- strategies


def test_round_robin_takes_turns() -> None:
    rr = RoundRobin()
    firsts = Counter(rr.order(["a", "b", "c"], {})[0] for _ in range(300))
    assert firsts == {"a": 100, "b": 100, "c": 100}
    assert rr.order([], {}) == []
    assert sorted(rr.order(["a", "b", "c"], {})) == ["a", "b", "c"]  # fallbacks follow


def test_least_connections_prefers_idle_backends_and_rotates_ties() -> None:
    lc = LeastConnections()
    assert lc.order(["a", "b", "c"], {"a": 3, "b": 0, "c": 1})[0] == "b"
    firsts = Counter(lc.order(["a", "b", "c"], {})[0] for _ in range(300))
    assert firsts == {"a": 100, "b": 100, "c": 100}
    assert isinstance(make_strategy("least-connections"), LeastConnections)
    assert isinstance(make_strategy("whatever"), RoundRobin)


def test_least_connections_balances_open_connections_under_churn() -> None:
    lc, active = LeastConnections(), {"a": 0, "b": 0, "c": 0}
    opened: list[str] = []
    for i in range(300):
        key = lc.order(list(active), active)[0]
        active[key] += 1
        opened.append(key)
        if i % 2:  # the oldest half close
            active[opened.pop(0)] -= 1
    assert max(active.values()) - min(active.values()) <= 1


# ---------------------------------------------------------------- routing table


def _app_json(app_id: str, port: int, backends: list[tuple[str, str, int]],
              protocol: str = "tcp") -> dict:
    return {"id": app_id, "strategy": "round-robin", "servicePorts": [
        {"index": 0, "servicePort": port, "protocol": protocol, "name": None,
         "endpoints": [{"taskId": t, "host": h, "port": p, "routable": True}
                       for t, h, p in backends]}]}


def test_table_snapshot_then_events_in_generation_order() -> None:
    table = RouteTable()
    table.load({"epoch": "e", "generation": 5, "apps": [
        _app_json("/a", 10001, [("t1", "10.0.0.1", 31001)])]})
    assert table.by_port()[0][10001].backends == (Backend("t1", "10.0.0.1", 31001),)
    stale = {"epoch": "e", "generation": 5, "appId": "/a", "app": None}
    assert table.apply(stale) is False and "/a" in table.apps
    fresh = {"epoch": "e", "generation": 6, "appId": "/a",
             "app": _app_json("/a", 10001, [("t2", "10.0.0.2", 31002)])}
    assert table.apply(fresh) is True
    assert table.by_port()[0][10001].backends[0].task_id == "t2"
    assert table.apply({"epoch": "other", "generation": 1, "appId": "/a"}) is None
    assert table.apply({"epoch": "e", "generation": 7, "appId": "/a", "app": None})
    assert table.by_port()[0] == {}


def test_table_skips_udp_and_reports_clashes() -> None:
    assert routes_of_app(_app_json("/u", 10005, [], protocol="udp")) == []
    table = RouteTable()
    table.load({"epoch": "e", "generation": 1, "apps": [
        _app_json("/b", 80, []), _app_json("/a", 80, [])]})
    ports, clashes = table.by_port()
    assert ports[80].app_id == "/a" and clashes == [
        "service port 80: /b clashes with /a, which keeps it"]


def test_route_diff() -> None:
    def route(port: int, *keys: int) -> Route:
        return Route("/a", port, 0, "round-robin",
                     tuple(Backend(f"t{k}", "h", k) for k in keys))

    old = {1: route(1, 10, 11), 2: route(2, 20)}
    new = {1: route(1, 11, 12), 3: route(3, 30)}
    d = diff_routes(old, new)
    assert d.opened == (3,) and d.closed == (2,)
    assert d.dropped == ((1, "h:10"), (2, "h:20")) and d.added == ((1, "h:12"), (3, "h:30"))


def test_sse_parser_handles_split_chunks_and_long_lines() -> None:
    parser = SseParser()
    big = "x" * 200_000
    wire = (f"id: e-1\nevent: endpoints_changed_event\ndata: {big}\n\n"
            ": keepalive\n\nevent: event_stream_reset\ndata: {}\n\n").encode()
    messages = []
    for i in range(0, len(wire), 7777):
        messages += parser.feed(wire[i:i + 7777])
    assert [(m.event, len(m.data), m.id) for m in messages] == [
        ("endpoints_changed_event", 200_000, "e-1"), ("event_stream_reset", 2, None)]
