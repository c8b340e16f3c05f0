"""Hostile policy bundles: a corpus of cases, each the default bundle with one attack applied."""
