"""The decision cache: a decorator with the engine's interface that makes repeated checks cheap.

One lookup path (`cached_engine`), one exact key encoding (`keys`), one bounded store
(`store`); the invariants that make a cached answer the engine's answer are in
docs/design/cache.md.
"""

from cnm_policy.cache.cached_engine import DEFAULT_TTL, CachedEngine
from cnm_policy.cache.stats import CacheStats
from cnm_policy.cache.store import DEFAULT_MAX_KEY_BYTES, DEFAULT_MAXSIZE

__all__ = ["DEFAULT_MAXSIZE", "DEFAULT_MAX_KEY_BYTES", "DEFAULT_TTL", "CacheStats", "CachedEngine"]
