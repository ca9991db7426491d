"""Listening sockets: TCP (with SO_REUSEPORT), Unix sockets, inherited file descriptors, TLS.

This layer and ``workers/`` are the only places that catch ``OSError``.
"""
