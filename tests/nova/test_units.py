"""Pure parts of the Nova backend: settings, replay buffers, the replay log, quiet detection."""

from __future__ import annotations

import pytest

from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.nova_sonic import codec
from sonicwire.server.backends.nova_sonic.backend import NovaSonicBackend
from sonicwire.server.backends.nova_sonic.config import NovaSonicSettings
from sonicwire.server.backends.nova_sonic.continuation import AudioRing, QuietTracker, ReplayLog
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import BackendError, ErrorCode
from sonicwire.server.core.history import Message


def test_settings_take_options_then_environment_then_defaults(tmp_path: object) -> None:
    env = {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": "https://bedrock.example:8443",
        "SONICWIRE_NOVA_CONTINUATION_S": "300",
        "SONICWIRE_NOVA_VOICE": "Amy",
    }
    s = NovaSonicSettings.from_options(env, region="us-west-2", model_id=None)
    assert s.region == "us-west-2"  # option beats environment
    assert s.endpoint_url == "https://bedrock.example:8443"
    assert s.continuation_threshold_s == 300.0
    assert s.voice == "amy"
    assert s.model_id == "amazon.nova-2-sonic-v1:0" and s.nova2
    assert NovaSonicSettings.from_options({}).region is None  # the SDK resolves it later
    nova1 = NovaSonicSettings.from_options({}, model_id="amazon.nova-sonic-v1:0")
    assert not nova1.nova2


@pytest.mark.parametrize(
    "options",
    [
        {"regoin": "us-east-1"},
        {"credentials": "magic"},
        {"output_sample_rate": 44_100},
        {"continuation_threshold_s": "soon"},
        {"endpoint_url": "http://127.0.0.1:1"},
        {"ca_bundle": "/nonexistent/ca.pem"},
        {"aws_access_key_id": "only-half"},
        {"endpointing_sensitivity": "EXTREME"},
        {"input_sample_rate": 24_000},
        {"input_sample_rate": "fast"},
    ],
)
def test_bad_options_are_rejected_clearly(options: dict[str, object]) -> None:
    with pytest.raises(BackendError) as caught:
        NovaSonicSettings.from_options({}, **options)
    assert caught.value.reason == "BACKEND_CONFIG_INVALID"
    assert caught.value.code is ErrorCode.FAILED_PRECONDITION


def test_output_rate_follows_the_client_when_nova_can() -> None:
    s = NovaSonicSettings.from_options({})
    assert [s.output_rate_for(r) for r in (8_000, 16_000, 24_000, 48_000)] == [
        8_000,
        16_000,
        24_000,
        24_000,
    ]
    assert (
        NovaSonicSettings.from_options({}, output_sample_rate=24_000).output_rate_for(16_000)
        == 24_000
    )


def test_input_rate_is_the_telephone_band_for_telephone_calls() -> None:
    auto = NovaSonicSettings.from_options({})
    assert [auto.input_rate_for(r) for r in (8_000, 16_000, 24_000, 48_000)] == [
        8_000,
        16_000,
        16_000,
        16_000,
    ]
    assert NovaSonicSettings.from_options({}, input_sample_rate="auto") == auto
    wide = NovaSonicSettings.from_options({"SONICWIRE_NOVA_INPUT_RATE": "16000"})
    assert wide.input_rate_for(8_000) == 16_000
    narrow = NovaSonicSettings.from_options({}, input_sample_rate="8000")
    assert narrow.input_rate_for(16_000) == 8_000
    backend = NovaSonicBackend.from_options(region="us-east-1")
    setup = backend.setup_for(BackendOptions(session_id="s", input_sample_rate=8_000))
    assert setup.input_sample_rate == 8_000
    assert (
        codec.audio_start("p", "a", setup.input_sample_rate)["event"]["contentStart"][
            "audioInputConfiguration"
        ]["sampleRateHertz"]
        == 8_000
    )


def test_voices_and_setup() -> None:
    backend = NovaSonicBackend.from_options(region="us-east-1")
    voices = backend.voices()
    assert [v.id for v in voices if v.default] == ["matthew"]
    assert {"tiffany", "amy", "carolina"} <= {v.id for v in voices}
    nova1 = NovaSonicBackend.from_options(model_id="amazon.nova-sonic-v1:0", voice="tiffany")
    assert "carolina" not in {v.id for v in nova1.voices()}
    assert [v.id for v in nova1.voices() if v.default] == ["tiffany"]
    setup = backend.setup_for(
        BackendOptions(session_id="s", voice=" Amy ", output_sample_rate=8_000)
    )
    assert (setup.voice, setup.output_sample_rate) == ("amy", 8_000)


def test_audio_ring_keeps_whole_recent_frames() -> None:
    ring = AudioRing(keep_ms=100)  # 5 frames of 20 ms
    frames = [bytes([i]) * 640 for i in range(20)]
    for f in frames:
        ring.append(f)
    assert ring.position == 20 * 320
    assert ring.last(60) == frames[-3:]
    assert ring.last(50) == frames[-3:]  # a frame partly inside the window is replayed whole
    assert ring.last(1000) == frames[-5:]  # at most what is kept
    assert ring.since(ring.position) == []
    narrow = AudioRing(keep_ms=100, sample_rate=8_000)  # Nova hears a telephone call at 8 kHz
    for f in frames:
        narrow.append(f)
    assert narrow.samples(100) == 800
    assert narrow.last(1000) == frames[-3:]  # a 640-byte frame is 40 ms at 8 kHz


def test_replay_log_records_what_was_said_and_heard() -> None:
    log = ReplayLog([Message(ev.Role.USER, "Hi"), Message(ev.Role.ASSISTANT, "Hello.")])
    said: list[ev.BackendEvent] = [
        ev.UserTranscript("partial", False),
        ev.UserTranscript("Tell me a joke.", True),
        ev.AssistantText("Why did", False),
        ev.AssistantText("Why did the chicken", True),
    ]
    for event in said:
        log.observe(event)
    # Mid-answer the spoken part already counts (a switch now replays it).
    assert log.messages[-1] == Message(ev.Role.ASSISTANT, "Why did the chicken")
    log.cancelled("Why did", answer_open=True)
    assert log.messages[-1] == Message(ev.Role.ASSISTANT, "Why did")
    log.user_typed("Never mind.")
    log.observe(ev.AssistantText("Okay.", True))
    log.observe(ev.AssistantTurnEnded(ev.StopReason.END_TURN))
    # A barge-in during playback of a fully generated answer cuts the committed message.
    log.cancelled("", answer_open=False)
    assert log.messages == (
        Message(ev.Role.USER, "Hi"),
        Message(ev.Role.ASSISTANT, "Hello."),
        Message(ev.Role.USER, "Tell me a joke."),
        Message(ev.Role.ASSISTANT, "Why did"),
        Message(ev.Role.USER, "Never mind."),
    )


def test_quiet_tracker() -> None:
    quiet = QuietTracker(answer_wait_s=3.0)
    assert quiet.quiet(0.0, assistant_busy=False)
    assert not quiet.quiet(0.0, assistant_busy=True)
    quiet.speech_started()
    assert not quiet.quiet(1.0, assistant_busy=False)
    quiet.speech_stopped(2.0)
    assert not quiet.quiet(3.0, assistant_busy=False)  # the answer is still to come
    quiet.answer_started()
    assert quiet.quiet(3.1, assistant_busy=False)
    quiet.user_turn_sent(10.0)
    assert not quiet.quiet(11.0, assistant_busy=False)
    assert quiet.quiet(13.0, assistant_busy=False)  # Nova chose not to answer
