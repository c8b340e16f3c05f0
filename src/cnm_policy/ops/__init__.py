"""Operating the sidecar: metrics, health and staleness, traces, and its configuration.

Nothing here decides anything: the server and the runtime call into these modules to count,
to report readiness, to carry trace ids, and to read `serve`'s settings from file and env.
"""
