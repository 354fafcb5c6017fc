"""Testing actors: a pytest plugin and the helpers behind it.

Installed with cinema-core, the plugin (entry point ``pytest11``, name ``cinema``; disable it
with ``-p no:cinema``) gives every test these fixtures, for tests that anyio's pytest plugin
runs (``@pytest.mark.anyio``):

``actor_system``
    a running :class:`cinema.ActorSystem`, stopped after the test;
``probe``
    a :class:`Probe` in that system: hand ``probe.addr`` to the code under test, then
    ``await probe.expect(Reply)``, ``await probe.receive(3)``,
    ``await probe.expect_no_message()``;
``virtual_clock``
    the :class:`Clock` of a test that runs on virtual time (see :func:`virtual_time`);
``loopback_port``
    a free TCP port on 127.0.0.1 (see :func:`free_port`).

and these helpers, usable in any async code: :func:`eventually` (wait for a condition that has
no event), :func:`wait_stopped` (wait for an actor to stop for good), :func:`free_port`,
:func:`virtual_time` and :func:`current_clock`.

anyio's plugin runs each test on every installed backend (asyncio, and trio when it is
installed; anyio >= 4.12) unless an ``anyio_backend`` fixture says otherwise. cinema-remote adds
conformance suites for transport and serializer plugins (``cinema.remote.testing``), and
cinema-cluster an in-memory cluster fixture (``cinema.cluster.testing``).
"""

from ._clock import Clock as Clock
from ._clock import VirtualTimeEventLoop as VirtualTimeEventLoop
from ._clock import current_clock as current_clock
from ._clock import virtual_time as virtual_time
from ._ports import free_port as free_port
from ._probe import Probe as Probe
from ._waiting import eventually as eventually
from ._waiting import wait_stopped as wait_stopped

__all__ = [
    "Clock",
    "Probe",
    "VirtualTimeEventLoop",
    "current_clock",
    "eventually",
    "free_port",
    "virtual_time",
    "wait_stopped",
]
