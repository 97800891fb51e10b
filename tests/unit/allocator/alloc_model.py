"""A deliberately naive allocator: the executable specification the real one must match.

It recomputes everything from scratch at every step (the DRF tree, every share, every
filter check with ``Resources.contains``), with no arrays, labels or caches, so it is
slow but easy to check by eye against the contract in ``mesoslite/master/allocator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mesoslite.master.allocator import check_quota
from mesoslite.resources import Resources

Key = tuple[str, str]
EMPTY = Resources()
LEAST = {"cpus": 10, "mem": 32_000}  # the smallest launchable offer, in thousandths


def refuse_duration(seconds: float | None) -> float:
    if seconds is None:
        return 0.0
    if math.isnan(seconds) or seconds < 0:
        return 5.0
    return min(seconds, 365 * 24 * 3600.0)


def milli(resources: Resources) -> dict[str, int]:
    return {k: round(v * 1000) for k, v in resources.scalars.items()}


@dataclass
class Agent:
    total: Resources
    alloc: dict[Key, Resources] = field(default_factory=dict)
    active: bool = True

    def available(self) -> Resources:
        used = EMPTY
        for r in self.alloc.values():
            used = used + r
        return self.total - used


@dataclass
class Framework:
    roles: set[str]
    suppressed: set[str]
    active: bool
    weight: float


class NaiveAllocator:
    def __init__(self, role_weights: dict[str, float] | None = None) -> None:
        self.weights = dict(role_weights or {})
        self.agents: dict[str, Agent] = {}
        self.frameworks: dict[str, Framework] = {}
        self.filters: dict[tuple[str, str, str], tuple[float, Resources]] = {}
        self.counts: dict[object, int] = {}  # role path / "r/." / (role, fid) -> count
        # top-level role -> (guarantees, limits) in thousandths
        self.quotas: dict[str, tuple[dict[str, int], dict[str, int]]] = {}

    # -- membership, mirroring the real API --------------------------------------

    def add_agent(self, agent_id: str, total: Resources,
                  allocated: dict[Key, Resources] | None = None) -> None:
        self.agents[agent_id] = Agent(total)
        for key, res in (allocated or {}).items():
            self._hold(agent_id, key, res)

    def update_agent_total(self, agent_id: str, total: Resources) -> None:
        self.agents[agent_id].total = total

    def remove_agent(self, agent_id: str) -> None:
        self.agents.pop(agent_id, None)
        self.filters = {k: v for k, v in self.filters.items() if k[2] != agent_id}
        self._gc()

    def activate_agent(self, agent_id: str) -> None:
        self.agents[agent_id].active = True

    def deactivate_agent(self, agent_id: str) -> None:
        self.agents[agent_id].active = False

    def add_framework(self, fid: str, roles, suppressed_roles=(), active=True,
                      weight=1.0) -> None:
        self.frameworks[fid] = Framework(set(roles), set(suppressed_roles), active, weight)
        self._gc()

    def update_framework(self, fid: str, roles, suppressed_roles=None, weight=None) -> None:
        fw = self.frameworks[fid]
        for role in fw.roles - set(roles):
            self._clear(fid, {role})
        fw.roles = set(roles)
        if suppressed_roles is not None:
            fw.suppressed = set(suppressed_roles)
        if weight is not None:
            fw.weight = weight
        self._gc()

    def remove_framework(self, fid: str) -> None:
        self.frameworks.pop(fid, None)
        for agent in self.agents.values():
            agent.alloc = {k: v for k, v in agent.alloc.items() if k[0] != fid}
        self._clear(fid, None)
        self._gc()

    def activate_framework(self, fid: str) -> None:
        self.frameworks[fid].active = True

    def deactivate_framework(self, fid: str) -> None:
        self.frameworks[fid].active = False
        self._clear(fid, None)

    def suppress(self, fid: str, roles=None) -> None:
        fw = self.frameworks[fid]
        fw.suppressed |= fw.roles if roles is None else set(roles)

    def revive(self, fid: str, roles=None) -> None:
        fw = self.frameworks[fid]
        chosen = set(fw.roles) if roles is None else set(roles)
        fw.suppressed -= chosen
        self._clear(fid, chosen)

    def set_role_weight(self, role: str, weight: float) -> None:
        self.weights[role] = weight

    def set_quota(self, role: str, guarantees: dict[str, float],
                  limits: dict[str, float]) -> None:
        quota = check_quota(role, guarantees, limits)
        if quota:
            self.quotas[role] = ({k: round(v * 1000) for k, v in quota.guarantees.items() if v},
                                 {k: round(v * 1000) for k, v in quota.limits.items()})
        else:
            self.quotas.pop(role, None)

    # -- resources ------------------------------------------------------------------

    def allocate_used(self, fid: str, role: str, agent_id: str, res: Resources) -> None:
        self._hold(agent_id, (fid, role), res)

    def recover(self, fid, role, agent_id, res, now, refuse_seconds=None) -> None:
        agent = self.agents.get(agent_id)
        if agent is None:
            return
        key = (fid, role)
        if key in agent.alloc:
            left = agent.alloc[key] - res
            if left:
                agent.alloc[key] = left
            else:
                del agent.alloc[key]
        seconds = refuse_duration(refuse_seconds)
        if seconds > 0 and key in self.clients() and fid in self.frameworks:
            self.filters[(fid, role, agent_id)] = (now + seconds, res)
        self._gc()

    def allocate(self, now: float, agent_ids=None) -> list[tuple[str, str, str, Resources]]:
        ids = list(self.agents) if agent_ids is None else list(dict.fromkeys(agent_ids))
        if self.quotas and self.clients():
            return QuotaRoundModel(self, now).run(ids)
        out = []
        for agent_id in ids:
            agent = self.agents.get(agent_id)
            if agent is None or not agent.active:
                continue
            available = agent.available()
            if not available:
                continue
            for key in self.order():
                if self.offerable(key, agent_id, now):
                    out.append((key[0], key[1], agent_id, available))
                    self._hold(agent_id, key, available)
                    break
        return out

    # -- queries --------------------------------------------------------------------

    def offerable(self, key: Key, agent_id: str, now: float) -> bool:
        fid, role = key
        fw = self.frameworks.get(fid)
        if fw is None or not fw.active or role not in fw.roles or role in fw.suppressed:
            return False
        return not self.is_filtered(fid, role, agent_id, now)

    def is_filtered(self, fid: str, role: str, agent_id: str, now: float) -> bool:
        entry = self.filters.get((fid, role, agent_id))
        if entry is None or now >= entry[0]:
            return False
        return entry[1].contains(self.agents[agent_id].available())

    def order(self) -> list[Key]:
        """Clients in hierarchical weighted DRF order, from scratch."""
        clients = self.clients()
        total: dict[str, int] = {}
        for agent in self.agents.values():
            for k, v in milli(agent.total).items():
                total[k] = total.get(k, 0) + v
        alloc: dict[Key, dict[str, int]] = {key: {} for key in clients}
        for agent in self.agents.values():
            for key, res in agent.alloc.items():
                for k, v in milli(res).items():
                    alloc[key][k] = alloc[key].get(k, 0) + v
        roles = {c[1] for c in clients}
        tree_roles = {"/".join(r.split("/")[: i + 1]) for r in roles
                      for i in range(len(r.split("/")))}

        def share(a: dict[str, int], weight: float) -> float:
            s = 0.0
            for k, v in a.items():
                if total.get(k):
                    s = max(s, v / total[k])
            return s / weight

        def subtree_alloc(pred) -> dict[str, int]:
            out: dict[str, int] = {}
            for key in clients:
                if pred(key):
                    for k, v in alloc[key].items():
                        out[k] = out.get(k, 0) + v
            return out

        def sort_clients(role: str, host: str) -> list[Key]:
            members = [c for c in clients if c[1] == role]
            keyed = [(share(alloc[c], self.frameworks[c[0]].weight
                            if c[0] in self.frameworks else 1.0),
                      self.counts.get((role, c[0]), 0), c[0], c) for c in members]
            return [item[3] for item in sorted(keyed)]

        def walk(parent: str | None) -> list[Key]:
            kids = sorted(r for r in tree_roles if _parent(r) == parent)
            items = []
            for r in kids:
                a = subtree_alloc(lambda c, r=r: c[1] == r or c[1].startswith(r + "/"))
                items.append((share(a, self.weights.get(r, 1.0)), self.counts.get(r, 0), r))
            if parent is not None and parent in roles and kids:
                a = subtree_alloc(lambda c: c[1] == parent)
                virtual = parent + "/."
                items.append((share(a, self.weights.get(parent, 1.0)),
                              self.counts.get(virtual, 0), virtual))
            out: list[Key] = []
            for _, _, name in sorted(items):
                if name.endswith("/."):
                    out.extend(sort_clients(parent, name))
                elif any(_parent(r) == name for r in tree_roles):
                    out.extend(walk(name))
                else:
                    out.extend(sort_clients(name, name))
            return out

        return walk(None)

    def path(self, key: Key) -> list[object]:
        """The tree nodes an allocation to ``key`` counts for."""
        roles = {c[1] for c in self.clients()}
        role = key[1]
        parts = role.split("/")
        nodes: list[object] = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(r.startswith(role + "/") for r in roles):
            nodes.append(role + "/.")
        nodes.append((role, key[0]))
        return nodes

    # -- internals ------------------------------------------------------------------

    def clients(self) -> set[Key]:
        out = {(fid, r) for fid, fw in self.frameworks.items() for r in fw.roles}
        for agent in self.agents.values():
            out.update(agent.alloc)
        return out

    def _hold(self, agent_id: str, key: Key, res: Resources) -> None:
        if not res:
            return
        agent = self.agents[agent_id]
        agent.alloc[key] = agent.alloc.get(key, EMPTY) + res
        for node in self.path(key):
            self.counts[node] = self.counts.get(node, 0) + 1

    def _clear(self, fid: str, roles: set[str] | None) -> None:
        self.filters = {k: v for k, v in self.filters.items()
                        if not (k[0] == fid and (roles is None or k[1] in roles))}

    def _gc(self) -> None:
        """Forget counts and filters of clients that no longer exist."""
        clients = self.clients()
        # role counts persist; a client's count goes with the client
        self.counts = {k: v for k, v in self.counts.items()
                       if not isinstance(k, tuple) or (k[1], k[0]) in clients}
        self.filters = {k: v for k, v in self.filters.items() if (k[0], k[1]) in clients}


def _parent(role: str) -> str | None:
    cut = role.rfind("/")
    return role[:cut] if cut > 0 else None


def top(role: str) -> str:
    return role.split("/")[0]


def add_to(into: dict[str, int], more: dict[str, int], sign: int = 1) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + sign * v


class QuotaRoundModel:
    """Mesos' two stages per agent, recomputed from scratch at every step."""

    def __init__(self, model: NaiveAllocator, now: float) -> None:
        self.m, self.now = model, now
        self.headroom: dict[str, int] = {}
        if self.required():
            total: dict[str, int] = {}
            for agent in model.agents.values():
                add_to(total, milli(agent.total))
                for res in agent.alloc.values():
                    add_to(total, milli(res), -1)
            self.headroom = {k: v for k, v in total.items() if v > 0}

    def consumed(self, role: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for agent in self.m.agents.values():
            for (_, r), res in agent.alloc.items():
                if top(r) == role:
                    add_to(out, milli(res))
        return out

    def deficit(self, role: str) -> dict[str, int]:
        guarantees = self.m.quotas[role][0] if role in self.m.quotas else {}
        have = self.consumed(role)
        return {k: g - have.get(k, 0) for k, g in guarantees.items() if g > have.get(k, 0)}

    def required(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for role in self.m.quotas:
            add_to(out, self.deficit(role))
        return out

    def capped(self, role: str) -> bool:
        if role not in self.m.quotas:
            return False
        limits, have = self.m.quotas[role][1], self.consumed(role)
        return any(k in limits and limits[k] - have.get(k, 0) < least
                   for k, least in LEAST.items())

    def surplus(self) -> dict[str, int]:
        return {k: self.headroom.get(k, 0) - v for k, v in self.required().items()}

    def fair_open(self) -> bool:
        surplus = self.surplus()
        return all(surplus.get(k, least) >= least for k, least in LEAST.items())

    def caps(self, role: str, toward: dict[str, int]) -> dict[str, int]:
        caps: dict[str, int] = {}
        if role in self.m.quotas:
            have = self.consumed(role)
            for k, cap in self.m.quotas[role][1].items():
                caps[k] = cap - have.get(k, 0) - toward.get(k, 0)
        for k, s in self.surplus().items():
            caps[k] = min(caps.get(k, s), s)
        return caps

    def offer(self, role: str, available: Resources, stage: int) -> Resources | None:
        have = milli(available)
        toward: dict[str, int] = {}
        if stage == 1:
            deficit = self.deficit(role)
            toward = {k: min(v, deficit[k]) for k, v in have.items() if k in deficit}
            if not toward:
                return None
        rest = {k: v - toward.get(k, 0) for k, v in have.items()}
        for k, cap in self.caps(role, toward).items():
            if k in rest and rest[k] > cap:
                rest[k] = max(0, cap)
        scalars = {k: (toward.get(k, 0) + rest[k]) / 1000 for k in have}
        if scalars == dict(available.scalars):
            return available
        return Resources(scalars=scalars, ranges=available.ranges, sets=available.sets) or None

    def pick(self, agent_id: str, served: list[Key], stage: int) -> Key | None:
        for key in self.m.order():
            if key in served or self.capped(top(key[1])):
                continue
            if stage == 1 and not self.deficit(top(key[1])):
                continue
            if self.m.offerable(key, agent_id, self.now):
                return key
        return None

    def stage(self, agent_id: str, number: int, out: list) -> bool:
        served: list[Key] = []
        agent = self.m.agents[agent_id]
        while agent.available():
            if number == 2 and not self.fair_open():
                break
            key = self.pick(agent_id, served, number)
            if key is None:
                break
            served.append(key)
            available = agent.available()
            offer = self.offer(top(key[1]), available, number)
            if offer is None:
                continue
            if self.required():
                for k, v in milli(offer).items():
                    self.headroom[k] = self.headroom.get(k, 0) - v
            out.append((key[0], key[1], agent_id, offer))
            self.m._hold(agent_id, key, offer)
            if number == 2 and offer == available:
                break
        return any(o[2] == agent_id for o in out)

    def run(self, ids: list[str]) -> list[tuple[str, str, str, Resources]]:
        out: list = []
        for agent_id in ids:
            agent = self.m.agents.get(agent_id)
            if agent is None or not agent.active or not agent.available():
                continue
            self.stage(agent_id, 1, out)
            self.stage(agent_id, 2, out)
        return out
