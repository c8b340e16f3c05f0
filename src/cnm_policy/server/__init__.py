"""The gRPC sidecar: `cnm_policy.v1.PolicyService` plus health and reflection.

An adapter around the engine and nothing more: `app` builds and runs the server, `servicer`
holds the thin handlers, `convert` maps wire messages to the model, `errors` maps failures to
status codes, `limits` bounds what one request may cost, `workers` runs the calls. The core
never imports this package.
"""
