"""An open-loop HTTP/1.1 load generator: requests at a fixed rate, whatever the server does.

wrk is closed-loop (each connection waits for its answer before the next request), so a slow
server slows the load down and an overload never builds up; here request ``i`` is due at
``start + i / rate`` and its latency is measured from that moment (so time the generator
itself was late counts against the server, not for it: no coordinated omission). Each due
request takes an idle keep-alive connection or opens a new one (up to ``--max-conns``; past
that it is counted as ``unsent``). Responses must carry ``content-length``.

Run as ``python -m harness.openloop HOST PORT PATH RATE DURATION`` from ``benchmarks/``;
prints one JSON object: per status, the count and latency percentiles (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict

__all__ = ["main"]


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": round(ordered[-1] * 1000, 3)}


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def run(
    host: str, port: int, path: str, rate: float, duration: float, max_conns: int
) -> dict[str, object]:
    request = f"GET {path} HTTP/1.1\r\nhost: {host}\r\n\r\n".encode()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    open_conns = 0
    latencies: dict[int, list[float]] = defaultdict(list)
    errors = 0
    unsent = 0
    tasks: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()

    async def one(due: float) -> None:
        nonlocal open_conns, errors
        if idle:
            reader, writer = idle.pop()
        else:
            open_conns += 1
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                open_conns -= 1
                errors += 1
                return
        try:
            status = await _exchange(reader, writer, request)
        except OSError, asyncio.IncompleteReadError, ValueError:
            errors += 1
            open_conns -= 1
            writer.close()
            return
        latencies[status].append(loop.time() - due)
        idle.append((reader, writer))

    start = loop.time() + 0.05
    total = int(rate * duration)
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if not idle and open_conns >= max_conns:
            unsent += 1
            continue
        task = asyncio.create_task(one(due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    sent_for = loop.time() - start
    if tasks:
        await asyncio.wait(tasks, timeout=60)
    for _, writer in idle:
        writer.close()
    return {
        "offered_rps": rate,
        "duration_s": round(sent_for, 3),
        "sent": total - unsent,
        "unsent": unsent,
        "errors": errors,
        "connections": open_conns,
        "by_status": {
            str(status): {"count": len(values), **_percentiles(values)}
            for status, values in sorted(latencies.items())
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("path")
    parser.add_argument("rate", type=float)
    parser.add_argument("duration", type=float)
    parser.add_argument("--max-conns", type=int, default=4000)
    args = parser.parse_args()
    began = time.monotonic()
    result = asyncio.run(
        run(args.host, args.port, args.path, args.rate, args.duration, args.max_conns)
    )
    result["wall_s"] = round(time.monotonic() - began, 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
