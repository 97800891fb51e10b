"""Hierarchical weighted DRF sorter: the order in which (framework, role) clients are offered.

A *client* is one framework subscribed to one role, named by an integer slot the caller
chooses (the allocator uses the same slot as the column of its filter matrix).  Clients
hang under their role in a tree of roles: ``eng/web`` is a child of ``eng``, as in Mesos'
hierarchical roles.  A role that has both sub-roles and frameworks of its own gets a
virtual child ``<role>/.`` holding those frameworks, as Mesos' sorter does.

Order (Mesos' ``DRFSorter``): siblings are sorted by their weighted dominant share
(allocation / cluster total, maximised over scalar kinds, divided by weight), then by how
many allocations they received (so equal shares take turns), then by name; the client
order is the depth-first walk of that sorted tree.

Contract:

* ``ranks()`` returns one integer per client slot: a lower rank comes earlier in DRF
  order.  The array is *live*: ``allocated()`` updates it in place, so the allocator can
  pick "the first eligible client" with one vectorised ``argmin`` per agent.
* ``allocated()`` keeps the order exact incrementally (only the client and its ancestor
  roles move).  ``unallocated()``, total/weight changes and client add/remove mark the
  order stale; the next ``ranks()``/``order()`` re-sorts everything once.

Layout: each node carries an integer *label* that increases along its siblings' order,
with gaps (the order-maintenance trick); a client's rank packs its ancestors' labels
into one int64, top level in the high bits.  Moving a node to a new place among its
siblings then only relabels that node: O(1) for a client, O(its clients) for a role,
instead of shifting every sibling in between.  When a gap runs out the siblings are
relabelled evenly (amortised O(1)).  A tree too deep and wide for 62 bits falls back to
plain depth-first positions, recomputed per allocation (correct, slower).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping

import numpy as np

from mesoslite.master.allocator.scalars import (
    add_milli,
    dominant_share,
    from_milli,
    sub_milli,
    to_milli,
)

VIRTUAL = "."  # name of the virtual child holding a role's own frameworks
_RANK_BITS = 62  # bits of an int64 rank shared out among the tree's levels


class _Node:
    """A role, a virtual role or a client in the sorter tree."""

    __slots__ = (
        "alloc",
        "count",
        "dominant",
        "gap",
        "index",
        "keys",
        "kids",
        "label",
        "level",
        "members",
        "name",
        "parent",
        "role",
        "share",
        "slot",
        "sort_key",
        "subtree",
        "weight",
    )

    def __init__(self, name: str, role: str, slot: int = -1, weight: float = 1.0) -> None:
        self.name = name  # role path, or the client's name (unique among its siblings)
        self.role = role
        self.slot = slot  # client slot; -1 for role nodes
        self.weight = weight
        self.parent: _Node | None = None
        self.kids: list[_Node] = []
        # the kids sorted: their keys and the kids themselves (parallel lists)
        self.keys: list[tuple[float, int, str]] = []
        self.members: list[_Node] = []
        self.gap = 1  # label spacing used when the kids were last relabelled
        self.sort_key: tuple[float, int, str] = (0.0, 0, name)  # as filed in parent.keys
        self.label = 0
        self.subtree = np.zeros(0, np.intp)  # client slots below (inner nodes)
        self.alloc: dict[str, int] = {}  # thousandths
        self.count = 0  # allocations received: the tie-breaker between equal shares
        self.dominant = 0.0  # unweighted dominant share
        self.share = 0.0  # weighted: what DRF compares
        self.index = 0
        self.level = -1

    def key(self) -> tuple[float, int, str]:
        return (self.share, self.count, self.name)


def _role_parent(role: str) -> str | None:
    cut = role.rfind("/")
    return role[:cut] if cut > 0 else None


def _role_prefixes(role: str) -> list[str]:
    parts = role.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


class DRFSorter:
    """Weighted DRF order over client slots in a tree of roles (see module docstring)."""

    def __init__(self, role_weights: Mapping[str, float] | None = None) -> None:
        self._weights: dict[str, float] = dict(role_weights or {})
        self._total: dict[str, int] = {}  # thousandths
        self._root = _Node("", "")
        # role path (or "<role>/." virtual) -> node; kept when unused so that the
        # allocation counts (the tie-breaker) survive a role emptying for a while
        self._roles: dict[str, _Node] = {}
        self._live: set[str] = set()  # the role nodes in the tree now
        self._clients: dict[int, _Node] = {}
        self._structure_dirty = True
        self._order_dirty = True
        self._nodes: list[_Node] = [self._root]
        self._limit = 1  # labels are in [0, _limit)
        self._shifts: list[int] = [0]
        self._labelled = True  # False: ranks are depth-first positions
        self._anc = np.zeros((1, 0), np.intp)
        self._rank = np.zeros(0, np.int64)

    # -- membership ----------------------------------------------------------

    def add_client(self, slot: int, role: str, name: str, weight: float = 1.0) -> None:
        """Add client ``slot`` (``name`` unique within ``role``), with no allocation."""
        if slot in self._clients:
            raise ValueError(f"client slot {slot} is taken")
        self._clients[slot] = _Node(name, role, slot, weight)
        self._structure_dirty = True

    def remove_client(self, slot: int) -> None:
        """Forget a client and its allocation (a no-op for an unknown slot)."""
        if self._clients.pop(slot, None) is not None:
            self._structure_dirty = True

    def set_client_weight(self, slot: int, weight: float) -> None:
        node = self._clients[slot]
        if node.weight != weight:
            node.weight = weight
            self._order_dirty = True

    def set_role_weight(self, role: str, weight: float) -> None:
        self._weights[role] = weight
        self._structure_dirty = True  # virtual nodes inherit weights at rebuild

    def role_weight(self, role: str) -> float:
        return self._weights.get(role, 1.0)

    # -- quantities ----------------------------------------------------------

    def add_total(self, scalars: Mapping[str, float]) -> None:
        """The cluster grew (an agent joined or its total grew)."""
        add_milli(self._total, to_milli(scalars))
        self._order_dirty = True

    def remove_total(self, scalars: Mapping[str, float]) -> None:
        sub_milli(self._total, to_milli(scalars))
        self._order_dirty = True

    @property
    def total(self) -> dict[str, float]:
        return from_milli(self._total)

    def total_milli(self) -> dict[str, int]:
        """The cluster total in thousandths (a copy)."""
        return dict(self._total)

    def allocation_milli(self) -> dict[str, int]:
        """What all clients hold together, in thousandths."""
        self._prepare()
        out: dict[str, int] = {}
        for kid in self._root.kids:
            add_milli(out, kid.alloc)
        return out

    def allocated(self, slot: int, scalars: Mapping[str, float]) -> dict[str, int]:
        """``slot`` received ``scalars``; the order (and ``ranks()``) stays exact.
        Returns ``scalars`` in thousandths, as counted."""
        milli = to_milli(scalars)
        if self._structure_dirty:
            self._rebuild()  # so that the counts go to the client's real ancestors
        node: _Node | None = self._clients[slot]
        clean = not self._order_dirty
        total, root = self._total, self._root
        while node is not None and node is not root:
            alloc, dominant = node.alloc, node.dominant
            for name, value in milli.items():
                held = alloc[name] = alloc.get(name, 0) + value
                t = total.get(name)
                # Allocations only grow here, so the new dominant share is the old one
                # or one of the kinds just added to.
                if t and held / t > dominant:
                    dominant = held / t
            node.dominant = dominant
            node.count += 1
            if clean:
                node.share = dominant / node.weight
                self._reposition(node)
            node = node.parent
        return milli

    def unallocated(self, slot: int, scalars: Mapping[str, float]) -> None:
        """``slot`` gave ``scalars`` back (saturating); the order is re-sorted lazily."""
        client = self._clients[slot]
        removed = sub_milli(client.alloc, to_milli(scalars))
        node = client.parent
        if removed and not self._structure_dirty:
            while node is not None and node is not self._root:
                sub_milli(node.alloc, removed)
                node = node.parent
        self._order_dirty = True

    def client_allocation(self, slot: int) -> dict[str, float]:
        return from_milli(self._clients[slot].alloc)

    def client_share(self, slot: int) -> float:
        """Unweighted dominant share of the client (its allocation / cluster total)."""
        return dominant_share(self._clients[slot].alloc, self._total)

    def roles(self) -> list[str]:
        """Role paths in the tree (not the virtual ones)."""
        self._prepare()
        return sorted(p for p in self._live if not p.endswith("/" + VIRTUAL))

    def role_allocation(self, role: str) -> dict[str, float]:
        """What the role and its sub-roles hold."""
        self._prepare()
        if role not in self._live:
            raise KeyError(role)
        return from_milli(self._roles[role].alloc)

    def live_allocation(self, role: str) -> dict[str, int]:
        """What ``role`` and its sub-roles hold, in thousandths; for a role in the tree
        the very dict ``allocated()`` updates (read it only until the next membership
        change); empty for a role no client is in."""
        self._prepare()
        node = self._roles.get(role) if role in self._live else None
        return node.alloc if node is not None else {}

    def role_share(self, role: str) -> float:
        self._prepare()
        if role not in self._live:
            raise KeyError(role)
        return dominant_share(self._roles[role].alloc, self._total)

    # -- order -------------------------------------------------------------

    def ranks(self) -> np.ndarray:
        """Rank per client slot, lower is earlier (entries of free slots are junk).

        The array is updated in place by ``allocated()`` and replaced when clients are
        added or removed: hold it only while the set of clients stays the same.
        """
        self._prepare()
        return self._rank

    def order(self) -> list[int]:
        """Client slots in DRF order."""
        self._prepare()
        return [node.slot for node in self._walk()]

    def _prepare(self) -> None:
        if self._structure_dirty:
            self._rebuild()
        if self._order_dirty:
            self._resort()

    def _walk(self) -> list[_Node]:
        """Clients in depth-first order of the sorted tree."""
        out: list[_Node] = []
        stack = [self._root]
        while stack:
            node = stack.pop()
            if node.slot >= 0:
                out.append(node)
            else:
                stack.extend(reversed(node.members))
        return out

    def _rebuild(self) -> None:
        """Recreate the tree's shape from the clients' roles; O(clients x depth)."""
        needed: set[str] = set()
        for client in self._clients.values():
            needed.update(_role_prefixes(client.role))
        with_subroles = {_role_parent(p) for p in needed} - {None}
        virtual = {c.role for c in self._clients.values() if c.role in with_subroles}
        wanted = needed | {f"{r}/{VIRTUAL}" for r in virtual}
        for path in wanted - self._roles.keys():
            role = path if path in needed else path[: -len(VIRTUAL) - 1]
            self._roles[path] = _Node(path, role)
        self._live = wanted
        root = self._root
        root.kids = []
        for path in wanted:
            node = self._roles[path]
            node.kids, node.alloc = [], {}
            node.weight = self._weights.get(node.role, 1.0)
        for path in sorted(needed):
            node, parent_path = self._roles[path], _role_parent(path)
            node.parent = root if parent_path is None else self._roles[parent_path]
            node.parent.kids.append(node)
        for role in sorted(virtual):
            node = self._roles[f"{role}/{VIRTUAL}"]
            node.parent = self._roles[role]
            node.parent.kids.append(node)
        for slot in sorted(self._clients):
            client = self._clients[slot]
            host = self._roles[f"{client.role}/{VIRTUAL}" if client.role in virtual else client.role]
            client.parent = host
            host.kids.append(client)
            node = host
            while node is not root:
                add_milli(node.alloc, client.alloc)
                node = node.parent
        self._index_tree()
        self._structure_dirty = False
        self._order_dirty = True

    def _index_tree(self) -> None:
        """Number the nodes, share the rank bits out, note each client's ancestors."""
        nodes: list[_Node] = [self._root]
        stack = [self._root]
        while stack:
            node = stack.pop()
            for kid in node.kids:
                kid.index, kid.level = len(nodes), node.level + 1
                nodes.append(kid)
                stack.append(kid)
        self._nodes = nodes
        levels = max(1, max(n.level for n in nodes) + 1)
        bits = _RANK_BITS // levels
        self._limit = 1 << bits
        self._shifts = [(levels - 1 - level) * bits for level in range(levels)]
        # Even relabelling must leave a gap of >= 2 between siblings.
        self._labelled = all(self._limit // (2 * (len(n.kids) + 1)) >= 2 for n in nodes)
        capacity = max(max(self._clients, default=-1) + 1, len(self._rank))
        anc = np.zeros((levels, capacity), np.intp)  # 0 = the root: contributes 0
        below: dict[int, list[int]] = {}
        for slot, client in self._clients.items():
            node = client
            while node is not self._root:
                anc[node.level, slot] = node.index
                node = node.parent
                below.setdefault(node.index, []).append(slot)
        for node in nodes:
            node.subtree = np.asarray(below.get(node.index, ()), np.intp)
        self._anc = anc
        self._rank = np.zeros(capacity, np.int64)

    def _resort(self) -> None:
        """Recompute every share and sort every sibling list; O(nodes log nodes)."""
        total = self._total
        for node in self._nodes[1:]:
            node.dominant = dominant_share(node.alloc, total)
            node.share = node.dominant / node.weight
        for node in self._nodes:
            if node.kids:
                node.members = sorted(node.kids, key=_Node.key)
                node.keys = [kid.key() for kid in node.members]
                for kid, key in zip(node.members, node.keys):
                    kid.sort_key = key
                self._relabel(node)
        self._order_dirty = False
        self._full_ranks()

    def _relabel(self, parent: _Node) -> None:
        """Spread the kids' labels evenly over the lower half of the range."""
        gap = max(1, self._limit // (2 * (len(parent.members) + 1)))
        parent.gap = gap
        for k, kid in enumerate(parent.members):
            kid.label = gap * (k + 1)

    def _full_ranks(self) -> None:
        rank = self._rank
        if not self._labelled:
            for position, client in enumerate(self._walk()):
                rank[client.slot] = position
            return
        shifts = self._shifts
        contrib = np.fromiter(
            (n.label << shifts[n.level] for n in self._nodes), np.int64, len(self._nodes)
        )
        contrib[0] = 0
        anc = self._anc
        np.take(contrib, anc[0], out=rank)
        for level in range(1, len(anc)):
            rank += contrib[anc[level]]

    def _reposition(self, node: _Node) -> None:
        """File ``node`` under its new key among its siblings and fix the ranks."""
        parent = node.parent
        assert parent is not None
        keys, new_key = parent.keys, node.key()
        if len(keys) == 1:
            keys[0] = node.sort_key = new_key
            return
        members = parent.members
        i = bisect_left(keys, node.sort_key)
        del keys[i], members[i]
        j = bisect_left(keys, new_key)
        keys.insert(j, new_key)
        members.insert(j, node)
        node.sort_key = new_key
        if i == j:
            return
        label = self._label_between(members, j, parent.gap)
        if not self._labelled:
            self._relabel(parent)
            self._full_ranks()
            return
        if label is None:
            self._relabel_in_place(parent)
            return
        delta = (label - node.label) << self._shifts[node.level]
        node.label = label
        if node.slot >= 0:
            self._rank[node.slot] += delta
        else:
            self._rank[node.subtree] += delta

    def _relabel_in_place(self, parent: _Node) -> None:
        """Relabel ``parent``'s kids evenly and move each kid's clients' ranks by the
        change: O(clients below ``parent``), not O(tree) as recomputing every rank."""
        before = [kid.label for kid in parent.members]
        self._relabel(parent)
        rank = self._rank
        for kid, old in zip(parent.members, before):
            if kid.label != old:
                delta = (kid.label - old) << self._shifts[kid.level]
                if kid.slot >= 0:
                    rank[kid.slot] += delta
                else:
                    rank[kid.subtree] += delta

    def _label_between(self, members: list[_Node], j: int, gap: int) -> int | None:
        """A free label for the node just filed at ``j`` among ``members``; None: relabel."""
        low = members[j - 1].label if j > 0 else -1
        high = members[j + 1].label if j + 1 < len(members) else self._limit
        if high == self._limit and low + gap < high:
            return low + gap  # appended at the end, the common move: keep a full gap
        if low == -1 and high - gap > low:
            return high - gap
        mid = (low + high) // 2
        return mid if low < mid < high else None
