"""Horizontal autoscaling on CPU: the policy and the decision rule.  Pure.

An app declares ``autoscale: {min, max, target_cpu_utilization, cooldown_seconds}``,
or, for Marathon clients that reject unknown fields, the same as labels
(``MESOSLITE_AUTOSCALE_MIN`` / ``_MAX`` / ``_TARGET_CPU_UTILIZATION`` /
``_COOLDOWN_SECONDS``; the field wins when both are given).  Labels are part of the
task configuration (changing them restarts the tasks, as any label change does); the
field is not.

``decide(policy, observation, now)`` returns one ``Decision``.  Utilisation is
``sum(cpus used) / sum(cpus allocated)`` over the app's running tasks, from the
agents' latest usage samples.  In order:

1. a deployment holds the app -> hold (scaling would have to cancel it);
2. ``instances`` outside ``[min, max]`` -> scale to the bound (at once);
3. less than ``cooldown_seconds`` since the app last scaled (``lastScalingAt``:
   by the autoscaler or anyone) -> hold;
4. not every instance running, or not every running task sampled -> hold (a
   utilisation over part of the app would mislead);
5. utilisation within ``target x (1 +/- tolerance)`` -> hold (the band);
6. otherwise ``desired = ceil(instances x utilisation / target)`` clamped to
   ``[min, max]`` (the Kubernetes HPA rule); equal to ``instances`` -> hold
   (``at_bound`` when clamped, else ``rounded``: fewer would be above the target).

The band and the cooldown are the hysteresis: a load near the target does not make
the app flap, and after a change the new instances get time to take load before the
next measurement counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from frameworks.services.model import App, AutoscaleSpec, timestamp

LABEL_PREFIX = "MESOSLITE_AUTOSCALE_"
LABELS = {
    "min": LABEL_PREFIX + "MIN",
    "max": LABEL_PREFIX + "MAX",
    "target_cpu_utilization": LABEL_PREFIX + "TARGET_CPU_UTILIZATION",
    "cooldown_seconds": LABEL_PREFIX + "COOLDOWN_SECONDS",
}
DEFAULT_TOLERANCE = 0.1
SCALE_UP, SCALE_DOWN, HOLD = "scale_up", "scale_down", "hold"


@dataclass(frozen=True)
class Policy:
    min: int
    max: int
    target: float  # cpu utilisation, 0 < target <= 1
    cooldown_s: float
    source: str = "field"  # or "labels"

    def to_json(self) -> dict[str, Any]:
        return {"min": self.min, "max": self.max, "target_cpu_utilization": self.target,
                "cooldown_seconds": self.cooldown_s, "source": self.source}


@dataclass(frozen=True)
class Observation:
    """What the autoscaler saw of one app."""

    instances: int  # the app's target
    running: int  # its running tasks (not being killed)
    sampled: int  # running tasks with a fresh usage sample
    cpus_used: float  # sum over the sampled tasks
    cpus_allocated: float  # sum over the sampled tasks
    deploying: bool = False
    last_scaled_at: float = 0.0

    @property
    def utilization(self) -> float | None:
        if self.sampled == 0 or self.cpus_allocated <= 0:
            return None
        return self.cpus_used / self.cpus_allocated

    def to_json(self) -> dict[str, Any]:
        u = self.utilization
        return {"instances": self.instances, "runningTasks": self.running,
                "sampledTasks": self.sampled, "cpusUsed": round(self.cpus_used, 4),
                "cpusAllocated": round(self.cpus_allocated, 4),
                "utilization": round(u, 4) if u is not None else None,
                "deploying": self.deploying}


@dataclass(frozen=True)
class Decision:
    action: str  # scale_up, scale_down or hold
    current: int
    desired: int
    kind: str  # a short code for the reason (deploying, cooldown, in_band, ...)
    reason: str
    utilization: float | None = None

    @property
    def scales(self) -> bool:
        return self.action != HOLD

    def to_json(self, app_id: str, at: float, target: float) -> dict[str, Any]:
        return {"appId": app_id, "timestamp": timestamp(at), "at": at,
                "action": self.action, "from": self.current, "to": self.desired,
                "kind": self.kind, "reason": self.reason,
                "utilization": round(self.utilization, 4)
                if self.utilization is not None else None,
                "targetCpuUtilization": target}


# ---------------------------------------------------------------- the policy


def policy_of(app: App) -> Policy | None:
    """The app's policy (field, else labels), or None.  Assumes a validated app."""
    if app.autoscale is not None:
        a = app.autoscale
        return Policy(a.min, a.max, a.target_cpu_utilization, a.cooldown_seconds)
    if LABELS["max"] not in app.labels:
        return None
    spec, errors = spec_from_labels(app.labels)
    if errors or spec is None:
        return None
    return Policy(spec.min, spec.max, spec.target_cpu_utilization, spec.cooldown_seconds,
                  source="labels")


