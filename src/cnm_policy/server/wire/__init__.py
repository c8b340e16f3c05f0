"""The sidecar's wire: request bytes in, response bytes out, and nothing else.

`decode` is the one path from `CheckRequest`/`CheckBatchRequest` bytes to model values (with
its one memo); `convert` (with `structs`) the pure message <-> model mappings, which also
build every response; `info` the `GetPolicyInfo` response.
"""
