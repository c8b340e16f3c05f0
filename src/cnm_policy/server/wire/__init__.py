"""The sidecar's wire: request bytes in, response bytes out, and nothing else.

`decode` is the one path from `CheckRequest`/`CheckBatchRequest` bytes to model values (with
its one memo), `encode` the one path back, `convert` and `structs` the pure message <-> model
mappings both use, `info` the `GetPolicyInfo` response.
"""
