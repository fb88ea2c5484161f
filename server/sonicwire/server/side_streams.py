"""A cap on the long-lived streams that need no API key: ``Health/Watch`` and reflection.

Health and reflection answer without a key (Kubernetes' probes, grpcurl), and two of their
methods are streams that stay open as long as the client likes. Nothing else bounded them: the
red-team session of 2026-12-07 (s36) opened 20,000 ``Watch`` streams on one connection, with no
key, in 9 s, and the server grew by 200 MB (about 10 KB each; linear, so a few hundred thousand
exhaust a machine). `SideStreamLimit`, a server interceptor, counts the open ones and refuses
any past ``--max-side-streams`` with RESOURCE_EXHAUSTED ``SIDE_STREAM_LIMIT_REACHED``; unary
``Check`` (what probes call) and the VoiceService (bounded by ``--max-streams``) pass untouched.

A ``Watch`` also keeps its service name for as long as it is open (grpcio's servicer keys its
watchers by it): 1,000 streams naming 200 KB services held 650 MB. A name longer than
`MAX_SERVICE_NAME_CHARS`, which no service has, is refused with INVALID_ARGUMENT
``HEALTH_SERVICE_NAME_TOO_LONG`` before the servicer sees it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from sonicwire.server import metrics
from sonicwire.server.core.errors import LimitExceeded, ProtocolError, SonicwireError
from sonicwire.server.status import bounded_message, grpc_code, status_trailers

__all__ = ["LIMITED_METHODS", "MAX_SERVICE_NAME_CHARS", "SideStreamLimit"]

log = logging.getLogger(__name__)

MAX_SERVICE_NAME_CHARS = 256
"""Longest ``HealthCheckRequest.service`` a ``Watch`` may name (full gRPC service names)."""

LIMITED_METHODS = frozenset(
    {
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    }
)


class SideStreamLimit(grpc.aio.ServerInterceptor):
    """Refuses a `LIMITED_METHODS` stream while ``limit`` of them are open (0 = no limit),
    and a ``Watch`` whose service name is longer than `MAX_SERVICE_NAME_CHARS`.

    One instance per process may serve several servers (the main port and the health port):
    the count is theirs together.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self._refused_logged = False

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method not in LIMITED_METHODS:
            return handler
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._counted(handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._counted(handler.stream_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _counted(self, behavior: Callable[..., Any]) -> Callable[..., Awaitable[None]]:
        async def counted(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
            service = getattr(request, "service", "")  # a Watch's; streams have none
            if isinstance(service, str) and len(service) > MAX_SERVICE_NAME_CHARS:
                await _abort(
                    context,
                    ProtocolError(
                        "HEALTH_SERVICE_NAME_TOO_LONG",
                        f"a service name of {len(service)} characters; no service has more "
                        f"than {MAX_SERVICE_NAME_CHARS}",
                    ),
                )
            if 0 < self.limit <= self.open:
                await self._refuse(context)
            self.open += 1
            try:
                # Health's Watch writes with context.write; reflection is a generator: both
                # become writes, so the wrapper is one coroutine either way.
                result = behavior(request, context)
                if inspect.isasyncgen(result):
                    async for response in result:
                        await context.write(response)
                else:
                    await result
            finally:
                self.open -= 1

        return counted

    async def _refuse(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        error = LimitExceeded(
            "SIDE_STREAM_LIMIT_REACHED",
            f"{self.limit} health Watch and reflection streams are open on this server "
            "(--max-side-streams); use Health/Check, or close a stream",
        )
        metrics.STREAMS_REJECTED.labels(error.reason).inc()
        if not self._refused_logged:
            # Once per process: a flood must not become a flood of log lines.
            self._refused_logged = True
            log.warning("side stream refused: %s", error.message)
        await _abort(context, error)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: SonicwireError) -> None:
    await context.abort(
        grpc_code(error), bounded_message(error), trailing_metadata=status_trailers(error)
    )
