"""A test backend run as a task: ``backend.py PORT NAME``.

It creates the file ``ready`` in its working directory once it listens.  Each
connection is greeted with ``NAME PID`` and then echoed line by line.  The line
``SICK`` creates the file ``sick`` in the working directory (the task's sandbox),
which the tests' COMMAND health check (``test ! -e sick``) then fails on.  On SIGTERM
it stops accepting but lets open connections finish (up to 60 s): a draining backend.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path


async def main(port: int, name: str) -> None:
    open_conns: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        open_conns.add(writer)
        try:
            writer.write(f"{name} {os.getpid()}\n".encode())
            await writer.drain()
            while line := await reader.readline():
                if line.strip() == b"SICK":
                    Path("sick").touch()
                writer.write(line)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            open_conns.discard(writer)
            writer.close()

    server = await asyncio.start_server(handle, "0.0.0.0", port)
    Path("ready").touch()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.close()
    for _ in range(1200):
        if not open_conns:
            break
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
