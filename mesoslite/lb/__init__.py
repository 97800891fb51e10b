"""The per-host TCP load balancer: listens on every app's service port and spreads
connections over the app's healthy endpoints, as the services framework reports them.

``mesoslite lb --services URL`` runs one; ``mesoslite up`` hosts one for the local
machine.  Modules: ``strategies`` (round-robin, least-connections; pure), ``table``
(endpoints JSON -> routes; pure), ``watcher`` (event stream, polling fallback),
``proxy`` (listeners, connections, draining, counts), ``status`` (/status, /metrics),
``gateway`` (the Docker bridge address), ``server`` (wiring).  See docs/discovery.md.
"""

from mesoslite.lb.server import LbConfig, LoadBalancer

__all__ = ["LbConfig", "LoadBalancer"]
