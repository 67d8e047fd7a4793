"""Datasets as the engine sees them: metadata and the per-process registry that caches it."""
