"""What the conversation driver's per-message steps cost, in CPU microseconds, in one process.

    python -m bench.driver_costs [--messages 50000] [--repeats 3]

Two questions `bench.loop_counts` raises (docs/server_cpu.md, "event-loop work per message"):

* **the outbox hop**: an output the input task produces reaches the client through
  `conversation._Outbox` and a wake-up of the handler task (grpc.aio's handler loop -> the
  servicer's ``Converse`` generator -> ``Conversation.outputs`` -> ``_Outbox.wait``). ``hop``
  times that path per item; ``direct`` the producer handing the item to the same sink itself.
  Both producers suspend once per item (``asyncio.sleep(0)``), as the input task does per read.
* **the driver's own Python per message**: the real `Conversation` fed serialized
  ``ConverseRequest`` messages through the servicer's decoding, with the session core's
  ``receive_client`` replaced by one that only queues the message's audio command for a
  backend that takes it at once (``driver``), against the same messages decoded and dropped
  (``decode``). The difference is `_pump_inputs`, admission, deadlines, `_flush`, the room
  and the release clock's bookkeeping: what a message costs the driver beyond the transport.

Process CPU time (``time.process_time``), medians over ``repeats`` alternated runs; the
figures are per item or message, not per stream-second (x 50 for 20 ms messages).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from typing import Any

__all__ = ["main", "measure"]


async def _hop(n: int) -> None:
    from sonicwire.server.conversation import _Outbox

    sink: list[int] = []
    box = _Outbox()

    async def outputs() -> AsyncGenerator[object]:
        items = box.items
        while True:
            while not items:
                await box.wait()
            yield items.popleft()

    async def converse() -> AsyncIterator[object]:
        async with contextlib.aclosing(outputs()) as outs:
            async for output in outs:
                yield output

    async def handler() -> None:
        async for response in converse():
            sink.append(response)  # type: ignore[arg-type]

    task = asyncio.create_task(handler())
    for i in range(n):
        box.put(i)
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(sink) >= n - 1


async def _direct(n: int) -> None:
    sink: list[int] = []
    for i in range(n):
        sink.append(i)
        await asyncio.sleep(0)


def _requests(n: int) -> Callable[[], AsyncIterator[Any]]:
    from sonicwire.v1 import voice_service_pb2 as pb

    data = pb.ConverseRequest(audio=pb.AudioInput(audio=bytes(640))).SerializeToString()
    parse = pb.ConverseRequest.FromString

    async def requests() -> AsyncIterator[Any]:
        for _ in range(n):
            await asyncio.sleep(0)  # a grpc.aio read suspends the reader once per message
            yield parse(data)

    return requests


async def _decode(n: int) -> None:
    from sonicwire.server import servicer

    async for _ in servicer._client_events(_requests(n)()):
        pass


class _NullBackend:
    """Takes every command at once and never has an event: only the driver's side counts."""

    async def send(self, command: object) -> None:
        return None

    async def events(self) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield None  # pragma: no cover - never reached

    async def aclose(self) -> None:
        return None


async def _driver(n: int) -> None:
    from sonicwire.server.core import events as ev
    from sonicwire.server.core.session import Session
    from sonicwire.server.core.settings import SessionSettings
    from sonicwire.server.dsp.pipeline import FrontEndSettings

    front = FrontEndSettings(echo_cancellation=False, noise_suppression=False)
    session = Session("s", SessionSettings(front_end=front, barge_in=False))

    def receive_client(self: Any, event: Any, now: float) -> None:
        # The core's part is left out, but not what it hands the driver: one audio command
        # per message, as the front end's cleaned frame going to the backend.
        self._commands.append(ev.SendAudio(event.audio))

    # On the class, not the instance: a compiled Session (sonicwire.server.native) refuses
    # an instance attribute; the driver calls the method from Python, so it finds this one.
    original = Session.receive_client
    Session.receive_client = receive_client  # type: ignore[method-assign]
    try:
        await _drive(session, n)
    finally:
        Session.receive_client = original  # type: ignore[method-assign]


async def _drive(session: Any, n: int) -> None:
    from sonicwire.server import servicer
    from sonicwire.server.conversation import Conversation
    from sonicwire.server.metrics import StreamMetrics

    backend: Any = _NullBackend()
    conversation = Conversation(session, backend, metrics=StreamMetrics())
    finished = asyncio.Event()
    requests = _requests(n)

    async def inputs() -> AsyncIterator[Any]:
        async for request in requests():
            yield request
        finished.set()
        await asyncio.Event().wait()  # no half-close: the stream stays open

    async def consume() -> None:
        async for _ in conversation.outputs(servicer._client_events(inputs())):
            pass

    task = asyncio.create_task(consume())
    read_all = asyncio.create_task(finished.wait())
    # Not `await finished.wait()` alone: a conversation that fails or ends before it has read
    # every message would never set it, and the measurement would wait for ever.
    await asyncio.wait((task, read_all), return_when=asyncio.FIRST_COMPLETED)
    read_all.cancel()
    if not finished.is_set():
        task.result()  # the conversation's error, if it raised one
        raise RuntimeError("the conversation ended before it read every message")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


_CASES: dict[str, Callable[[int], Coroutine[Any, Any, None]]] = {
    "direct": _direct,
    "hop": _hop,
    "decode": _decode,
    "driver": _driver,
}


def measure(messages: int, repeats: int) -> dict[str, float]:
    """Median CPU microseconds per item of each case, the cases alternated ``repeats`` times."""
    times: dict[str, list[float]] = {name: [] for name in _CASES}
    for _ in range(repeats):
        for name, case in _CASES.items():
            start = time.process_time()
            asyncio.run(case(messages))
            times[name].append((time.process_time() - start) / messages * 1e6)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.driver_costs")
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    us = measure(args.messages, args.repeats)
    print(
        f"outbox hop: {us['hop']:.2f} vs direct {us['direct']:.2f} us per output "
        f"(+{us['hop'] - us['direct']:.2f}); driver: {us['driver']:.2f} vs decode "
        f"{us['decode']:.2f} us per message (+{us['driver'] - us['decode']:.2f}); "
        f"load1 {os.getloadavg()[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
