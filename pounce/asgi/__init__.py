"""The ASGI adapter, written once: scopes, the receive/send cycle, lifespan and worker scopes.

Nothing here sees a socket. The HTTP cycle talks to the connection through a small
``Channel`` protocol (``asgi/channel.py``), so HTTP/1.1 today and HTTP/2 later share it.
"""
