"""Workflows that chain vsrflow commands: each stage runs isolated in its own child process.

``batch``: ``vsrflow run`` over a directory (weights -> upscale -> evaluate, resumable).
"""
