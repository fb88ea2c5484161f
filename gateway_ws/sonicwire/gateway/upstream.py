"""The gateway's side of gRPC: everything it needs from the Sonicwire client SDK.

One :class:`Upstream` per gateway owns a single gRPC channel; each WebSocket gets its own
lightweight SDK ``Client`` on that channel, carrying the socket's API key as ``x-api-key``
metadata, so sockets with different keys share one HTTP/2 connection.

Conversations resume upstream by themselves (the SDK's auto-resume) when their server replica
goes away, unless ``upstream_resume`` is off: the socket stays open. :meth:`Upstream.moved`
records the token each move spent (see :mod:`.resume_tokens`). :meth:`Upstream.stop_resuming`
turns resuming off for the live conversations too, for a gateway whose servers drain with it
(``sonicwire up``).
"""

from __future__ import annotations

import weakref

import grpc  # type: ignore[import-untyped, unused-ignore]
from grpc import aio

from sonicwire.client import (
    AutoResume,
    Client,
    Conversation,
    DeadlineExceededError,
    NotFoundError,
    RetryPolicy,
    SonicwireError,
    UnavailableError,
    session_config,
)
from sonicwire.client.client import is_loopback
from sonicwire.v1 import voice_service_pb2 as pb

from .config import GatewayConfig
from .protocol import Configure
from .resume_tokens import TokenLedger

__all__ = ["VOICE_SERVICE", "Upstream", "session_config_for"]

VOICE_SERVICE = "sonicwire.v1.VoiceService"
"""The health-checked service name."""

_VAD_ENGINES = {"webrtc": pb.VAD_ENGINE_WEBRTC, "silero": pb.VAD_ENGINE_SILERO}


def session_config_for(command: Configure) -> pb.SessionConfig:
    """Build the ``SessionConfig`` for a socket's ``config`` message (or the defaults)."""
    config = session_config(
        sample_rate_hz=command.sample_rate_hz,
        output_sample_rate_hz=command.effective_output_rate_hz,
        voice=command.voice,
        system_prompt=command.system_prompt,
        barge_in=command.barge_in,
        echo_cancellation=command.echo_cancellation,
        noise_suppression=command.noise_suppression,
        endpointing=command.endpointing,  # type: ignore[arg-type]  # validated by protocol
        server_tools=command.server_tools,
        resume_session_id=command.resume_session_id,
        time_zone=command.time_zone,
        resume_token=command.resume_token,
    )
    vad = command.vad
    if vad.engine is not None:
        config.vad.engine = _VAD_ENGINES[vad.engine]
    config.vad.confidence = vad.confidence
    config.vad.start_secs = vad.start_secs
    config.vad.stop_secs = vad.stop_secs
    config.vad.min_volume = vad.min_volume
    config.vad.speech_pad_ms = vad.speech_pad_ms
    config.barge_in.min_speech_ms = command.barge_in_min_speech_ms
    for tool in command.client_tools:
        config.client_tools.add(
            name=tool.name,
            description=tool.description,
            parameters_json_schema=tool.parameters_json_schema,
            timeout_ms=tool.timeout_ms,
        )
    return config


