"""The autoscaling rule (pure, clock injected) and the policy's validation through the
real API: bounds, the band and the cooldown (the hysteresis), and 422s with paths."""

from __future__ import annotations

import pytest

from frameworks.services.autoscale import Observation, Policy, decide
from mesoslite.clock import ManualClock

POLICY = Policy(min=2, max=6, target=0.5, cooldown_s=30.0)


def obs(instances: int, used: float, *, running: int | None = None, last: float = 0.0,
        deploying: bool = False) -> Observation:
    running = instances if running is None else running
    return Observation(instances=instances, running=running, sampled=running,
                       cpus_used=used, cpus_allocated=running * 1.0, deploying=deploying,
                       last_scaled_at=last)


def test_scales_proportionally_within_bounds() -> None:
    now = ManualClock(1000.0).now()
    up = decide(POLICY, obs(2, 1.8), now)  # 0.9 against 0.5: ceil(2 * 1.8) = 4
    assert (up.action, up.desired, up.kind) == ("scale_up", 4, "utilization")
    assert "above the band" in up.reason
    assert decide(POLICY, obs(4, 4.0), now).desired == 6  # ceil(8) capped at max
    down = decide(POLICY, obs(6, 0.0), now)
    assert (down.action, down.desired) == ("scale_down", 2)  # floored at min
    assert "below the band" in down.reason
    held = decide(POLICY, obs(6, 6.0), now)
    assert (held.action, held.kind) == ("hold", "at_bound")


def test_out_of_bounds_is_corrected_even_in_cooldown() -> None:
    now = 1000.0
    assert decide(POLICY, obs(1, 0.0, last=now), now).desired == 2
    assert decide(POLICY, obs(9, 9.0, last=now), now).desired == 6


def test_hysteresis_band_and_cooldown() -> None:
    clock = ManualClock(1000.0)
    # Within +/-10 % of the target: no change either way.
    assert decide(POLICY, obs(4, 4 * 0.54), clock.now()).kind == "in_band"
    assert decide(POLICY, obs(4, 4 * 0.46), clock.now()).kind == "in_band"
    # Just scaled: held until the cooldown has passed, then it acts.
    scaled_at = clock.now()
    clock.advance(29.0)
    held = decide(POLICY, obs(4, 4.0, last=scaled_at), clock.now())
    assert (held.action, held.kind) == ("hold", "cooldown")
    clock.advance(1.0)
    assert decide(POLICY, obs(4, 4.0, last=scaled_at), clock.now()).action == "scale_up"


def test_holds_while_the_picture_is_partial() -> None:
    now = 1000.0
    assert decide(POLICY, obs(4, 4.0, deploying=True), now).kind == "deploying"
    assert decide(POLICY, obs(4, 3.0, running=3), now).kind == "starting"
    partial = Observation(instances=4, running=4, sampled=2, cpus_used=2.0,
                          cpus_allocated=2.0)
    assert decide(POLICY, partial, now).kind == "partial_samples"
    none = Observation(instances=4, running=4, sampled=0, cpus_used=0, cpus_allocated=0)
    assert decide(POLICY, none, now).kind == "no_samples"


APP = {"id": "/as", "cmd": "sleep 100", "cpus": 0.1, "mem": 16, "instances": 1}


@pytest.mark.parametrize(("policy", "path"), [
    ({"min": 0, "max": 2}, "/autoscale/min"),
    ({"min": 3, "max": 2}, "/autoscale/max"),
    ({"min": 1, "max": 2, "target_cpu_utilization": 1.5}, "/autoscale/target_cpu_utilization"),
    ({"min": 1, "max": 2, "cooldownSeconds": -1}, "/autoscale/cooldown_seconds"),
    ({"min": 1, "max": "many"}, "/autoscale/max"),
    ({"min": 1, "max": 2, "burst": 3}, "/autoscale/burst"),  # unknown field: its path
])
async def test_bad_policies_are_refused_with_a_path(offline, policy, path) -> None:
    status, body, _ = await offline.call("POST", "/v2/apps", {**APP, "autoscale": policy})
    assert status == 422, body
    assert path in [d["path"] for d in body["details"]], body
    if "burst" in policy:
        assert body["details"][0]["errors"] == ["unknown field"]


async def test_policy_is_kept_and_shown(offline) -> None:
    policy = {"min": 1, "max": 4, "targetCpuUtilization": 0.6, "cooldown_seconds": 5}
    await offline.ok("POST", "/v2/apps", {**APP, "autoscale": policy})
    app = await offline.app("/as")
    assert app["autoscale"] == {"min": 1, "max": 4, "target_cpu_utilization": 0.6,
                                "cooldown_seconds": 5.0}
    shown = await offline.ok("GET", "/v2/apps/as/autoscale")
    assert shown["policy"]["target_cpu_utilization"] == 0.6 and shown["decisions"] == []
    status, body, _ = await offline.call(
        "POST", "/v2/apps", {**APP, "id": "/lab", "labels": {
            "MESOSLITE_AUTOSCALE_MAX": "x"}})
    assert status == 422 and body["details"][0]["path"] == "/labels/MESOSLITE_AUTOSCALE_MAX"


def test_a_count_that_rounds_back_is_held_with_its_own_reason() -> None:
    # 3 instances at 0.4 against 0.5: ceil(2.4) = 3, none can go.
    held = decide(POLICY, obs(3, 3 * 0.4), 1000.0)
    assert (held.action, held.kind) == ("hold", "rounded")
    assert "3 instances are still needed" in held.reason
