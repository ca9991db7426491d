"""``WriteBatch`` on a real event loop: held writes leave at the end of the loop's turn, once
per connection, in the order the connections were held; what is written in a later turn
goes in a later flush."""

from __future__ import annotations

import asyncio

import uvloop

from pounce.workers.write_batch import WriteBatch


class Conn:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def flush_writes(self) -> None:
        self.log.append(self.name)


def _run(main: object) -> None:
    asyncio.run(main, loop_factory=uvloop.new_event_loop)  # type: ignore[arg-type]


def test_held_connections_flush_after_the_current_callback_and_in_order() -> None:
    log: list[str] = []

    async def main() -> None:
        batch = WriteBatch()
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def io_callback() -> None:  # as data_received would: several connections answered
            batch.hold(Conn("a", log))
            batch.hold(Conn("b", log))
            log.append("callback ends")
            loop.call_soon(done.set_result, None)

        loop.call_soon(io_callback)
        await done
        assert log == ["callback ends", "a", "b"]
        batch.hold(Conn("c", log))  # a later turn: a flush of its own
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert log == ["callback ends", "a", "b", "c"]

    _run(main())