class Upstream:
    """The gRPC server as seen by the gateway: one channel, conversations and health checks.

    Create it inside the running event loop; call :meth:`aclose` when done.
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        channel: aio.Channel | None = None,
        route: str = "",
    ) -> None:
        """Open the channel to ``config.grpc_target`` (lazily connected by gRPC).

        Args:
            config: the gateway configuration (target, TLS, fallback API key, start timeout).
            channel: a channel to use instead (``sonicwire up`` passes one that reaches the
                server in the same process without the network); closed by :meth:`aclose`.
            route: how ``channel`` reaches the server, for the logs (`route`).

        Raises:
            OSError: the CA file cannot be read.
        """
        self.target = config.grpc_target
        self._default_key = config.api_key
        self._start_timeout_s = config.start_timeout_s
        self.resume = config.upstream_resume
        self._tokens = TokenLedger()
        # Every conversation opened here, while it lives (for `stop_resuming`).
        self._conversations: weakref.WeakSet[Conversation] = weakref.WeakSet()
        # What the gateway's start-up line says: an injected channel need not be gRPC at all,
        # and an operator reading "gRPC 127.0.0.1:50051" would look for traffic on that port.
        self.route = f"gRPC {self.target}"
        if channel is not None:
            self.channel = channel
            self.route = route or f"an injected channel ({self.target})"
            return
        probe = Client(config.grpc_target, insecure=config.grpc_insecure)
        options = [
            ("grpc.primary_user_agent", "sonicwire-gateway"),
            # Reconnect quickly once the server is back: browsers retry by hand.
            ("grpc.initial_reconnect_backoff_ms", 250),
            ("grpc.min_reconnect_backoff_ms", 250),
            ("grpc.max_reconnect_backoff_ms", 2000),
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
        ]
        if is_loopback(self.target):
            # No BDP probing on the loopback hop: the probes' pings and the timers that pace
            # them wake gRPC's threads on every burst of replies (28.4 -> 25.9 system calls per
            # audio message, both sides, bench.gateway_path --transport grpc; no CPU gain
            # resolved in paired rounds; docs/gateway.md, "The two-process hop"). Not to a
            # remote server: every socket's replies share this one connection, whose receive
            # window then stays at 64 KiB, i.e. 64 KiB per round trip for all of them (40
            # streams of 16 kHz audio 100 ms away: 0.58 of the 1.28 MB/s they need, replies
            # up to 4.9 s late; with probing 1.23 MB/s, docs/gateway.md).
            options.append(("grpc.http2.bdp_probe", 0))
        if probe.insecure:
            self.channel = aio.insecure_channel(self.target, options=options)
        else:
            root = None
            if config.grpc_ca:
                with open(config.grpc_ca, "rb") as f:
                    root = f.read()
            if config.grpc_server_name:
                options.append(("grpc.ssl_target_name_override", config.grpc_server_name))
            credentials = grpc.ssl_channel_credentials(root_certificates=root)
            self.channel = aio.secure_channel(self.target, credentials, options=options)

    def client(self, api_key: str | None) -> Client:
        """An SDK client on the shared channel, sending ``api_key`` (or the gateway's key)."""
        return Client(
            self.target,
            api_key=api_key or self._default_key or None,
            channel=self.channel,
            timeout=self._start_timeout_s,
            auto_resume=AutoResume() if self.resume else AutoResume.off(),
        )

    def converse(self, api_key: str | None, command: Configure) -> tuple[Client, Conversation]:
        """Prepare (not start) a conversation for a browser socket's ``config``.

        Returns:
            The client (close it after the conversation) and the conversation.
        """
        config = session_config_for(command)
        if config.resume_session_id:
            config.resume_token = self._tokens.current(
                config.resume_session_id, config.resume_token
            )
        return self.open(api_key, config)

    def open(self, api_key: str | None, config: pb.SessionConfig) -> tuple[Client, Conversation]:
        """Prepare (not start) a conversation with ``config`` (any edge).

        Returns:
            The client (close it after the conversation) and the conversation.
        """
        client = self.client(api_key)
        conversation = client.converse(config)
        self._conversations.add(conversation)
        return client, conversation

    def stop_resuming(self) -> None:
        """From now on no conversation moves to another replica, the live ones included.

        For a gateway whose servers are draining with it (``sonicwire up`` on SIGTERM): a move
        would only find replicas that refuse it, and the server's ``GoingAway`` then reaches
        the client (``going_away``, then 1001) instead of retries ending in 4503.
        """
        self.resume = False
        for conversation in list(self._conversations):
            conversation.stop_auto_resume()

    def moved(self, session_id: str, spent_token: str, current_token: str) -> None:
        """A conversation was resumed upstream: ``spent_token`` now stands for ``current_token``
        in a later socket's ``config``."""
        self._tokens.moved(session_id, spent_token, current_token)

    async def health(self, timeout_s: float = 1.0) -> str:
        """The gRPC server's health as a short word for ``GET /health``.

        Returns:
            ``SERVING``, ``NOT_SERVING``, ``SERVICE_UNKNOWN``, ``UNKNOWN``, ``UNREACHABLE``
            (no connection or no answer in ``timeout_s``), or another gRPC status name.
        """
        client = Client(
            self.target, channel=self.channel, timeout=timeout_s, retry=RetryPolicy.none()
        )
        try:
            status = await client.health(VOICE_SERVICE)
        except NotFoundError:
            return "SERVICE_UNKNOWN"
        except (UnavailableError, DeadlineExceededError):
            return "UNREACHABLE"
        except SonicwireError as error:
            return error.code.name if error.code is not None else "UNKNOWN"
        return status.name

    async def aclose(self) -> None:
        """Close the channel; live conversations on it end."""
        await self.channel.close()
