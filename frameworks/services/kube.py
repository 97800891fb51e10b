"""Kubernetes manifests -> what mesoslite runs: apps, Marathon pods, batch jobs, config
maps and secrets.

``translate(documents, keys)`` takes parsed YAML documents (any mix of Kubernetes
objects, ``kind: List`` already flattened by the caller or not, and plain Marathon app
or pod definitions) and returns a ``Translation``: the objects to create, in the order
to create them (config maps and secrets first), and warnings.  Pure: ``keys`` answers
which keys a stored object has (``envFrom`` needs them) for objects not in the
documents; the CLI asks the master.

| kind | becomes |
|---|---|
| Deployment, ReplicationController, ReplicaSet | an app (one container) or a pod |
| Pod | a Marathon pod (every container, one task group) |
| Job, CronJob | a batch job (a Job also starts a run) |
| ConfigMap, Secret | the master's config map or secret |
| Service | service ports and a label on the apps it selects |
| Namespace | nothing of its own: objects in it go under ``/ns`` (``ns.name`` for flat names) |

Every field of an object that was not read is named in a warning
(``Deployment redis-master: spec.template.spec.serviceAccountName is not honoured``);
so is a kind that is not supported, and the rest of the documents still translate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from frameworks.services.kube_apps import app_from_pod, read_controller, with_deadline
from frameworks.services.kube_batch import batch_job
from frameworks.services.kube_fields import (
    ManifestError,
    Reader,
    cpu_quantity,
    memory_quantity,
)
from frameworks.services.kube_pods import marathon_pod
from frameworks.services.kube_podspec import Context, KeyLookup, Names, port_index, read_pod
from frameworks.services.kube_stored import stored_body, stored_keys

__all__ = ["SERVICE_LABEL", "ManifestError", "Translated", "Translation", "cpu_quantity",
           "flatten", "memory_quantity", "translate"]

SERVICE_LABEL = "MESOSLITE_SERVICE"
API_VERSIONS = {
    "Deployment": ("apps/v1", "apps/v1beta1", "apps/v1beta2", "extensions/v1beta1", "v1"),
    "ReplicaSet": ("apps/v1", "apps/v1beta2", "extensions/v1beta1"),
    "ReplicationController": ("v1",), "Pod": ("v1",), "Service": ("v1",),
    "ConfigMap": ("v1",), "Secret": ("v1",), "Namespace": ("v1",),
    "Job": ("batch/v1",), "CronJob": ("batch/v1", "batch/v1beta1", "batch/v2alpha1"),
}
CONTROLLERS = ("Deployment", "ReplicationController", "ReplicaSet")
# The order objects are created in (referenced before referencing); deleted reversed.
ORDER = ("namespace", "config", "secret", "app", "pod", "job")


@dataclass
class Translated:
    """One object to create: ``kind`` app, pod, job, config, secret or namespace;
    ``id`` its path (``/ns/web``) or flat name; ``body`` the request body."""

    kind: str
    id: str
    body: dict[str, Any]
    source: str  # the document it came from: "ReplicationController redis-master"
    run: bool = False  # jobs: start a run when the job is created
    labels: dict[str, str] = field(default_factory=dict)  # pod labels, for Services

    def line(self) -> str:
        return f"{self.kind} {self.id} (from {self.source})"


@dataclass
class Translation:
    objects: list[Translated] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [o.body for o in self.objects if o.kind == kind]

    @property
    def apps(self) -> list[dict[str, Any]]:
        return self.of("app")

    @property
    def pods(self) -> list[dict[str, Any]]:
        return self.of("pod")

    @property
    def jobs(self) -> list[dict[str, Any]]:
        return self.of("job")


def flatten(documents: Iterable[Any]) -> list[Any]:
    """``kind: List`` (and ``*List``) documents replaced by their items."""
    out: list[Any] = []
    for doc in documents:
        if isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") \
                and isinstance(doc.get("items"), list):
            out += flatten(doc["items"])
        else:
            out.append(doc)
    return out


def translate(documents: list[Any], keys: KeyLookup | None = None) -> Translation:
    """What the documents create, config maps and secrets first; see the module doc."""
    out = Translation()
    documents = flatten(documents)
    lookup = _key_lookup(documents, keys)
    services: list[tuple[dict[str, Any], Names]] = []
    for i, doc in enumerate(documents):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ManifestError(f"document {i + 1}: expected a mapping, got {type(doc).__name__}")
        kind = doc.get("kind")
        if kind is None and "id" in doc:
            # A definition as Marathon takes it: a pod has containers, an app not.
            what = "pod" if isinstance(doc.get("containers"), list) else "app"
            out.objects.append(Translated(what, str(doc["id"]), doc, f"{what} definition"))
        elif kind == "Service":
            services.append((doc, _names(doc)))
        elif kind in API_VERSIONS:
            out.objects += _object(doc, str(kind), out.warnings, lookup)
        else:
            name = (doc.get("metadata") or {}).get("name") if isinstance(
                doc.get("metadata"), dict) else None
            out.warnings.append(f"document {i + 1}: kind {kind!r}"
                                f"{f' ({name})' if name else ''} is not supported; skipped")
    for doc, names in services:
        _service(doc, names, out)
    out.objects.sort(key=lambda o: ORDER.index(o.kind))
    return out


def _names(doc: dict[str, Any]) -> Names:
    meta = doc.get("metadata")
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    return Names(str(namespace or "default"))


def _key_lookup(documents: list[Any], fallback: KeyLookup | None) -> KeyLookup:
    """Keys of the config maps and secrets in the documents, else ``fallback``'s."""
    known: dict[tuple[str, str], list[str]] = {}
    for doc in documents:
        if isinstance(doc, dict) and doc.get("kind") in ("ConfigMap", "Secret"):
            meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
            kind = "config" if doc["kind"] == "ConfigMap" else "secret"
            known[(kind, _names(doc).flat(str(meta.get("name"))))] = stored_keys(doc)

    def lookup(kind: str, name: str) -> list[str] | None:
        if (kind, name) in known:
            return known[(kind, name)]
        return fallback(kind, name) if fallback is not None else None

    return lookup


