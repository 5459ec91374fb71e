"""py-asyncio: the seed's asyncio design, in its own runtime -- Debian python3-websockets (asyncio), one event loop.

Speaks the whole wslab protocol. `wait` is asyncio.sleep (the loop serves others meanwhile); `block` is
time.sleep, the mistake that stalls every client of the loop. It exports no metrics: the lab measures it from
outside. Usage: python3 py_asyncio.py PORT [WORKERS]; WORKERS > 1 forks that many processes sharing the port
with SO_REUSEPORT (py-processes).
"""
import asyncio
import os
import signal
import sys

import websockets

from wslab_protocol import handle


async def serve_connection(ws, path=None):
    async for message in ws:
        if isinstance(message, bytes):
            await ws.send(message)
            continue
        pending = []
        reply = handle(message, lambda ms, text: pending.append((ms, text)) or None)
        if reply is not None:
            await ws.send(reply)
        for ms, text in pending:
            # a slow backend, waited for the loop's way: the reply goes out later, others are served meanwhile
            asyncio.get_running_loop().call_later(ms / 1000, lambda t=text: asyncio.ensure_future(send_quietly(ws, t)))


async def send_quietly(ws, text):
    try:
        await ws.send(text)
    except websockets.ConnectionClosed:
        pass


async def main(port, reuse_port):
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    # max_size 1 MiB, no compression, no pings: the lab's own designs' settings. backlog 4096 (somaxconn here) as
    # our designs listen: asyncio's default of 100 drops SYNs under a fast ramp (1 s retransmits, MACHINE.md), which
    # would measure the backlog instead of the design.
    async with websockets.serve(serve_connection, '127.0.0.1', port, max_size=1 << 20, ping_interval=None,
                                reuse_port=reuse_port, compression=None, backlog=4096):
        print('py-asyncio ready on %d (pid %d)' % (port, os.getpid()), flush=True)
        await stop


if __name__ == '__main__':
    port = int(sys.argv[1])
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    if workers <= 1:
        asyncio.run(main(port, False))
    else:
        children = []
        for _ in range(workers):
            pid = os.fork()
            if pid == 0:
                asyncio.run(main(port, True))
                os._exit(0)
            children.append(pid)
        signal.signal(signal.SIGTERM, lambda *_: [os.kill(c, signal.SIGTERM) for c in children])
        signal.signal(signal.SIGINT, lambda *_: [os.kill(c, signal.SIGTERM) for c in children])
        for c in children:
            os.waitpid(c, 0)
