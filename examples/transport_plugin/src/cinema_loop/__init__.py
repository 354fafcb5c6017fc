"""An example Cinema transport: in-process connections addressed as ``loop://<name>``.

Useful as a template for real transports and for tests that want remote semantics without
sockets. Frames travel as whole messages over anyio memory object streams, so this transport
needs no length-prefix framing.
"""

from ._transport import LoopTransport as LoopTransport

__all__ = ["LoopTransport"]
