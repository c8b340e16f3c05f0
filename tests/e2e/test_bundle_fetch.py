"""One conditional GET against a real local server: bounded bytes, safe redirects, no secrets.

In e2e/ because it opens sockets; `distribution/fetch.py` is the module under test.
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cnm_policy.distribution.fetch import fetch, redacted, validate_url
from cnm_policy.errors import BundleFetchError

pytestmark = pytest.mark.e2e


class _Handler(http.server.BaseHTTPRequestHandler):
    redirect_to = ""

    def do_GET(self) -> None:
        """Answer by path."""
        if self.path == "/to-http":
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.end_headers()
        elif self.path == "/big":
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
        elif self.path == "/large":  # several reads' worth
            body = b"y" * 300_000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
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


def test_a_body_still_arriving_at_the_deadline_is_refused(base: str) -> None:
    """The deadline covers the whole body (a trickling server), on the injected clock."""
    ticks = iter(range(0, 1000, 4))  # each read of a chunk "takes" 4 seconds

    with pytest.raises(BundleFetchError, match="did not finish sending in time"):
        fetch(f"{base}/large", None, timeout=10, clock=lambda: float(next(ticks)))


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
    ("url", "shown"),
    [
        ("https://u:p@h:8443/b.tar.gz?token=abc#f", "https://***@h:8443/b.tar.gz?***#***"),
        ("http://[::1]:8080/b.tar.gz?sig=x", "http://[::1]:8080/b.tar.gz?***"),
        ("https://h/b.tar.gz", "https://h/b.tar.gz"),
    ],
)
def test_masked_urls_say_what_was_hidden(url: str, shown: str) -> None:
    """With a mask, credentials, query and fragment are replaced by it; IPv6 hosts keep brackets."""
    assert redacted(url, "***") == shown


def test_redacted_ipv6_hosts_keep_their_brackets() -> None:
    """Without a mask an IPv6 host and port still read as one address."""
    assert redacted("http://u@[::1]:8080/b?t=1") == "http://[::1]:8080/b"


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://h/x", "bundles/cnm.tar.gz", "http://"]
)
def test_only_absolute_http_urls_are_accepted(url: str) -> None:
    """Other schemes and relative paths are configuration errors."""
    with pytest.raises(ValueError, match="is not an absolute http"):
        validate_url(url)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cnm-bundles-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def https_base(certificate: tuple[Path, Path]) -> Iterator[str]:
    """The same handler behind TLS."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_https_verifies_the_server_against_the_trusted_cas(
    https_base: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trusted through SSL_CERT_FILE: fetched; without it: refused, never fetched unverified."""
    with pytest.raises(BundleFetchError, match="CERTIFICATE_VERIFY_FAILED"):
        fetch(f"{https_base}/ok", None, timeout=5)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    assert fetch(f"{https_base}/ok", None, timeout=5).body == b"archive"


def test_a_redirect_from_https_down_to_http_is_refused(
    https_base: str, base: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An archive fetched over TLS is never continued in the clear."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    _Handler.redirect_to = f"{base}/ok"
    with pytest.raises(BundleFetchError, match="refusing a redirect to `http://127"):
        fetch(f"{https_base}/to-http", None, timeout=5)
