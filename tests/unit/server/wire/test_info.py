"""GetPolicyInfo: the serving snapshot, the reload history, the cache counters and the limits."""

from __future__ import annotations

from cnm_policy.reload import ReloadStatus
from cnm_policy.server.limits import Limits
from cnm_policy.server.wire import convert
from cnm_policy.server.wire.info import policy_info_to_proto

LIMITS = Limits()


class _Snapshot:
    name = "cnm"
    version = "1.2.0"
    digest = "sha256:" + "cd" * 32
    rule_count = 12
    loaded_at = 1_767_225_600.0
    source = "policies/cnm"


class _Stats:
    hits = 5
    misses = 2
    evictions = 1
    size = 3
    maxsize = 100
    ttl = 30.0


def test_policy_info_reports_snapshot_reload_error_cache_and_limits() -> None:
    """GetPolicyInfo carries the snapshot identity, the last reload error and cache counters."""
    status = ReloadStatus(last_attempt_at=10.0, last_error="bundle is invalid", failures=1)
    info = policy_info_to_proto(_Snapshot(), reload=status, cache=_Stats(), limits=LIMITS)
    assert (
        info.policy.name,
        info.policy.version,
        info.rule_count,
        info.source,
    ) == ("cnm", "1.2.0", 12, "policies/cnm")
    assert _Snapshot.loaded_at == convert.timestamp_to_epoch(info.loaded_at)
    assert (
        info.reload.last_error,
        info.reload.failures,
        info.reload.HasField("last_success_at"),
    ) == ("bundle is invalid", 1, False)
    assert (
        info.cache.enabled,
        info.cache.hits,
        info.cache.misses,
        info.cache.ttl_seconds,
    ) == (True, 5, 2, 30.0)
    assert LIMITS.max_batch_items == info.limits.max_batch_items


def test_policy_info_without_cache_says_disabled() -> None:
    """With --no-cache the cache statistics say `enabled: false`."""
    info = policy_info_to_proto(_Snapshot(), reload=None, cache=None, limits=LIMITS)
    assert not info.cache.enabled
    assert not info.HasField("reload")
