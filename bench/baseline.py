"""The benchmark's baseline: a bare aiohttp server with a constant JSON reply, on the loop mockcre serves with.

    python bench/baseline.py PORT
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from mockcre.faces.core import new_loop

REPLY = b'{"seq_no":"1","code":"0","message":"success"}'


async def constant(request: web.BaseRequest) -> web.Response:
    await request.read()
    return web.Response(body=REPLY, content_type="application/json")


def main(port: int) -> None:
    loop = new_loop()
    asyncio.set_event_loop(loop)
    server = web.Server(constant, loop=loop, access_log=None)
    loop.run_until_complete(loop.create_server(server, "127.0.0.1", port, backlog=4096))
    loop.run_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]))
