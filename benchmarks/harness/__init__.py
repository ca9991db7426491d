"""The benchmark harness behind ``benchmarks/run.py``.

Stdlib only, so it runs under a bare ``python3.14t``. One module per job:

- ``servers``   who we benchmark: one frozen ``ServerSpec`` per server configuration
- ``nginx``     the nginx config template the harness renders into a temp dir
- ``workloads`` what we ask for: path, method, headers, body, and the check that the answer is right
- ``suites``    which servers meet which workloads under which variants (workers, idle load)
- ``process``   start a pinned server, wait until it answers, stop it cleanly
- ``wrk``       drive wrk and read its numbers
- ``fixtures``  the static files for the static suite
- ``machine``   what ran where: CPU, kernel, interpreters, package versions
- ``report``    markdown and JSON output
- ``idle_conns`` standalone helper that holds idle keep-alive connections open
- ``wsframes``  just enough RFC 6455 by hand: handshake, masked client frames, header parser
- ``ws_load``   standalone WebSocket echo load generator / idle holder (asyncio + uvloop)
- ``ws``        the websocket suite's cell: echo check, generator and idle helper driving
"""
