"""Use the loop:// transport through Cinema alone, once the plugin distribution is installed.

    pip install examples/transport_plugin      # registers the "cinema" entry point
    python examples/transport_plugin/demo.py

Nothing here imports the plugin: Cinema finds it by the address's scheme.
"""

from __future__ import annotations

from typing import Self

import anyio
from google.protobuf.wrappers_pb2 import StringValue

from cinema import Actor, ActorSystem, Context, handler
from cinema.remote import LocalNode, RemoteClient, RemoteServer, rpc

SHOUT = rpc(StringValue, StringValue)


class Shouter(Actor):
    @handler
    def shout(self, msg: StringValue, ctx: Context[Self]) -> StringValue:
        return StringValue(value=msg.value.upper())


async def main() -> None:
    async with ActorSystem() as system:
        print("transports:", sorted(system.plugins.transports))
        node = LocalNode("demo")
        node.serve("shouter", system.spawn(Shouter()))
        async with await RemoteServer.bind("loop://demo", node):
            conn = await system.plugins.transport("loop").connect("loop://demo")
            async with RemoteClient(conn) as client:
                remote = client.remote_addr(Shouter, "demo", "shouter")
                reply = await remote.call(SHOUT, StringValue(value="hello over loop://"))
                print(reply.value)


if __name__ == "__main__":
    anyio.run(main)
