"""A live, read-only web view of a Cinema cluster (the cinema-dashboard distribution).

Members and their status over time, which actors live where, mailbox depths and message rates
per actor type, recent failures with their tracebacks: read from every node's
``cinema.observe.stats`` extension (over the node's own port, behind the cluster's secret),
served as one page that updates itself through server-sent events.

Start it against any cluster with ``python -m cinema.dashboard --seed HOST:PORT`` (or the
``cinema-dashboard`` command), or from a program (a node serving it for itself)::

    async with Dashboard([node.addr], secret=secret) as dashboard:
        print("dashboard at", dashboard.url)
"""

from ._app import DEFAULT_PORT as DEFAULT_PORT
from ._app import Dashboard as Dashboard
from ._app import DashboardError as DashboardError
from ._app import create_app as create_app
from ._collector import Collector as Collector

__all__ = ["DEFAULT_PORT", "Collector", "Dashboard", "DashboardError", "create_app"]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("cinema.dashboard._"):
        _obj.__module__ = __name__
del _name, _obj
