"""One conditional GET of a bundle archive: bounded in time and bytes, never trusted.

Standard-library HTTP(S) (system CAs, `SSL_CERT_FILE`, the usual proxy variables). A redirect
may not leave http(s) or go from https to http. Every failure is a `BundleFetchError` whose
message names the URL without its credentials or query (docs/operations.md).
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from cnm_policy import __version__
from cnm_policy.distribution._bounds import MAX_ARCHIVE_BYTES
from cnm_policy.errors import BundleFetchError

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "Fetched", "fetch", "redacted", "validate_url"]

DEFAULT_TIMEOUT_SECONDS = 10.0
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Fetched:
    """A 200's body and ETag, or (``body`` ``None``) a 304: the archive sent last is current."""

    body: bytes | None
    etag: str | None


def validate_url(url: str) -> str:
    """`url` when it is an absolute http(s) URL; raises ValueError otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"bundle URL `{redacted(url)}` is not an absolute http(s) URL")
    return url


def redacted(url: str, mask: str | None = None) -> str:
    """The URL as logs may show it: no user, password, query or fragment.

    With `mask` (`--print-config`), each of those that is present is replaced by it instead.
    """
    parts = urllib.parse.urlsplit(url)
    _userinfo, at, host = parts.netloc.rpartition("@")  # host keeps its port and [brackets]
    query = fragment = ""
    if mask is not None:
        host = f"{mask}@{host}" if at else host
        query, fragment = (mask if parts.query else ""), (mask if parts.fragment else "")
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, query, fragment))[:300]


def fetch(
    url: str,
    etag: str | None,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_bytes: int = MAX_ARCHIVE_BYTES,
    clock: Callable[[], float] = time.monotonic,
) -> Fetched:
    """GET `url` (``If-None-Match: etag``); the whole exchange ends within `timeout` seconds."""
    deadline = clock() + timeout
    headers = {"User-Agent": f"cnm-policy/{__version__}", "Accept-Encoding": "identity"}
    if etag is not None:
        headers["If-None-Match"] = etag
    request = urllib.request.Request(url, headers=headers)
    where = redacted(url)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            body = _body(response, deadline, max_bytes, where, clock)
            return Fetched(body, response.headers["ETag"])
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return Fetched(None, exc.headers.get("ETag", etag))
        raise BundleFetchError(f"`{where}` answered HTTP {exc.code}") from None
    except urllib.error.URLError as exc:
        raise BundleFetchError(f"cannot fetch `{where}`: {exc.reason}") from None
    except http.client.IncompleteRead:
        raise BundleFetchError(f"`{where}` closed the connection mid-body (truncated)") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        raise BundleFetchError(f"cannot fetch `{where}`: {reason}") from None


def _body(
    response: Any, deadline: float, max_bytes: int, where: str, clock: Callable[[], float]
) -> bytes:
    """The body, refused when over `max_bytes`, past the deadline or shorter than announced."""
    announced = response.headers.get("Content-Length")
    if announced is not None and announced.isdigit() and int(announced) > max_bytes:
        raise BundleFetchError(f"`{where}` announces {announced} bytes, over {max_bytes}")
    chunks: list[bytes] = []
    total = 0
    while chunk := response.read(_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise BundleFetchError(f"`{where}` sent more than {max_bytes} bytes")
        if clock() > deadline:  # a server trickling bytes cannot hold a poll forever
            raise BundleFetchError(f"`{where}` did not finish sending in time")
        chunks.append(chunk)
    if announced is not None and announced.isdigit() and total != int(announced):
        raise BundleFetchError(f"`{where}` sent {total} of {announced} bytes (truncated)")
    return b"".join(chunks)


class _SameSchemeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http(s), and never from https down to http."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        scheme = urllib.parse.urlsplit(newurl).scheme
        was = urllib.parse.urlsplit(req.full_url).scheme
        if scheme not in ("http", "https") or (was == "https" and scheme == "http"):
            raise BundleFetchError(f"refusing a redirect to `{redacted(newurl)}`")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameSchemeRedirects())
