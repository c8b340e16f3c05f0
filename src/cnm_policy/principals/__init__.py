"""The policy information point: principals completed from a directory file or a JWT.

`PrincipalResolver` is what every front door calls before deciding; the directory
(`open_directory`) and the token verifier (`JwtVerifier`) are its sources.
"""

from cnm_policy.principals.directory import Directory, DirectoryEntry, parse_directory
from cnm_policy.principals.jwks import JwksSource
from cnm_policy.principals.live import DirectoryHolder, open_directory
from cnm_policy.principals.resolve import (
    SOURCE_DIRECTORY,
    SOURCE_REQUEST,
    SOURCE_TOKEN,
    PrincipalResolver,
    ResolvedPrincipal,
    capped,
)
from cnm_policy.principals.tokens import JwtConfig, JwtVerifier, VerifiedToken, bearer_token

__all__ = [
    "SOURCE_DIRECTORY",
    "SOURCE_REQUEST",
    "SOURCE_TOKEN",
    "Directory",
    "DirectoryEntry",
    "DirectoryHolder",
    "JwksSource",
    "JwtConfig",
    "JwtVerifier",
    "PrincipalResolver",
    "ResolvedPrincipal",
    "VerifiedToken",
    "bearer_token",
    "capped",
    "open_directory",
    "parse_directory",
]
