"""The keys tokens are verified with: a JWKS file, or a JWKS URL fetched and refreshed.

A key set is read whole and bounded (size, key count); a URL is fetched at start (a sidecar
that cannot get its keys does not start) and again in the background when a token names a key
id it does not know, at most once a minute, so a key rotation needs no restart and a flood of
unknown key ids costs one fetch.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any, Final

from joserfc.jwk import KeySet

from cnm_policy.errors import ServerConfigError

__all__ = ["MAX_JWKS_BYTES", "JwksSource", "parse_jwks"]

MAX_JWKS_BYTES: Final = 1024 * 1024
_MAX_KEYS: Final = 100
_FETCH_TIMEOUT: Final = 5.0
_REFRESH_SECONDS: Final = 60.0


def parse_jwks(data: bytes, origin: str) -> KeySet:
    """A key set from JWKS JSON; raises ServerConfigError naming `origin`."""
    if len(data) > MAX_JWKS_BYTES:
        raise ServerConfigError(f"key set `{origin}` is larger than {MAX_JWKS_BYTES} bytes")
    try:
        document: Any = json.loads(data)
        keys = document["keys"]
        if not isinstance(keys, list) or not 0 < len(keys) <= _MAX_KEYS:
            raise ValueError(f"`keys` must list 1 to {_MAX_KEYS} keys")
        # Private parts are dropped: verification needs public keys only.
        return KeySet.import_key_set({"keys": [_public(key) for key in keys]})
    except Exception as exc:
        raise ServerConfigError(f"key set `{origin}` is not a valid JWKS: {exc}") from None


def _public(key: Any) -> Any:
    if not isinstance(key, dict):
        raise ValueError("each key must be an object")
    if key.get("kty") == "oct":
        raise ValueError("symmetric (`oct`) keys are refused: a shared secret is not a JWKS")
    return {
        name: value for name, value in key.items() if name not in ("d", "p", "q", "dp", "dq", "qi")
    }


class JwksSource:
    """The current key set of `location` (a file path or an ``https://`` URL)."""

    def __init__(
        self,
        location: str,
        *,
        fetch: Callable[[str], bytes] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if location.startswith("http://"):
            raise ServerConfigError(f"key set `{location}`: fetch keys over https only")
        self._location = location
        self._fetch = fetch or (_fetch_url if location.startswith("https://") else _read_file)
        self._clock = clock
        self._keys = parse_jwks(self._fetch(location), location)
        self._last_refresh = clock()
        self._refreshing = threading.Lock()

    @property
    def keys(self) -> KeySet:
        """The keys as last read."""
        return self._keys

    def unknown_key_seen(self) -> None:
        """A token named a key id not in the set: refresh in the background (rate-limited)."""
        now = self._clock()
        if now - self._last_refresh < _REFRESH_SECONDS or not self._refreshing.acquire(False):
            return
        self._last_refresh = now
        threading.Thread(target=self._refresh, name="cnm-policy-jwks", daemon=True).start()

    def _refresh(self) -> None:
        try:
            self._keys = parse_jwks(self._fetch(self._location), self._location)
        except Exception:  # keep the last good keys; the next unknown key id tries again
            pass
        finally:
            self._refreshing.release()


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_JWKS_BYTES + 1)
    except OSError as exc:
        raise ServerConfigError(f"cannot read key set `{path}`: {exc.strerror}") from None


def _fetch_url(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=_FETCH_TIMEOUT) as response:
            data: bytes = response.read(MAX_JWKS_BYTES + 1)
            return data
    except Exception as exc:
        raise ServerConfigError(f"cannot fetch key set `{url}`: {exc}") from None
