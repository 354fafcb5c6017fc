"""Cinema: typed actors for Python on anyio.

Layout: the implementation lives in private modules (``_system``, ``_context``, ``_dispatcher``
and friends); this module only re-exports the public names. ``cinema.remote`` and
``cinema.cluster`` ship in their own distributions (cinema-remote, cinema-cluster).
"""

# cinema-remote and cinema-cluster install their subpackages into this package's namespace from
# separate distributions. extend_path lets an editable install of one of them (whose files live
# in another source tree) be found next to this package; without it only wheels would work.
# (Spelled so that griffe, which builds the API reference, still reads this module's names: it
# takes the one-line `__import__("pkgutil")` form for a namespace package without content.)
from pkgutil import extend_path as _extend_path

__path__ = _extend_path(__path__, __name__)

from . import _siblings
from ._actor import Actor as Actor
from ._actor import StreamHandler as StreamHandler
from ._addr import Addr as Addr
from ._context import Context as Context
from ._errors import ActorFailed as ActorFailed
from ._errors import ActorStopped as ActorStopped
from ._errors import CinemaError as CinemaError
from ._errors import Deadlock as Deadlock
from ._errors import HandlerDefinitionError as HandlerDefinitionError
from ._errors import MailboxFull as MailboxFull
from ._errors import NameTaken as NameTaken
from ._errors import ReplyError as ReplyError
from ._errors import UnhandledMessage as UnhandledMessage
from ._handler import handler as handler
from ._message import DeadLetter as DeadLetter
from ._message import Message as Message
from ._message import Terminated as Terminated
from ._plugins import PluginLoadError as PluginLoadError
from ._plugins import PluginNotFound as PluginNotFound
from ._plugins import PluginRegistry as PluginRegistry
from ._plugins import load_plugins as load_plugins
from ._stats import ActorTypeStats as ActorTypeStats
from ._stats import FailureRecord as FailureRecord
from ._stats import SystemStats as SystemStats
from ._supervision import SupervisorStrategy as SupervisorStrategy
from ._system import ActorSystem as ActorSystem
from ._timers import TimerHandle as TimerHandle

__all__ = [
    "Actor",
    "ActorFailed",
    "ActorStopped",
    "ActorSystem",
    "ActorTypeStats",
    "Addr",
    "CinemaError",
    "Context",
    "DeadLetter",
    "Deadlock",
    "FailureRecord",
    "HandlerDefinitionError",
    "MailboxFull",
    "Message",
    "NameTaken",
    "PluginLoadError",
    "PluginNotFound",
    "PluginRegistry",
    "ReplyError",
    "StreamHandler",
    "SupervisorStrategy",
    "SystemStats",
    "Terminated",
    "TimerHandle",
    "UnhandledMessage",
    "handler",
    "load_plugins",
]

__version__ = "0.1.0"

# Reprs and docs say cinema.Actor, not cinema._actor.Actor.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("cinema._"):
        _obj.__module__ = __name__
del _name, _obj

# `import cinema.remote` without cinema-remote installed names the distribution to install.
_siblings.install()

# No NullHandler on the "cinema" logger, on purpose: with no logging configured, crash reports
# (the "cinema.crash" logger, level ERROR) reach stderr through Python's last-resort handler, as
# asyncio's "Task exception was never retrieved" does. Configuring logging routes them; see the
# README's "Failure semantics" for how to silence them.
