"""Kubernetes Deployment + Service -> app translation, and its warnings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from frameworks.services.kube import (
    SERVICE_LABEL,
    ManifestError,
    cpu_quantity,
    memory_quantity,
    translate,
)
from frameworks.services.model import DEPLOYMENT_TIMEOUT_LABEL
from frameworks.services.validation import parse_app

ROOT = Path(__file__).resolve().parents[2]


def deployment(**spec_extra: object) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"team": "a"}},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{
                                  "name": "web", "image": "nginx:1",
                                  "ports": [{"containerPort": 80, "name": "http"}],
                                  "resources": {"requests": {"cpu": "250m",
                                                             "memory": "64Mi"}}}]}},
                 **spec_extra},
    }


def test_the_seed_manifest_translates_without_warnings() -> None:
    docs = list(yaml.safe_load_all((ROOT / "examples" / "redis-master.yaml").read_text()))
    out = translate(docs)
    assert out.warnings == []
    [app] = out.apps
    assert app["id"] == "/redis-master" and app["instances"] == 1
    assert app["cpus"] == 0.1 and app["mem"] == 100.0
    assert app["container"]["docker"]["image"] == "k8s.gcr.io/redis:e2e"
    assert app["container"]["portMappings"] == [
        {"containerPort": 6379, "hostPort": 0, "protocol": "tcp", "servicePort": 6379}]
    assert app["labels"] == {"app": "redis", "role": "master", "tier": "backend",
                             SERVICE_LABEL: "redis-master"}
    assert app.get("healthChecks", []) == []  # the seed has no probe
    parsed, warnings = parse_app(app)
    assert parsed.network == "bridge" and warnings == []


@pytest.mark.parametrize(("text", "cores"), [("100m", 0.1), ("2", 2.0), (1, 1.0),
                                             ("0.5", 0.5), ("1500m", 1.5)])
def test_cpu_quantities(text, cores) -> None:
    assert cpu_quantity(text, "x") == cores


@pytest.mark.parametrize(("text", "mb"), [("100Mi", 100.0), ("1Gi", 1024.0), ("512Ki", 0.5),
                                          ("128M", 122.07), ("1G", 953.674),
                                          (134217728, 128.0)])
def test_memory_quantities(text, mb) -> None:
    assert memory_quantity(text, "x") == pytest.approx(mb, abs=0.001)


@pytest.mark.parametrize("bad", ["lots", "12Qi", "-1Mi"])
def test_bad_quantities_name_the_field(bad) -> None:
    with pytest.raises(ManifestError, match="spec.x"):
        memory_quantity(bad, "spec.x")


def test_every_field_not_honoured_is_named() -> None:
    doc = deployment(minReadySeconds=5)
    doc["metadata"]["annotations"] = {"owner": "me"}
    pod = doc["spec"]["template"]["spec"]
    pod["serviceAccountName"] = "robot"
    container = pod["containers"][0]
    container["env"] = [{"name": "A", "value": "1"},
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]
    container["workingDir"] = "/srv"
    out = translate([doc])
    text = "\n".join(out.warnings)
    for field in ("metadata.annotations.owner", "spec.minReadySeconds",
                  "spec.template.spec.serviceAccountName",
                  "spec.template.spec.containers[0].workingDir", "valueFrom (POD)"):
        assert field in text, (field, out.warnings)
    assert out.apps[0]["env"] == {"A": "1"}
    assert "resources" not in text and "ports" not in text


def test_secret_and_config_map_references_become_app_secrets() -> None:
    doc = deployment()
    pod = doc["spec"]["template"]["spec"]
    container = pod["containers"][0]
    container["env"] = [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "web", "key": "mode"}}}]
    pod["volumes"] = [{"name": "tls", "secret": {"secretName": "web-tls"}},
                      {"name": "conf", "configMap": {"name": "web"}}]
    container["volumeMounts"] = [{"name": "tls", "mountPath": "/tls", "readOnly": True},
                                 {"name": "conf", "mountPath": "/conf"}]
    out = translate([doc])
    assert out.warnings == []
    [app] = out.apps
    assert app["secrets"] == {"db-pw": {"source": "db", "key": "pw"},
                              "config-web-mode": {"source": "config:web", "key": "mode"},
                              "web-tls": {"source": "web-tls"},
                              "config-web": {"source": "config:web"}}
    assert app["env"] == {"DB_PASSWORD": {"secret": "db-pw"},
                          "MODE": {"secret": "config-web-mode"}}
    assert app["container"]["volumes"] == [{"containerPath": "/tls", "secret": "web-tls"},
                                           {"containerPath": "/conf", "secret": "config-web"}]
    parsed, _ = parse_app(app)  # a valid app: its references resolve
    assert set(parsed.secrets) == set(app["secrets"])


def test_probes_strategy_and_placement() -> None:
    doc = deployment(strategy={"type": "RollingUpdate",
                               "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                     progressDeadlineSeconds=120)
    pod = doc["spec"]["template"]["spec"]
    c = pod["containers"][0]
    c["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": "http"},
                          "periodSeconds": 5, "failureThreshold": 2, "initialDelaySeconds": 3}
    c["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 80}}
    pod["nodeSelector"] = {"disk": "ssd", "kubernetes.io/hostname": "agent2"}
    pod["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}},
         "topologyKey": "kubernetes.io/hostname"}]}}
    out = translate([doc])
    assert out.warnings == []
    [app] = out.apps
    assert app["healthChecks"] == [{"protocol": "HTTP", "portIndex": 0, "path": "/healthz",
                                    "intervalSeconds": 5, "timeoutSeconds": 1,
                                    "maxConsecutiveFailures": 2, "delaySeconds": 3,
                                    "gracePeriodSeconds": 3}]
    assert app["readinessChecks"][0]["portName"] == "http"
    assert app["upgradeStrategy"] == {"minimumHealthCapacity": 0.75, "maximumOverCapacity": 0.0}
    assert app["labels"][DEPLOYMENT_TIMEOUT_LABEL] == "120"
    assert ["disk", "IS", "ssd"] in app["constraints"]
    assert ["hostname", "IS", "agent2"] in app["constraints"]
    assert ["hostname", "UNIQUE"] in app["constraints"]
    parse_app(app)  # and it is a valid app


def test_recreate_and_commands() -> None:
    doc = deployment(strategy={"type": "Recreate"})
    c = doc["spec"]["template"]["spec"]["containers"][0]
    c["command"], c["args"] = ["sh", "-c"], ["echo 'hi there' && sleep 1"]
    [app] = translate([doc]).apps
    assert app["upgradeStrategy"] == {"minimumHealthCapacity": 0.0, "maximumOverCapacity": 0.0}
    assert app["cmd"] == "sh -c 'echo '\"'\"'hi there'\"'\"' && sleep 1'"
    del c["command"]
    [app] = translate([doc]).apps
    assert app["args"] == ["echo 'hi there' && sleep 1"] and "cmd" not in app


def test_services_match_by_selector_and_target_port_name() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "front"},
               "spec": {"selector": {"app": "web"}, "type": "NodePort",
                        "ports": [{"port": 8080, "targetPort": "http"}]}}
    lonely = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nobody"},
              "spec": {"selector": {"app": "none"}, "ports": [{"port": 1}]}}
    out = translate([service, deployment(), lonely])
    [app] = out.apps
    assert app["container"]["portMappings"][0]["servicePort"] == 8080
    assert app["labels"][SERVICE_LABEL] == "front"
    assert any("Service front: spec.type" in w for w in out.warnings)
    assert any("Service nobody: its selector matches no workload" in w for w in out.warnings)


def test_plain_app_documents_pass_through_and_unknown_kinds_are_skipped() -> None:
    out = translate([{"id": "/x", "cmd": "sleep 1"}, None,
                     {"kind": "StatefulSet", "metadata": {"name": "db"}}])
    assert out.apps == [{"id": "/x", "cmd": "sleep 1"}]
    assert out.warnings == ["document 3: kind 'StatefulSet' (db) is not supported; skipped"]
    with pytest.raises(ManifestError, match="image"):
        bad = deployment()
        del bad["spec"]["template"]["spec"]["containers"][0]["image"]
        translate([bad])
