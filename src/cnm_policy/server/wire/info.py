"""`GetPolicyInfo`: the serving bundle, its reload history, the cache counters and the limits."""

from __future__ import annotations

from cnm_policy.reload import ReloadStatus
from cnm_policy.server.limits import Limits
from cnm_policy.server.ports import CacheStatsView, SnapshotView
from cnm_policy.server.wire.convert import timestamp_from_epoch
from cnm_policy.v1 import policy_pb2 as pb

__all__ = ["policy_info_to_proto"]


def policy_info_to_proto(
    snapshot: SnapshotView,
    *,
    reload: ReloadStatus | None,
    cache: CacheStatsView | None,
    limits: Limits,
) -> pb.GetPolicyInfoResponse:
    """`GetPolicyInfo` for the serving snapshot, reload history and cache counters."""
    response = pb.GetPolicyInfoResponse(
        policy=pb.PolicyRef(name=snapshot.name, version=snapshot.version, digest=snapshot.digest),
        loaded_at=timestamp_from_epoch(snapshot.loaded_at),
        rule_count=snapshot.rule_count,
        source=snapshot.source,
        cache=pb.CacheStats(enabled=False),
        limits=pb.Limits(
            max_batch_items=limits.max_batch_items,
            max_attribute_depth=limits.max_attribute_depth,
            max_attribute_bytes=limits.max_attribute_bytes,
            max_message_bytes=limits.max_message_bytes,
        ),
    )
    if cache is not None:
        response.cache.CopyFrom(
            pb.CacheStats(
                enabled=True,
                hits=cache.hits,
                misses=cache.misses,
                evictions=cache.evictions,
                size=cache.size,
                maxsize=cache.maxsize,
                ttl_seconds=cache.ttl,
            )
        )
    if reload is not None:
        response.reload.CopyFrom(_reload_to_proto(reload))
    return response


def _reload_to_proto(status: ReloadStatus) -> pb.ReloadStatus:
    message = pb.ReloadStatus(
        last_error=status.last_error or "",
        successes=status.successes,
        failures=status.failures,
    )
    if status.last_attempt_at is not None:
        message.last_attempt_at.CopyFrom(timestamp_from_epoch(status.last_attempt_at))
    if status.last_success_at is not None:
        message.last_success_at.CopyFrom(timestamp_from_epoch(status.last_success_at))
    return message
