"""HTTP listeners of the sidecar: any ASGI app served by uvicorn in a background thread.

The ops listener (metrics, health) and the HTTP decision APIs all go through `HttpListener`, so
they share one binding rule (loopback unless allowed), one TLS setup and one graceful stop.
"""

from cnm_policy.server.http.runner import ASGIApp, HttpListener, HttpListenerConfig

__all__ = ["ASGIApp", "HttpListener", "HttpListenerConfig"]
