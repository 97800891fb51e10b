"""FrameworkHost: start in order, stop in reverse, one failure does not stop others."""

from __future__ import annotations

from frameworks.common.hosting import FrameworkHost, HostedFramework


class Fake:
    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail

    async def start(self) -> str:
        if self.fail:
            raise RuntimeError("port in use")
        self.log.append(f"start {self.name}")
        return f"http://{self.name}"

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")


async def test_start_stop_order_and_failures() -> None:
    log: list[str] = []
    host = FrameworkHost()
    assert isinstance(Fake("a", log), HostedFramework)
    assert await host.start(Fake("a", log)) == "http://a"
    assert await host.start(Fake("bad", log, fail=True)) is None
    assert await host.start(Fake("b", log)) == "http://b"
    await host.stop()
    assert log == ["start a", "start b", "stop b", "stop a"]
    assert host.failed == {"bad": "port in use"}
