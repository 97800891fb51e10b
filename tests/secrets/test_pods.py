"""A Kubernetes Pod reading a Secret, applied with ``mesoslite apply -f``, runs as a
Marathon pod on the real engine: its container gets the value as an environment
variable and as a file of a secret volume, and no API answer shows the value."""

from __future__ import annotations

import aiohttp
import pytest

from mesoslite.testing.poll import wait_for
from tests.secrets.conftest import Stack, cli
from tests.services.test_svc_kube_e2e import pod_page

pytestmark = [pytest.mark.asyncio, pytest.mark.docker]


SECRET_POD = """\
apiVersion: v1
kind: Secret
metadata: {name: db-credentials}
stringData: {password: s3cret-value-42}
---
apiVersion: v1
kind: Pod
metadata: {name: reads-a-secret}
spec:
  volumes:
  - name: www
    emptyDir: {}
  - name: creds
    secret: {secretName: db-credentials}
  containers:
  - name: web
    image: mesoslite/busybox:latest
    command: ["sh", "-c"]
    args: ["echo \\"$PASSWORD\\" > /www/env.txt; cp /etc/creds/password /www/file.txt;
            exec httpd -f -p 8080 -h /www"]
    env:
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: db-credentials, key: password}}
    ports: [{name: http, containerPort: 8080}]
    volumeMounts:
    - {name: www, mountPath: /www}
    - {name: creds, mountPath: /etc/creds}
"""


async def test_a_pod_reads_a_secret_by_env_and_volume(stack: Stack) -> None:
    services, master = stack.services_server.url, stack.cluster.master_url
    manifest = stack.tmp / "secret-pod.yaml"
    manifest.write_text(SECRET_POD)
    code, out, err = await cli(master, "apply", "-f", str(manifest), "--server", services,
                               "--batch", stack.batch_server.url)
    assert code == 0, err
    assert "pod /reads-a-secret configured" in out, out
    assert "s3cret-value-42" not in out + err

    env = await wait_for(lambda: pod_page(services, "/reads-a-secret", "/env.txt"), 120,
                         interval=0.5, message="the pod to serve its secret")
    assert env.strip() == "s3cret-value-42"
    assert (await pod_page(services, "/reads-a-secret", "/file.txt")) == "s3cret-value-42"
    for url in (f"{services}/v2/pods/reads-a-secret", f"{services}/v2/pods/::status",
                f"{master}/master/state"):
        async with aiohttp.ClientSession() as s, s.get(url) as r:
            assert "s3cret-value-42" not in await r.text(), url
