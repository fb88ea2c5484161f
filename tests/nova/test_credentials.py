"""Long conversations with expiring temporary credentials (issue 15): every stream is signed
with credentials that outlive it, and the session moves to a new stream, signed with fresh
ones from the SDK resolver, before the current stream's credentials expire. Real SDK signing
against the local endpoint, which reports the access key each stream was signed with."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from smithy_aws_core.identity import AWSCredentialsIdentity

from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.nova_sonic.backend import NovaSonicBackend
from sonicwire.server.backends.nova_sonic.credentials import fresh_identity, seconds_left
from sonicwire.server.core import events as ev
from sonicwire.server.testing.fake_bedrock import FakeBedrock
from sonicwire.server.testing.fake_scenario import Scenario, answer_each_utterance
from tests.nova.conftest import Collector, assert_no_leaked_tasks, send_frames


class RotatingCredentials:
    """An SDK-style resolver handing out temporary credentials that live ``ttl_s`` seconds,
    cached until they expire or are invalidated (as the container/IMDS resolvers do)."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.expiry: dict[str, float] = {}  # access key id -> loop time it expires
        self._current: AWSCredentialsIdentity | None = None

    async def get_identity(self, *, properties: Any) -> AWSCredentialsIdentity:
        current = self._current
        if current is None or (seconds_left(current) or 0) <= 0:
            key = f"ASIATEST{len(self.expiry):04d}"
            current = AWSCredentialsIdentity(
                access_key_id=key,
                secret_access_key="secret",
                session_token="token",
                expiration=datetime.now(UTC) + timedelta(seconds=self.ttl_s),
            )
            self.expiry[key] = asyncio.get_running_loop().time() + self.ttl_s
            self._current = current
        return current

    async def invalidate(self) -> None:
        self._current = None


async def test_fresh_identity_refreshes_credentials_close_to_expiry() -> None:
    resolver = RotatingCredentials(ttl_s=10)
    first = await fresh_identity(resolver, margin_s=5)
    assert await fresh_identity(resolver, margin_s=5) is first  # plenty left: cached
    refreshed = await fresh_identity(resolver, margin_s=20)  # too close: refreshed
    assert refreshed.access_key_id != first.access_key_id


async def test_streams_move_on_before_their_credentials_expire() -> None:
    # Compressed: credentials live 6 s; the session moves on 2.5 s before they expire (it has
    # up to 1.25 s to find a quiet moment, and the rest to open the next stream, under load).
    resolver = RotatingCredentials(ttl_s=6.0)
    script = answer_each_utterance(after_audio_ms=400, user_text="Hi", assistant_text="Hello.")
    async with FakeBedrock(Scenario.each_stream(script)) as fake:
        backend = NovaSonicBackend.from_options(
            credentials_resolver=resolver,
            retry_backoff_s=0.01,
            credential_refresh_margin_s=2.5,
            **fake.backend_options(),
        )
        session = await backend.open(BackendOptions(session_id="creds"))
        got = Collector(session)
        sent = 0
        while len(fake.streams) < 3:
            sent = await send_frames(session, sent, 1, pace=0.01)
            assert sent < 3000, "no stream moved on"
        await session.send(ev.EndSession())
        await got.wait_end()
        await session.aclose()
        await backend.aclose()
        assert not got.of(ev.BackendFailed)
        keys = [s.access_key_id for s in fake.streams]
        assert all(keys) and len(set(keys)) == len(keys), keys  # fresh credentials each
        for stream in fake.streams:
            audio_times = [
                t
                for t, e in zip(stream.event_times, stream.events, strict=True)
                if "audioInput" in e["event"]
            ]
            # No audio was sent on a stream after its credentials expired.
            assert not audio_times or max(audio_times) < resolver.expiry[stream.access_key_id]
    await assert_no_leaked_tasks()
