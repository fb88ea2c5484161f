"""Unit tests of the gateway's pure parts: order rules, rate limit, outbox, HTTP checks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader

from sonicwire.gateway.limits import TokenBucket
from sonicwire.gateway.outbox import Outbox, SlowConsumer
from sonicwire.gateway.protocol import (
    Audio,
    Configure,
    EndInput,
    InvalidMessage,
    Playback,
    Text,
    ToolResult,
)
from sonicwire.gateway.routes import (
    MalformedKey,
    StaticFiles,
    api_key_from_offer,
    offered_subprotocols,
    origin_allowed,
    select_subprotocol,
)
from sonicwire.gateway.state import InboundFlow, Phase
from sonicwire.gateway.upstream import session_config_for
from sonicwire.v1 import voice_service_pb2 as pb

pytestmark = pytest.mark.timeout(30)

AUDIO = Audio(b"\0\0")

# -- order rules ------------------------------------------------------------------------------


def test_config_first_opens_with_its_settings() -> None:
    flow = InboundFlow()
    config = Configure(sample_rate_hz=48000)
    assert flow.receive(config) == [config]
    assert flow.receive(AUDIO) == [AUDIO]
    assert flow.phase is Phase.OPEN


@pytest.mark.parametrize("first", [AUDIO, Text("hi"), Playback("t1", 5), ToolResult("c", "x")])
def test_other_input_first_opens_with_defaults(first: Audio | Text | Playback | ToolResult) -> None:
    flow = InboundFlow()
    assert flow.receive(first) == [Configure(), first]
    assert flow.phase is Phase.OPEN


def test_config_twice_or_late_is_refused_without_changing_state() -> None:
    flow = InboundFlow()
    flow.receive(AUDIO)
    with pytest.raises(InvalidMessage) as refused:
        flow.receive(Configure())
    assert refused.value.reason == "CONFIG_ALREADY_RECEIVED"
    assert flow.phase is Phase.OPEN
    assert flow.receive(AUDIO) == [AUDIO]


def test_after_end_only_tool_results_pass() -> None:
    flow = InboundFlow()
    flow.receive(Text("hi"))
    assert flow.receive(EndInput()) == [EndInput()]
    assert flow.receive(ToolResult("c1", "{}")) == [ToolResult("c1", "{}")]
    for late in (AUDIO, Text("more"), Playback("t1", 1), EndInput(), Configure()):
        with pytest.raises(InvalidMessage) as refused:
            flow.receive(late)
        assert refused.value.reason in {"INPUT_ENDED", "CONFIG_ALREADY_RECEIVED"}
    assert flow.phase is Phase.INPUT_ENDED


def test_end_first_needs_no_session() -> None:
    flow = InboundFlow()
    assert flow.receive(EndInput()) == [EndInput()]
    assert flow.phase is Phase.INPUT_ENDED


# -- rate limit -------------------------------------------------------------------------------


def test_token_bucket_allows_burst_then_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.05) is False  # half a token
    assert bucket.take(0.1) is True
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]  # capped at burst


def test_token_bucket_keeps_a_credit_above_the_burst_and_ignores_a_clock_going_back() -> None:
    bucket = TokenBucket(rate=10, burst=2, now=0.0)
    bucket.credit(0.5)  # 5 tokens for time not read: 7 in all, above the burst of 2
    assert bucket.take(0.1) is True  # refilling must not clip the credit to the burst
    assert [bucket.take(0.1) for _ in range(7)] == [True] * 6 + [False]
    assert bucket.take(0.05) is False  # earlier than the last take: nothing refilled
    assert bucket.take(0.2) is True  # 1.5 tokens since the last take


def test_token_bucket_zero_rate_is_unlimited() -> None:
    bucket = TokenBucket(rate=0, burst=1, now=0.0)
    assert all(bucket.take(0.0) for _ in range(1000))


# -- outbox -----------------------------------------------------------------------------------


async def test_outbox_sends_in_order_and_finishes_after_close() -> None:
    sent: list[str | bytes] = []

    async def send(message: str | bytes) -> None:
        sent.append(message)

    outbox = Outbox(send, max_bytes=100, send_timeout_s=1.0)
    writer = asyncio.create_task(outbox.run())
    outbox.put("a")
    outbox.put(b"bc")
    outbox.close()
    await asyncio.wait_for(writer, 5)
    assert sent == ["a", b"bc"]
    assert (outbox.queued_bytes, outbox.peak_bytes, outbox.sent_messages) == (0, 3, 2)
    with pytest.raises(RuntimeError):
        outbox.put("late")


async def test_outbox_refuses_past_its_bound() -> None:
    blocked = asyncio.Event()

    async def send(message: str | bytes) -> None:
        await blocked.wait()

    outbox = Outbox(send, max_bytes=10, send_timeout_s=60.0)
    writer = asyncio.create_task(outbox.run())
    outbox.put("x" * 6)
    outbox.put("y" * 4)
    with pytest.raises(SlowConsumer):
        outbox.put("z")
    assert outbox.queued_bytes == 10
    writer.cancel()


async def test_outbox_send_that_never_completes_is_a_slow_consumer() -> None:
    async def send(message: str | bytes) -> None:
        await asyncio.Event().wait()  # the client never reads

    outbox = Outbox(send, max_bytes=1000, send_timeout_s=0.05)
    outbox.put("hello")
    with pytest.raises(SlowConsumer):
        await asyncio.wait_for(outbox.run(), 5)


async def test_outbox_writes_at_once_only_with_nothing_queued() -> None:
    """``send_now`` takes a message only when the queue is empty; once a message waits, the
    later ones queue behind it, so the client still sees them in order."""
    sent: list[str | bytes] = []
    accept_now = True

    async def send(message: str | bytes) -> None:
        sent.append(message)

    def send_now(message: str | bytes) -> bool:
        if accept_now:
            sent.append(message)
        return accept_now

    outbox = Outbox(send, max_bytes=100, send_timeout_s=1.0, send_now=send_now)
    outbox.put("a")  # written at once: no writer task is running yet
    assert (sent, outbox.queued_bytes, outbox.sent_messages) == (["a"], 0, 1)
    accept_now = False  # e.g. the socket's buffer holds data
    outbox.put("b")
    accept_now = True
    outbox.put("c")  # "b" is queued: "c" must not overtake it
    assert sent == ["a"]
    assert outbox.queued_bytes == 2
    outbox.close()
    await asyncio.wait_for(outbox.run(), 5)
    assert sent == ["a", "b", "c"]
    assert outbox.sent_messages == 3


# -- origin, subprotocols, keys ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "ok"),
    [
        (None, "127.0.0.1:8000", (), True),
        ("http://127.0.0.1:8000", "127.0.0.1:8000", (), True),
        ("https://Voice.Example", "voice.example", (), True),
        ("http://127.0.0.1:8001", "127.0.0.1:8000", (), False),
        ("http://evil.example", "127.0.0.1:8000", (), False),
        ("null", "127.0.0.1:8000", (), False),
        ("chrome-extension://abc", "abc", (), False),
        ("http://127.0.0.1:8000", None, (), False),
        ("https://app.example", "gw.internal", ("https://app.example",), True),
        ("http://127.0.0.1:8000", "127.0.0.1:8000", ("https://app.example",), False),
        ("http://anything", "x", ("*",), True),
    ],
)
def test_origin_allowed(
    origin: str | None, host: str | None, allowed: tuple[str, ...], ok: bool
) -> None:
    assert origin_allowed(origin, host, allowed) is ok


def test_api_key_from_offer() -> None:
    assert api_key_from_offer(["sonicwire.v1", "key.abc-DEF_1"]) == "abc-DEF_1"
    assert api_key_from_offer(["sonicwire.v1"]) is None
    assert api_key_from_offer([]) is None
    with pytest.raises(MalformedKey):
        api_key_from_offer(["key."])
    with pytest.raises(MalformedKey):
        api_key_from_offer(["key.a", "key.b"])


def test_only_the_fixed_subprotocol_is_ever_selected() -> None:
    assert select_subprotocol(None, ["key.secret", "sonicwire.v1"]) == "sonicwire.v1"  # type: ignore[list-item]
    assert select_subprotocol(None, ["key.secret"]) is None  # type: ignore[list-item]


def test_offered_subprotocols_parses_and_rejects_non_tokens() -> None:
    headers = Headers([("Sec-WebSocket-Protocol", "sonicwire.v1, key.k1")])
    assert offered_subprotocols(headers) == ["sonicwire.v1", "key.k1"]
    with pytest.raises(InvalidHeader):
        offered_subprotocols(Headers([("Sec-WebSocket-Protocol", "key.a=b")]))


def test_static_files_serve_only_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<p>hi</p>")
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "a.js").write_text("1")
    (tmp_path / ".secret").write_text("no")
    files = StaticFiles(tmp_path)
    assert files.paths == ["/", "/index.html", "/js/a.js"]
    page = files.response("/")
    assert page is not None and page.body == b"<p>hi</p>"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    script = files.response("/js/a.js")
    assert script is not None and script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    for path in ("/.secret", "/../index.html", "/js/../index.html", "/missing"):
        assert files.response(path) is None


# -- SessionConfig --------------------------------------------------------------------------


def test_session_config_for_maps_every_knob() -> None:
    from sonicwire.gateway.protocol import ClientToolSpec, VadOptions

    config = session_config_for(
        Configure(
            sample_rate_hz=48000,
            output_sample_rate_hz=24000,
            voice="v",
            system_prompt="p",
            barge_in=False,
            barge_in_min_speech_ms=250,
            echo_cancellation=False,
            noise_suppression=False,
            vad=VadOptions("silero", 0.5, 0.1, 0.7, 0.4, 100),
            endpointing="high",
            server_tools=("get_date_time",),
            client_tools=(ClientToolSpec("lookup", "d", '{"type": "object"}', 1000),),
            resume_session_id="sw_1",
        )
    )
    assert config.input_format.sample_rate_hz == 48000
    assert config.output_format.sample_rate_hz == 24000
    assert (config.voice, config.system_prompt, config.resume_session_id) == ("v", "p", "sw_1")
    assert config.barge_in.disabled and config.barge_in.min_speech_ms == 250
    assert config.echo_cancellation.disabled and config.noise_suppression.disabled
    assert config.vad.engine == pb.VAD_ENGINE_SILERO
    assert config.vad.confidence == pytest.approx(0.5)
    assert config.vad.speech_pad_ms == 100
    assert config.inference.endpointing_sensitivity == pb.ENDPOINTING_SENSITIVITY_HIGH
    assert list(config.server_tools) == ["get_date_time"]
    assert [(t.name, t.timeout_ms) for t in config.client_tools] == [("lookup", 1000)]


def test_default_session_config_is_16k_mono_pcm() -> None:
    config = session_config_for(Configure())
    for fmt in (config.input_format, config.output_format):
        assert (fmt.encoding, fmt.sample_rate_hz, fmt.channels) == (
            pb.AUDIO_ENCODING_PCM_S16LE,
            16000,
            1,
        )
    assert not config.barge_in.disabled


def test_token_bucket_credit_covers_time_not_reading() -> None:
    bucket = TokenBucket(rate=50, burst=10, now=0.0)
    # The gateway was busy for 4 s; a fair 50/s client queued 200 messages meanwhile.
    bucket.credit(4.0)
    assert all(bucket.take(4.0) for _ in range(210))
    assert bucket.take(4.0) is False
    # The credit is not clipped by a refill, but it is not replenished either.
    bucket = TokenBucket(rate=50, burst=10, now=0.0)
    bucket.credit(1.0)
    assert bucket.take(0.5) is True
    assert sum(bucket.take(0.5) for _ in range(100)) == 59
