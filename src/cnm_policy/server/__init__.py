"""The gRPC sidecar: `cnm_policy.v1.PolicyService` plus health and reflection.

An adapter around the engine and nothing more: `app` builds and runs the server, `servicer`
holds the thin handlers, `wire/` turns bytes into model values and back, `errors` maps
failures to status codes, `limits` bounds what one request may cost. The core never imports
this package.
"""
