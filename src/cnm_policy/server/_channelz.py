"""How many calls a grpc server's transport has received, read from grpc's channelz registry.

grpc's `stop()` drops the calls its transport has received but not yet handed to a handler
thread (their callers see CANCELLED), and a busy sidecar can hold many such calls: grpc's one
polling thread hands them over one at a time and competes for the GIL with the workers. The
sidecar's drain waits until the transport's count of received calls (channelz ``callsStarted``)
is matched by the calls handed over. channelz is grpc's standard introspection, on by default;
its Python entry points live in grpc's C extension (the `grpcio-channelz` package wraps them).
Any failure here reads as "unknown", and the drain then does not wait.
"""

from __future__ import annotations

import json
from typing import Any

try:
    from grpc._cython import cygrpc as _cygrpc  # type: ignore[attr-defined]

    _core: Any = _cygrpc  # grpcio-channelz reads channelz through it too
except ImportError:  # pragma: no cover - a grpc without it: the drain does not wait
    _core = None

__all__ = ["calls_started", "server_ids"]


def server_ids() -> set[int]:
    """The channelz ids of the grpc servers alive in this process (empty when unknown)."""
    try:
        servers = json.loads(_core.channelz_get_servers(0)).get("server", [])
        return {int(server["ref"]["serverId"]) for server in servers}
    except Exception:  # channelz off, or its format changed: unknown
        return set()


def calls_started(server_id: int) -> int | None:
    """How many calls server `server_id` has received so far, or None when unknown."""
    try:
        server = json.loads(_core.channelz_get_server(server_id))["server"]
        return int(server["data"].get("callsStarted", 0))
    except Exception:  # the server is gone, channelz is off, or its format changed
        return None
