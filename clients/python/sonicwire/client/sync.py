"""A blocking wrapper of :class:`~sonicwire.client.client.Client` for scripts.

::

    with SyncClient("127.0.0.1:50051") as client:
        print(client.health())
        result = client.talk_file("question.wav", out="reply.wav")
        print(result.text())

It runs the async client on a private event loop, so it cannot be used from code that is
already running inside an event loop (use ``Client`` there) and one instance must not be
shared between threads.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .audio import read_wav, write_wav
from .client import DEFAULT_TARGET, Client, HealthStatus, ServerTool, TlsOptions, Voice
from .events import Event
from .exchange import TalkResult, talk
from .retry import RetryPolicy
from .tools import ClientTool, ToolHandler

__all__ = ["SyncClient"]


class SyncClient:
    """Blocking client: unary calls and :meth:`talk_file`.

    Takes the same arguments as :class:`~sonicwire.client.client.Client` (except an injected
    ``channel``, which would belong to another loop).
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        api_key: str | None = None,
        tls: TlsOptions | None = None,
        insecure: bool | None = None,
        timeout: float | None = 10.0,
        retry: RetryPolicy | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        options: Sequence[tuple[str, Any]] = (),
        stub: pb_grpc.VoiceServiceAsyncStub | None = None,
        health_stub: Any = None,
    ) -> None:
        """Create the client; the arguments are those of ``Client``.

        Raises:
            ValueError: ``insecure=True`` together with ``tls``.
        """
        self._runner = asyncio.Runner()
        self._closed = False
        self._client = Client(
            target,
            api_key=api_key,
            tls=tls,
            insecure=insecure,
            timeout=timeout,
            retry=retry,
            metadata=metadata,
            options=options,
            stub=stub,
            health_stub=health_stub,
        )

    def _run[T](self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel and the private event loop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._run(self._client.close())
        finally:
            self._runner.close()

    def list_voices(self, backend: str = "", model: str = "") -> list[Voice]:
        """Blocking ``Client.list_voices``; raises ``SonicwireError`` subclasses likewise."""
        return self._run(self._client.list_voices(backend, model))

    def list_tools(self) -> list[ServerTool]:
        """Blocking ``Client.list_tools``; raises ``SonicwireError`` subclasses likewise."""
        return self._run(self._client.list_tools())

    def health(self, service: str = "") -> HealthStatus:
        """Blocking ``Client.health``; raises ``SonicwireError`` subclasses likewise."""
        return self._run(self._client.health(service))

    def talk_file(
        self,
        path: str | os.PathLike[str] | None,
        *,
        text: str | None = None,
        out: str | os.PathLike[str] | None = None,
        config: pb.SessionConfig | None = None,
        tools: Mapping[str, ClientTool | ToolHandler] | None = None,
        speed: float = 1.0,
        trailing_silence_ms: int = 1000,
        on_event: Callable[[Event], None] | None = None,
    ) -> TalkResult:
        """Stream a WAV file (and/or a typed turn) to the assistant and wait for its answer.

        Args:
            path: a 16-bit PCM WAV file (any channel count; 8, 16, 24 or 48 kHz), or ``None``
                for a text-only exchange.
            text: a typed user turn, sent before the audio.
            out: where to write the reply as a WAV file; ``None`` to skip.
            config: the session configuration; defaults to ``session_config()``.
            tools: client-side tools, as for ``Client.converse``.
            speed: 1.0 streams at real time, 0 as fast as possible.
            trailing_silence_ms: silence sent after the file.
            on_event: called with every event as it arrives (on this thread).

        Returns:
            Every event and the reply audio.

        Raises:
            AudioFormatError: the file is not a WAV the server accepts.
            OSError: the file cannot be read or ``out`` written.
            SonicwireError: the typed error the server ended the stream with.
        """
        audio = read_wav(path) if path is not None else None
        result = self._run(
            talk(
                self._client,
                audio,
                text=text,
                config=config,
                tools=tools,
                speed=speed,
                trailing_silence_ms=trailing_silence_ms,
                on_event=on_event,
            )
        )
        if out is not None:
            write_wav(out, result.reply.pcm, result.reply.sample_rate_hz)
        return result
