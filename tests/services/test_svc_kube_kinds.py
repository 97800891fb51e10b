"""Kubernetes kinds beyond Deployment: controllers, Pods (Marathon pods, checked
against Marathon's pod schema), Jobs and CronJobs (batch jobs the batch framework
accepts), ConfigMaps and Secrets, Namespaces, Lists, and the container fields
(probes, envFrom, fieldRef, emptyDir)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from frameworks.batch.model import parse_job
from frameworks.services.kube import SERVICE_LABEL, ManifestError, translate
from frameworks.services.validation import parse_app
from tests.services.marathon_pod_schema import problems

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "kubernetes"


def load(*paths: Path) -> list:
    return [doc for p in paths for doc in yaml.safe_load_all(p.read_text())]


def pod_doc(containers: list[dict], **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "duo", "labels": {"a": "b"}},
            "spec": {"containers": containers, **spec}}


def container(name: str, **extra: object) -> dict:
    return {"name": name, "image": "mesoslite/busybox:latest",
            "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}, **extra}


def test_the_guestbook_translates_to_three_apps_with_their_services() -> None:
    out = translate(load(*sorted((EXAMPLES / "guestbook").glob("*.yaml"))))
    apps = {a["id"]: a for a in out.apps}
    assert {k: a["instances"] for k, a in apps.items()} == {
        "/redis-master": 1, "/redis-slave": 2, "/frontend": 3}
    assert apps["/redis-master"]["container"]["docker"]["image"] == "k8s.gcr.io/redis:e2e"
    assert apps["/redis-master"]["container"]["portMappings"][0]["servicePort"] == 6379
    assert apps["/frontend"]["container"]["portMappings"][0]["servicePort"] == 80
    assert apps["/redis-slave"]["labels"][SERVICE_LABEL] == "redis-slave"
    # Both redis Services ask for 6379; service ports are cluster-wide here.
    assert "servicePort" not in apps["/redis-slave"]["container"]["portMappings"][0]
    assert out.warnings == [("Service redis-slave: port 6379 is another Service's in these "
                            "documents; /redis-slave gets a free service port instead")]
    for app in out.apps:
        assert parse_app(app)[1] == []


def test_a_two_container_pod_is_a_marathon_pod_sharing_an_empty_dir() -> None:
    out = translate(load(EXAMPLES / "two-container-pod.yaml"))
    assert out.warnings == [] and out.apps == []
    [pod] = out.pods
    assert problems(pod) == []
    assert pod["networks"] == [{"mode": "container/bridge"}]
    assert pod["volumes"] == [{"name": "shared"}]
    web, writer = pod["containers"]
    assert web["volumeMounts"] == [{"name": "shared", "mountPath": "/www", "readOnly": False}]
    assert writer["volumeMounts"][0]["name"] == "shared"
    assert web["endpoints"] == [{"name": "http", "containerPort": 8080, "hostPort": 0,
                                 "protocol": ["tcp"]}]
    # readiness without liveness: a check that gates health but never kills
    assert web["healthCheck"]["http"] == {"endpoint": "http", "path": "/index.html",
                                          "scheme": "HTTP"}
    assert web["healthCheck"]["maxConsecutiveFailures"] == 0
    assert "127.0.0.1:8080" in writer["exec"]["command"]["shell"]


def test_multi_container_templates_become_pods_and_single_ones_stay_apps() -> None:
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "web"},
          "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "web"}},
                                               "spec": {"containers": [container("web")]}}}}
    deployment = copy.deepcopy(rc) | {"apiVersion": "apps/v1", "kind": "Deployment"}
    deployment["metadata"] = {"name": "both", "namespace": "prod"}
    spec = deployment["spec"]
    spec["strategy"] = {"type": "Recreate"}
    spec["template"]["spec"]["containers"].append(container(
        "side", command=["sleep", "1000"],
        livenessProbe={"exec": {"command": ["true"]}, "periodSeconds": 5},
        readinessProbe={"tcpSocket": {"port": 9000}},
        ports=[{"containerPort": 9000}]))
    spec["template"]["spec"]["nodeSelector"] = {"rack": "r1"}
    out = translate([rc, deployment])
    assert [a["id"] for a in out.apps] == ["/web"] and out.apps[0]["instances"] == 3
    [pod] = out.pods
    assert problems(pod) == [], problems(pod)
    assert pod["id"] == "/prod/both" and pod["scaling"] == {"kind": "fixed", "instances": 3}
    assert pod["scheduling"] == {
        "upgrade": {"minimumHealthCapacity": 0.0, "maximumOverCapacity": 0.0},
        "placement": {"constraints": [{"fieldName": "rack", "operator": "IS", "value": "r1"}]}}
    side = pod["containers"][1]
    assert side["healthCheck"]["exec"] == {"command": {"shell": "true"}}
    assert side["check"] == {"tcp": {"endpoint": "side-9000"}, "intervalSeconds": 10,
                             "timeoutSeconds": 1, "delaySeconds": 0}


def test_a_job_reading_a_config_map_is_a_batch_job() -> None:
    out = translate(load(EXAMPLES / "job-configmap.yaml"))
    assert out.warnings == []
    assert [(o.kind, o.id) for o in out.objects] == [("config", "greeting"),
                                                     ("job", "print-greeting")]
    assert out.objects[0].body == {"data": {"message": "hello from the config map",
                                            "LEVEL": "debug"}}
    job_obj = out.objects[1]
    assert job_obj.run is True
    job = job_obj.body
    assert job["env"]["MESSAGE"] == {"config": "greeting", "key": "message"}
    assert job["env"]["LEVEL"] == {"config": "greeting", "key": "LEVEL"}  # envFrom
    assert job["secret_files"] == [{"path": "/etc/greeting", "config": "greeting"}]
    spec = parse_job(job)  # the batch framework takes it as it is
    assert spec.steps[0].retries == 2 and spec.steps[0].timeout == 120
    assert spec.steps[0].image == "mesoslite/busybox:latest"


def test_cron_jobs_have_schedules_and_do_not_run_at_once() -> None:
    cron = {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": "ops"},
            "spec": {"schedule": "0 2 * * *", "timeZone": "Europe/Berlin",
                     "concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 300,
                     "successfulJobsHistoryLimit": 3,
                     "jobTemplate": {"spec": {"completions": 4, "parallelism": 2,
                                              "template": {"spec": {
                                                  "restartPolicy": "OnFailure",
                                                  "containers": [container(
                                                      "work", args=["echo", "hi"])]}}}}}}
    out = translate([cron])
    [obj] = out.objects
    assert obj.kind == "job" and obj.id == "ops.nightly" and obj.run is False
    assert obj.body["schedule"] == {"cron": "0 2 * * *", "timezone": "Europe/Berlin",
                                    "concurrency_policy": "FORBID", "enabled": True,
                                    "starting_deadline_seconds": 300}
    spec = parse_job(obj.body)
    assert (spec.steps[0].completions, spec.steps[0].parallelism) == (4, 2)
    assert spec.steps[0].retries == 6  # Kubernetes' default backoffLimit
    assert spec.steps[0].args == ("echo", "hi")
    assert out.warnings == ["CronJob nightly: spec.successfulJobsHistoryLimit is not honoured"]


def test_secrets_namespaces_lists_and_unsupported_kinds() -> None:
    docs = [{"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "prod"},
         "type": "Opaque", "data": {"password": "czNjcmV0"}, "stringData": {"user": "app"}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "pg"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "blob"},
         "binaryData": {"x": "AA=="}}]}]
    out = translate(docs)
    assert [(o.kind, o.id) for o in out.objects] == [("namespace", "/prod"),
                                                     ("config", "blob"), ("secret", "prod.db")]
    assert out.objects[2].body == {"data": {"password": "czNjcmV0"},
                                   "string_data": {"user": "app"}}
    assert out.warnings == [
        "document 3: kind 'StatefulSet' (pg) is not supported; skipped",
        "ConfigMap blob: binaryData is not honoured (config values are text; use a Secret)"]


def test_container_fields_env_from_field_ref_probes_and_empty_dir() -> None:
    c = container("web", command=["sh", "-c"], args=["exec httpd -f -p 80"],
                  ports=[{"containerPort": 80, "name": "http"}],
                  envFrom=[{"configMapRef": {"name": "settings"}, "prefix": "APP_"},
                           {"secretRef": {"name": "elsewhere"}},
                           {"secretRef": {"name": "unknown"}}],
                  env=[{"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                       {"name": "NS", "valueFrom": {"fieldRef": {
                           "fieldPath": "metadata.namespace"}}},
                       {"name": "NODE_IP", "valueFrom": {"fieldRef": {
                           "fieldPath": "status.hostIP"}}},
                       {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                  readinessProbe={"tcpSocket": {"port": "http"}, "periodSeconds": 2},
                  startupProbe={"httpGet": {"port": 80, "path": "/up"}, "failureThreshold": 30,
                                "periodSeconds": 2},
                  volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}])
    doc = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": "shop"},
           "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {
               "containers": [c], "volumes": [{"name": "scratch", "emptyDir": {}}]}}}}
    settings = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": "shop"},
                "data": {"level": "debug", "bad-key": "x"}}
    asked = []

    def keys(kind: str, name: str) -> list[str] | None:
        asked.append((kind, name))
        return ["token"] if name == "shop.elsewhere" else None

    out = translate([doc, settings], keys)
    assert asked == [("secret", "shop.elsewhere"), ("secret", "shop.unknown")]
    [app] = out.apps
    assert app["id"] == "/shop/web"
    assert app["env"]["APP_level"] == {"secret": "config-shop.settings-level"}
    assert app["env"]["token"] == {"secret": "shop.elsewhere-token"}
    assert app["env"]["NAME"] == "web" and app["env"]["NS"] == "shop"
    assert app["cmd"] == ('export NODE_IP="$HOST" NODE="$MESOSLITE_HOSTNAME"; '
                          "exec sh -c 'exec httpd -f -p 80'")
    assert app["container"]["volumes"] == [{"containerPath": "/scratch",
                                            "hostPath": "emptydir-scratch", "mode": "RW"}]
    [live, ready] = app["healthChecks"]
    assert live["protocol"] == "HTTP" and live["path"] == "/up"  # the startup probe
    assert ready["protocol"] == "TCP" and ready["maxConsecutiveFailures"] == 0
    assert ready["gracePeriodSeconds"] == 60  # the startup window
    text = "\n".join(out.warnings)
    assert "key 'bad-key' is not a valid variable name" in text
    assert "secretRef unknown: its keys are unknown" in text
    parsed, _ = parse_app(app)
    assert parsed.id == "/shop/web"


def test_field_refs_need_a_command_and_broken_documents_still_fail() -> None:
    c = container("web", env=[{"name": "IP", "valueFrom": {"fieldRef": {
        "fieldPath": "status.podIP"}}}])
    out = translate([pod_doc([c, container("two")])])
    assert any("env IP (fieldRef) need a command" in w for w in out.warnings)
    with pytest.raises(ManifestError, match="containers is empty"):
        translate([pod_doc([])])
    with pytest.raises(ManifestError, match="spec.schedule is required"):
        translate([{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "x"},
                    "spec": {"jobTemplate": {"spec": {"template": {"spec": {
                        "containers": [container("c")]}}}}}}])
