"""One conditional GET against a real local server: bounded bytes, safe redirects, no secrets.

In e2e/ because it opens sockets; `distribution/fetch.py` is the module under test.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from cnm_policy.distribution.fetch import fetch, redacted, validate_url
from cnm_policy.errors import BundleFetchError

pytestmark = pytest.mark.e2e


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        """Answer by path."""
        if self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Length", "999999999")
            self.end_headers()
        elif self.path == "/unannounced":  # no Content-Length: the bound is counted
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * 5000)
            self.close_connection = True
        elif self.path in ("/to-file", "/to-ftp"):
            self.send_response(302)
            target = "file:///etc/passwd" if self.path == "/to-file" else "ftp://h/x.tar.gz"
            self.send_header("Location", target)
            self.end_headers()
        elif self.path == "/to-ok":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.end_headers()
        else:
            body = b"archive"
            self.send_response(200)
            self.send_header("ETag", '"e1"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    """A local HTTP server's base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_200_gives_the_body_and_etag_and_redirects_within_http_are_followed(base: str) -> None:
    """The plain case, through a same-origin redirect."""
    fetched = fetch(f"{base}/to-ok", None, timeout=5)
    assert (fetched.body, fetched.etag) == (b"archive", '"e1"')


def test_an_announced_body_over_the_bound_is_refused_before_reading(base: str) -> None:
    """Content-Length over the bound: refused at the header."""
    with pytest.raises(BundleFetchError, match="announces 999999999 bytes"):
        fetch(f"{base}/big", None, timeout=5, max_bytes=1000)


def test_an_unannounced_body_is_cut_at_the_bound(base: str) -> None:
    """No Content-Length: the bytes are counted as they come."""
    with pytest.raises(BundleFetchError, match="sent more than 1000 bytes"):
        fetch(f"{base}/unannounced", None, timeout=5, max_bytes=1000)


@pytest.mark.parametrize(
    ("path", "message"),
    [("/to-file", "answered HTTP 302"), ("/to-ftp", "refusing a redirect to `ftp://h/x")],
)
def test_a_redirect_out_of_http_is_refused(base: str, path: str, message: str) -> None:
    """A bundle server cannot send the sidecar to a local file or another protocol."""
    with pytest.raises(BundleFetchError, match=message):
        fetch(base + path, None, timeout=5)


def test_a_closed_port_is_a_fetch_error() -> None:
    """Connection refused is a located, coded failure."""
    with pytest.raises(BundleFetchError, match=r"cannot fetch `http://127\.0\.0\.1:9/x`"):
        fetch("http://127.0.0.1:9/x", None, timeout=2)


def test_urls_are_shown_without_credentials_or_query() -> None:
    """A token in the URL never reaches a log line."""
    shown = redacted("https://user:secret@bundles.example:8443/cnm.tar.gz?token=abc#f")
    assert shown == "https://bundles.example:8443/cnm.tar.gz"


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://h/x", "bundles/cnm.tar.gz", "http://"]
)
def test_only_absolute_http_urls_are_accepted(url: str) -> None:
    """Other schemes and relative paths are configuration errors."""
    with pytest.raises(ValueError, match="is not an absolute http"):
        validate_url(url)
