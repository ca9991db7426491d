"""Sans-I/O protocol code: bytes in, events out; events in, bytes out.

Nothing here touches a socket, a clock or a thread. Both worker kinds (the sync selector loop
and the asyncio protocol) drive the same objects, so a protocol fix lands once.
"""
