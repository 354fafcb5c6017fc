"""Sends to the actors of actors.py; the tests edit this file too."""

from actors import Farewell, Greet, Greeter

from cinema import Addr


async def talk(addr: Addr[Greeter]) -> None:
    addr.do_send(Greet())
    addr.do_send(Farewell())