def spec_from_labels(labels: dict[str, str]) -> tuple[AutoscaleSpec | None, list[tuple[str, str]]]:
    """The policy the labels spell (None without ``..._MAX``), and (label, error)s."""
    if LABELS["max"] not in labels:
        stray = [k for k in LABELS.values() if k in labels]
        return None, [(k, f"needs {LABELS['max']} too") for k in stray]
    values: dict[str, Any] = {}
    errors = []
    for field, label in LABELS.items():
        if label not in labels:
            continue
        raw = labels[label]
        try:
            values[field] = int(raw) if field in ("min", "max") else float(raw)
        except ValueError:
            kind = "an integer" if field in ("min", "max") else "a number"
            errors.append((label, f"'{raw}' is not {kind}"))
    if errors:
        return None, errors
    spec = AutoscaleSpec(**values)
    return spec, [(LABELS[f], m) for f, m in spec_errors(spec)]


def spec_errors(spec: AutoscaleSpec) -> list[tuple[str, str]]:
    """(field, message) for an invalid policy."""
    out = []
    if spec.min < 1:
        out.append(("min", (f"got {spec.min}, expected 1 or more (an app with no task "
                           "has no usage to scale on)")))
    if spec.max < spec.min:
        out.append(("max", f"got {spec.max}, expected at least min ({spec.min})"))
    t = spec.target_cpu_utilization
    if not (math.isfinite(t) and 0 < t <= 1):
        out.append(("target_cpu_utilization", f"got {t}, expected more than 0 and at most 1"))
    c = spec.cooldown_seconds
    if not (math.isfinite(c) and c >= 0):
        out.append(("cooldown_seconds", f"got {c}, expected 0 or more"))
    return out


# ---------------------------------------------------------------- the rule


def decide(policy: Policy, obs: Observation, now: float,
           tolerance: float = DEFAULT_TOLERANCE) -> Decision:
    """The decision for one app now (see the module docstring for the rule)."""
    n = obs.instances
    util = obs.utilization

    def hold(kind: str, reason: str) -> Decision:
        return Decision(HOLD, n, n, kind, reason, util)

    def scale(to: int, kind: str, reason: str) -> Decision:
        return Decision(SCALE_UP if to > n else SCALE_DOWN, n, to, kind, reason, util)

    if obs.deploying:
        return hold("deploying", "a deployment is in progress")
    if n < policy.min:
        return scale(policy.min, "below_min", f"{n} instances is below the minimum of "
                                              f"{policy.min}")
    if n > policy.max:
        return scale(policy.max, "above_max", f"{n} instances is above the maximum of "
                                              f"{policy.max}")
    since = now - obs.last_scaled_at
    if since < policy.cooldown_s:
        return hold("cooldown", f"cooling down: last scaled {since:.1f}s ago "
                                f"(cooldown {policy.cooldown_s:g}s)")
    if obs.running < n:
        return hold("starting", f"{obs.running} of {n} instances running")
    if util is None:
        return hold("no_samples", "no usage samples yet")
    if obs.sampled < obs.running:
        return hold("partial_samples", f"usage sampled for {obs.sampled} of "
                                       f"{obs.running} running tasks")
    ratio = util / policy.target
    shown = f"cpu utilisation {util:.2f} against a target of {policy.target:g}"
    if abs(ratio - 1) <= tolerance:
        return hold("in_band", f"{shown}: within +/-{tolerance:.0%}")
    proportional = math.ceil(n * ratio - 1e-9)
    desired = min(policy.max, max(policy.min, proportional))
    if desired == n:
        if proportional != desired:
            bound = "maximum" if ratio > 1 else "minimum"
            return hold("at_bound", f"{shown}: already at the {bound} of {n}")
        # e.g. 2 instances at 0.18 against 0.3: one alone would run at 0.36
        needed = f"{n} instance is" if n == 1 else f"{n} instances are"
        return hold("rounded", f"{shown}: {needed} still needed for it")
    direction = "above" if ratio > 1 else "below"
    return scale(desired, "utilization", f"{shown} is {direction} the band: "
                                         f"{n} -> {desired} instances")
