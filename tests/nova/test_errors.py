"""Every failure class -> its BackendError / BackendFailed reason and code; clean-up after."""

from __future__ import annotations

import asyncio

import pytest

from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.nova_sonic.backend import NovaSonicBackend
from sonicwire.server.backends.nova_sonic.errors import code_for_reason, to_backend_error
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import BackendError, ErrorCode
from sonicwire.server.testing.fake_bedrock import FakeBedrock
from sonicwire.server.testing.fake_scenario import Scenario, fail_after, http_error
from sonicwire.server.testing.fake_stream import FakeStream
from tests.nova.conftest import assert_no_leaked_tasks, open_session, send_frames


@pytest.mark.parametrize(
    ("status", "error_type", "reason", "code", "retryable"),
    [
        (403, "AccessDeniedException", "BACKEND_AUTH_FAILED", ErrorCode.UNAVAILABLE, False),
        (403, "UnrecognizedClientException", "BACKEND_AUTH_FAILED", ErrorCode.UNAVAILABLE, False),
        (429, "ThrottlingException", "BACKEND_THROTTLED", ErrorCode.RESOURCE_EXHAUSTED, True),
        (
            400,
            "ValidationException",
            "BACKEND_VALIDATION_FAILED",
            ErrorCode.INVALID_ARGUMENT,
            False,
        ),
        (503, "ServiceUnavailableException", "BACKEND_UNAVAILABLE", ErrorCode.UNAVAILABLE, True),
        (500, "InternalServerException", "BACKEND_UNAVAILABLE", ErrorCode.UNAVAILABLE, True),
        (
            404,
            "ResourceNotFoundException",
            "BACKEND_CONFIG_INVALID",
            ErrorCode.FAILED_PRECONDITION,
            False,
        ),
    ],
)
async def test_http_errors_at_open(
    status: int, error_type: str, reason: str, code: ErrorCode, retryable: bool
) -> None:
    async with FakeBedrock(Scenario((http_error(status, error_type, "scripted"),))) as fake:
        backend = NovaSonicBackend.from_options(**fake.backend_options(), retry_backoff_s=0.01)
        with pytest.raises(BackendError) as caught:
            await backend.open(BackendOptions(session_id="x"))
        error = caught.value
        assert (error.reason, error.code, error.retryable) == (reason, code, retryable)
        # Transient refusals are retried 3 times (with backoff) before the open gives up.
        attempts = 4 if reason in ("BACKEND_THROTTLED", "BACKEND_UNAVAILABLE") else 1
        assert fake.refused == [(i, status) for i in range(attempts)]
        await backend.aclose()
        await fake.wait_for_disconnect()
    await assert_no_leaked_tasks()


@pytest.mark.parametrize(
    ("exception", "reason", "retryable"),
    [
        ("ValidationException", "BACKEND_VALIDATION_FAILED", False),
    ],
)
async def test_modeled_stream_errors_mid_session_fail_without_reconnect(
    exception: str, reason: str, retryable: bool
) -> None:
    async with FakeBedrock(Scenario((fail_after(exception, audio_ms=40),))) as fake:
        backend, session, got = await open_session(fake)
        await send_frames(session, 0, 3)
        await got.wait_end()
        (failed,) = got.of(ev.BackendFailed)
        assert (failed.reason, failed.retryable) == (reason, retryable)
        assert code_for_reason(failed.reason) is to_backend_error(_named(exception)).code
        assert len(fake.streams) == 1  # no reconnect for these
        await session.send(ev.SendAudio(b"\0\0"))  # ignored after the failure
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def test_stream_time_limit_twice_in_a_row_is_backend_timeout() -> None:
    async with FakeBedrock(Scenario.each_stream(_idle, time_limit_s=0.2)) as fake:
        # Continuation is set far out, so Nova's (compressed) limit strikes first.
        backend, session, got = await open_session(fake, continuation_threshold_s=60, reconnects=1)
        await got.wait_end()
        (failed,) = got.of(ev.BackendFailed)
        assert failed.reason == "BACKEND_TIMEOUT" and failed.retryable
        assert code_for_reason(failed.reason) is ErrorCode.UNAVAILABLE
        assert len(fake.streams) == 2 and all(s.time_limit_hit for s in fake.streams)
        await session.aclose()
        await backend.aclose()
    await assert_no_leaked_tasks()


async def _idle(stream: FakeStream) -> None:
    await stream.wait_input_end(timeout=3600)


async def test_unreachable_endpoint_is_backend_unavailable() -> None:
    async with FakeBedrock() as fake:
        options = {**fake.backend_options(), "ca_bundle": None}
    # The fake is gone: its port refuses connections now.
    backend = NovaSonicBackend.from_options(**options, open_timeout_s=5)
    with pytest.raises(BackendError) as caught:
        await backend.open(BackendOptions(session_id="x"))
    assert caught.value.reason == "BACKEND_UNAVAILABLE" and caught.value.retryable
    await backend.aclose()
    await assert_no_leaked_tasks()


async def test_untrusted_certificate_is_backend_unavailable() -> None:
    """Without the CA bundle the CRT never completes the TLS handshake; the open timeout
    turns that into a clear, retryable failure instead of a hang."""
    async with FakeBedrock() as fake:
        options = {**fake.backend_options(), "ca_bundle": None, "open_timeout_s": 1}
        backend = NovaSonicBackend.from_options(**options)
        with pytest.raises(BackendError) as caught:
            await backend.open(BackendOptions(session_id="x"))
        assert caught.value.reason == "BACKEND_UNAVAILABLE" and caught.value.retryable
        assert fake.streams == []
        await backend.aclose()
        # The fake's side of the dead handshake ends by its own handshake timeout.
        await asyncio.sleep(1.2)
    await assert_no_leaked_tasks()


async def test_missing_credentials_is_backend_auth_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    async with FakeBedrock() as fake:
        options = {**fake.backend_options(), "credentials": "environment"}
        del options["aws_access_key_id"], options["aws_secret_access_key"]
        backend = NovaSonicBackend.from_options(**options)
        with pytest.raises(BackendError) as caught:
            await backend.open(BackendOptions(session_id="x"))
        assert caught.value.reason == "BACKEND_AUTH_FAILED"
        assert fake.streams == []
        await backend.aclose()
    await assert_no_leaked_tasks()


def _named(name: str) -> Exception:
    """An exception whose class is called ``name`` (classification goes by class name)."""
    cls: type[Exception] = type(name, (Exception,), {})
    return cls("scripted")


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (_named("ModelTimeoutException"), "BACKEND_TIMEOUT"),
        (_named("ModelStreamErrorException"), "BACKEND_UNAVAILABLE"),
        (_named("IdentityChainError"), "BACKEND_AUTH_FAILED"),
        (TimeoutError(), "BACKEND_UNAVAILABLE"),
        (OSError("Failed to read from stream."), "BACKEND_UNAVAILABLE"),
    ],
)
def test_exception_classification(exc: Exception, reason: str) -> None:
    error = to_backend_error(exc)
    assert error.reason == reason
    assert error.code is code_for_reason(reason)
