"""Benchmark apps: one raw ASGI app, its RSGI twin, a SyncApp and their shared payloads."""
