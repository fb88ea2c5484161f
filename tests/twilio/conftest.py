"""Fixtures: a loopback gRPC server and a gateway whose /twilio endpoint a simulated carrier
calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soxr

from sonicwire.gateway import Gateway, GatewayConfig
from sonicwire.gateway.twilio.auth import expected_signature
from sonicwire.server.backends.base import Backend
from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.codecs.g711 import pcm_to_mulaw
from sonicwire.server.testing.server import running_server

AUTH_TOKEN = "test-auth-token-0123456789"
ALSA_SAMPLES = Path("/usr/share/sounds/alsa")

CallEnv = Callable[..., AbstractAsyncContextManager[tuple[Any, Gateway]]]


def to_mulaw_8k(pcm_16k: bytes) -> bytes:
    """16 kHz PCM -> 8 kHz mu-law, as a phone network carries it."""
    samples = np.frombuffer(pcm_16k, "<i2").astype(np.float32)
    pcm8 = np.clip(soxr.resample(samples, 16000, 8000), -32768, 32767).astype("<i2")
    return pcm_to_mulaw(pcm8.tobytes())


@pytest.fixture(scope="session")
def barge_in_mulaw() -> bytes:
    """Another speaker's words ("Rear Right") as 8 kHz mu-law: talking over the assistant
    with the assistant's own words would be cancelled as echo."""
    from tests.conftest import read_wav_mono16

    pcm, rate = read_wav_mono16(ALSA_SAMPLES / "Rear_Right.wav")
    samples = np.frombuffer(pcm, "<i2").astype(np.float32)
    pcm8 = np.clip(soxr.resample(samples, rate, 8000), -32768, 32767).astype("<i2")
    return pcm_to_mulaw(pcm8.tobytes())


def signed_headers(gateway: Gateway, path: str = "/twilio") -> dict[str, str]:
    """The X-Twilio-Signature Twilio would send for a stream URL of this gateway."""
    url = f"wss://127.0.0.1:{gateway.port}{path}"
    return {"X-Twilio-Signature": expected_signature(AUTH_TOKEN, url)}


def twilio_url(gateway: Gateway, path: str = "/twilio") -> str:
    return f"ws://127.0.0.1:{gateway.port}{path}"


@pytest.fixture
def call_env() -> CallEnv:
    """``async with call_env(backend=..., **gateway_overrides) as (server, gateway)``."""

    @asynccontextmanager
    async def factory(
        backend: Backend | str | None = None, server_config: dict[str, Any] | None = None, **gw: Any
    ) -> AsyncIterator[tuple[Any, Gateway]]:
        async with running_server(
            backend=backend if backend is not None else EchoBackend(), **(server_config or {})
        ) as server:
            settings: dict[str, Any] = {
                "port": 0,
                "grpc_target": server.target,
                "twilio_auth_token": AUTH_TOKEN,
            }
            settings.update(gw)
            async with Gateway(GatewayConfig(**settings)) as gateway:
                yield server, gateway

    return factory
