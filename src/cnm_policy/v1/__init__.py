"""Generated gRPC/protobuf code for the `cnm_policy.v1` API (from `proto/cnm_policy/v1`).

Do not edit the ``*_pb2*`` modules by hand: run ``make proto`` and commit the result; CI
regenerates them and fails on a diff.
"""
