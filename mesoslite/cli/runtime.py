"""Shared plumbing for long-running commands: logging and signal-driven shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

import click

from mesoslite.logfields import JsonFormatter, TextFormatter

__all__ = ["JsonFormatter", "log_options", "run_until_signalled", "setup_logging"]


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def log_options(f: Callable) -> Callable:
    f = click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
                     default="info", show_default=True, help="Least severe level logged.")(f)
    f = click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
                     show_default=True, help="'json' writes one JSON object a line.")(f)
    return f


def run_until_signalled(start: Callable[[], Awaitable[object]],
                        stop: Callable[[], Awaitable[object]],
                        ended: Callable[[], Awaitable[object]] | None = None) -> None:
    """Run ``start``, wait for SIGINT/SIGTERM (or for ``ended`` to return: the
    component stopped by itself, e.g. a deposed master), then run ``stop`` once.
    Exits with status 1 when it ended by itself."""

    async def main() -> bool:
        loop = asyncio.get_running_loop()
        signalled = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, signalled.set)
        await start()
        waits = {asyncio.create_task(signalled.wait())}
        if ended is not None:
            waits.add(asyncio.create_task(ended()))
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        await stop()
        return signalled.is_set()

    try:
        by_signal = asyncio.run(main())
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    if not by_signal:
        sys.exit(1)