def _object(doc: dict[str, Any], kind: str, warnings: list[str], keys: KeyLookup
            ) -> list[Translated]:
    r = Reader(doc)
    name = r.get("metadata.name")
    if not isinstance(name, str) or not name:
        raise ManifestError(f"{kind}: metadata.name is required")
    r.get("kind")
    names = Names(str(r.get("metadata.namespace") or "default"))
    ctx = Context(kind, name, warnings, names, keys)
    version = r.get("apiVersion")
    if version not in API_VERSIONS[kind]:
        ctx.warn(f"apiVersion {version!r} read as {API_VERSIONS[kind][0]}")
    made = _make(r, ctx)
    warnings += [f"{ctx.where}: {p} is not honoured" for p in r.unread(skip=("status",))]
    return made


def _make(r: Reader, ctx: Context) -> list[Translated]:
    kind, names, source = ctx.kind, ctx.names, ctx.where
    if kind == "Namespace":
        return [Translated("namespace", f"/{ctx.name}", {"id": f"/{ctx.name}"}, source)]
    if kind in ("ConfigMap", "Secret"):
        what = "config" if kind == "ConfigMap" else "secret"
        return [Translated(what, names.flat(ctx.name), stored_body(r, ctx), source)]
    if kind in ("Job", "CronJob"):
        job = batch_job(r, ctx)
        return [Translated("job", job.job["id"], job.job, source, run=job.run)]
    if kind == "Pod":
        pod = read_pod(r, "spec", ctx)
        labels = {**{str(k): str(v) for k, v in (r.take("metadata.labels") or {}).items()},
                  **pod.labels}
        body = marathon_pod(pod, names.path(ctx.name), 1, labels, ctx)
        return [Translated("pod", body["id"], body, source, labels=labels)]
    ctl = read_controller(r, ctx)
    path = names.path(ctx.name)
    if len(ctl.pod.containers) > 1:
        body = marathon_pod(ctl.pod, path, ctl.replicas, ctl.labels, ctx, ctl.strategy)
        if ctl.deadline is not None:
            ctx.warn("spec.progressDeadlineSeconds is not honoured for pods")
        return [Translated("pod", path, body, source, labels=ctl.pod.labels)]
    app = with_deadline(app_from_pod(ctl.pod, path, ctl.replicas, ctl.labels, ctx), ctl)
    return [Translated("app", path, app, source, labels=ctl.pod.labels)]


# ---------------------------------------------------------------- services


def _service(doc: dict[str, Any], names: Names, out: Translation) -> None:
    """A Service's ports become the service ports of the apps it selects."""
    r = Reader(doc)
    name = r.get("metadata.name")
    where = f"Service {name}"
    for path in ("apiVersion", "kind", "metadata.labels", "metadata.namespace"):
        r.take(path)
    selector = {str(k): str(v) for k, v in (r.take("spec.selector") or {}).items()}
    matched = [o for o in out.objects if o.kind in ("app", "pod") and o.labels
               and o.id.rsplit("/", 1)[0] == names.path("x").rsplit("/", 1)[0]
               and selector and all(o.labels.get(k) == v for k, v in selector.items())]
    if not matched:
        out.warnings.append(f"{where}: its selector matches no workload in these documents")
    taken = {pm.get("servicePort") for o in out.objects if o.kind == "app"
             for pm in (o.body.get("container") or {}).get("portMappings", [])
             if pm.get("servicePort")}
    for obj in matched:
        if obj.kind == "pod":
            out.warnings.append(f"{where}: selects pod {obj.id}; Marathon pods have no "
                                "service ports (reach it at its endpoints' host ports)")
            continue
        obj.body["labels"][SERVICE_LABEL] = str(name)
        _service_ports(r, where, obj, taken, out.warnings)
    out.warnings += [f"{where}: {p} is not honoured" for p in r.unread(skip=("status",))]


def _service_ports(r: Reader, where: str, obj: Translated, taken: set[Any],
                   warnings: list[str]) -> None:
    from frameworks.services.kube_podspec import Port

    mappings = obj.body["container"]["portMappings"]
    ports = [Port(m["containerPort"], name=m.get("name")) for m in mappings]
    for i, _ in enumerate(r.get("spec.ports") or []):
        p = f"spec.ports[{i}]"
        port = r.get(f"{p}.port")
        target = r.get(f"{p}.targetPort", port)
        r.get(f"{p}.protocol")
        r.get(f"{p}.name")
        index = port_index(target, ports)
        if index is None:
            warnings.append(f"{where}: {p}.targetPort {target} is not a container port "
                            f"of {obj.id}")
            continue
        if int(port) in taken:
            # Service ports are cluster-wide here (one proxy port per service port),
            # where each Kubernetes Service has an address of its own.
            warnings.append(f"{where}: port {port} is another Service's in these "
                            f"documents; {obj.id} gets a free service port instead")
            continue
        taken.add(int(port))
        mappings[index]["servicePort"] = int(port)
