"""Online feature stores: the latest feature row per entity and view, read when serving.

``sqlite:///path/online.db`` is a SQLite file (the default, in the project's state folder);
``redis://host:6379/0`` (or ``rediss://`` for TLS, with ``?prefix=NAME`` to share a server) is
Redis (``pip install 'decisionloop[redis]'``). Choose one by URL with
:func:`decisionloop.backends.registry.open_online_store`; implementations load on first use.
"""

from __future__ import annotations

from decisionloop.backends.online.base import OnlineRow, OnlineStore

__all__ = ["OnlineRow", "OnlineStore"]
