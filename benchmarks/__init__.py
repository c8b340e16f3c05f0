"""Benchmarks for cnm-policy: ``python -m benchmarks`` (see docs/benchmarks.md).

Not a test suite and not shipped: they measure the engine, the decision cache and the sidecar
against casbin's own enforcer, a bare cachetools hit and a bare gRPC echo server.
"""
