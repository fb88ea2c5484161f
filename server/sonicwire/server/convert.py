"""Proto <-> core conversion (pure): the only module that knows both shapes.

`settings_from_config` validates a `SessionConfig` and fills in defaults (raising
`ProtocolError` with a stable reason); `event_from_request` and `response_from_output` translate
stream messages. `effective_config` renders the settings in force back into a proto for
`SessionStarted`; `wire_formats` and `audio_path` say which audio formats a stream uses
(encoded audio is decoded and encoded by ``transcode.py``; the core sees PCM only).
"""

from __future__ import annotations

from typing import Literal

from sonicwire.server.codecs import (
    SUPPORTED_FORMATS,
    Encoding,
    UnsupportedFormat,
    WireFormat,
    resolve_format,
)
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import ProtocolError
from sonicwire.server.core.settings import (
    MAX_AUDIO_CHUNK_BYTES,
    InferenceSettings,
    SessionSettings,
)
from sonicwire.server.dsp.frames import SAMPLE_RATE
from sonicwire.server.dsp.pipeline import FrontEndSettings
from sonicwire.server.dsp.vad import VadSettings
from sonicwire.server.tools.spec import ToolExecutor, ToolSpec, ToolSpecError
from sonicwire.server.tools.zones import canonical_zone
from sonicwire.server.validate import DEFAULT_MAX_SCHEMA_DEPTH, check_schema_text, echo
from sonicwire.v1 import voice_service_pb2 as pb

__all__ = [
    "audio_path",
    "client_tools_from_config",
    "effective_config",
    "event_from_request",
    "response_from_output",
    "settings_from_config",
    "supported_audio_formats",
    "wire_formats",
]

_ENCODINGS = {
    pb.AUDIO_ENCODING_UNSPECIFIED: Encoding.PCM_S16LE,
    pb.AUDIO_ENCODING_PCM_S16LE: Encoding.PCM_S16LE,
    pb.AUDIO_ENCODING_MULAW: Encoding.MULAW,
    pb.AUDIO_ENCODING_ALAW: Encoding.ALAW,
    pb.AUDIO_ENCODING_OPUS: Encoding.OPUS,
}
_ENCODINGS_BACK = {
    Encoding.PCM_S16LE: pb.AUDIO_ENCODING_PCM_S16LE,
    Encoding.MULAW: pb.AUDIO_ENCODING_MULAW,
    Encoding.ALAW: pb.AUDIO_ENCODING_ALAW,
    Encoding.OPUS: pb.AUDIO_ENCODING_OPUS,
}

_ENDPOINTING = {
    pb.ENDPOINTING_SENSITIVITY_HIGH: "HIGH",
    pb.ENDPOINTING_SENSITIVITY_MEDIUM: "MEDIUM",
    pb.ENDPOINTING_SENSITIVITY_LOW: "LOW",
}
_ENDPOINTING_BACK = {v: k for k, v in _ENDPOINTING.items()}
_TOOL_CHOICE = {
    pb.TOOL_CHOICE_MODE_AUTO: "auto",
    pb.TOOL_CHOICE_MODE_ANY: "any",
    pb.TOOL_CHOICE_MODE_TOOL: "tool",
}
_ROLE = {ev.Role.USER: pb.ROLE_USER, ev.Role.ASSISTANT: pb.ROLE_ASSISTANT}
_SOURCE = {
    ev.InterruptionSource.BARGE_IN: pb.INTERRUPTION_SOURCE_BARGE_IN,
    ev.InterruptionSource.BACKEND: pb.INTERRUPTION_SOURCE_BACKEND,
    ev.InterruptionSource.TEXT_INPUT: pb.INTERRUPTION_SOURCE_TEXT_INPUT,
}
_EXECUTOR = {
    ev.ToolExecutor.SERVER: pb.TOOL_EXECUTOR_SERVER,
    ev.ToolExecutor.CLIENT: pb.TOOL_EXECUTOR_CLIENT,
}
_TOOL_STATUS = {
    ev.ToolStatus.OK: pb.TOOL_STATUS_OK,
    ev.ToolStatus.ERROR: pb.TOOL_STATUS_ERROR,
    ev.ToolStatus.INVALID_ARGUMENTS: pb.TOOL_STATUS_INVALID_ARGUMENTS,
    ev.ToolStatus.TIMEOUT: pb.TOOL_STATUS_TIMEOUT,
    ev.ToolStatus.CANCELLED: pb.TOOL_STATUS_CANCELLED,
    ev.ToolStatus.UNKNOWN_TOOL: pb.TOOL_STATUS_UNKNOWN_TOOL,
}
_STOP = {
    ev.StopReason.END_TURN: pb.STOP_REASON_END_TURN,
    ev.StopReason.INTERRUPTED: pb.STOP_REASON_INTERRUPTED,
    ev.StopReason.TOOL_USE: pb.STOP_REASON_TOOL_USE,
    ev.StopReason.ERROR: pb.STOP_REASON_ERROR,
}


def _wire_format(fmt: pb.AudioFormat, which: str) -> WireFormat:
    encoding = _ENCODINGS.get(fmt.encoding)
    if encoding is None:
        raise ProtocolError(
            "AUDIO_FORMAT_UNSUPPORTED", f"{which}: unknown audio encoding {fmt.encoding}"
        )
    try:
        return resolve_format(encoding, fmt.sample_rate_hz, fmt.channels)
    except UnsupportedFormat as error:
        raise ProtocolError("AUDIO_FORMAT_UNSUPPORTED", f"{which}: {error}") from None


def wire_formats(config: pb.SessionConfig) -> tuple[WireFormat, WireFormat]:
    """The validated input and output formats. Raises `ProtocolError` AUDIO_FORMAT_UNSUPPORTED."""
    return (
        _wire_format(config.input_format, "input_format"),
        _wire_format(config.output_format, "output_format"),
    )


def _format_proto(fmt: WireFormat) -> pb.AudioFormat:
    return pb.AudioFormat(
        encoding=_ENCODINGS_BACK[fmt.encoding], sample_rate_hz=fmt.sample_rate, channels=1
    )


def audio_path(config: pb.SessionConfig) -> pb.AudioPath:
    """The effective audio path of a (validated) config, for `SessionStarted.audio_path`."""
    input_format, output_format = wire_formats(config)
    return pb.AudioPath(
        input_format=_format_proto(input_format),
        output_format=_format_proto(output_format),
        output_packet_ms=output_format.packet_ms,
        max_input_chunk_bytes=MAX_AUDIO_CHUNK_BYTES,
        processing_sample_rate_hz=SAMPLE_RATE,
    )


def supported_audio_formats() -> list[pb.SupportedAudioFormat]:
    """Every encoding and rate the server takes, for `ListVoicesResponse.audio_formats`."""
    return [
        pb.SupportedAudioFormat(
            encoding=_ENCODINGS_BACK[support.encoding],
            sample_rates_hz=list(support.sample_rates),
            default_sample_rate_hz=support.default_rate,
            output_packet_ms=support.packet_ms,
        )
        for support in SUPPORTED_FORMATS
    ]


def _in_range(value: float, low: float, high: float, what: str) -> float:
    if not low <= value <= high:
        raise ProtocolError("CONFIG_INVALID", f"{what} must be within [{low}, {high}], got {value}")
    return value


def _time_zone(name: str) -> str:
    """``name`` as a canonical IANA zone key, "" when empty. Raises `ProtocolError`."""
    if not name:
        return ""
    canonical = canonical_zone(name)
    if canonical is None:
        # Cut: the name is client input and goes into the status message.
        raise ProtocolError(
            "TIME_ZONE_INVALID",
            f"time_zone {name[:64]!r} is not an IANA time zone (e.g. 'Europe/Paris')",
        )
    return canonical


# webrtcvad's most aggressive mode rejects stretches of band-limited (telephone) speech: in
# the echo evaluation's 4 s mu-law utterance it scored 560 ms of words at confidence 0, the
# utterance ended early and its rest barged in on the reply. Mode 2 keeps it whole.
_NARROWBAND_WEBRTC_AGGRESSIVENESS = 2


def _vad(config: pb.VadSettings, *, narrowband: bool = False) -> VadSettings:
    defaults = VadSettings()
    engine: Literal["webrtc", "silero"] = (
        "silero" if config.engine == pb.VAD_ENGINE_SILERO else "webrtc"
    )
    return VadSettings(
        engine=engine,
        confidence=_in_range(config.confidence or defaults.confidence, 0, 1, "vad.confidence"),
        start_secs=_in_range(config.start_secs or defaults.start_secs, 0, 5, "vad.start_secs"),
        stop_secs=_in_range(config.stop_secs or defaults.stop_secs, 0, 10, "vad.stop_secs"),
        min_volume=_in_range(config.min_volume or defaults.min_volume, 0, 1, "vad.min_volume"),
        webrtc_aggressiveness=(
            _NARROWBAND_WEBRTC_AGGRESSIVENESS if narrowband else defaults.webrtc_aggressiveness
        ),
        speech_pad_ms=int(
            _in_range(config.speech_pad_ms or defaults.speech_pad_ms, 0, 2000, "vad.speech_pad_ms")
        ),
    )


def client_tools_from_config(
    config: pb.SessionConfig, *, max_schema_depth: int = DEFAULT_MAX_SCHEMA_DEPTH
) -> list[ToolSpec]:
    """Parse the client's tool declarations. Raises `ProtocolError` (CLIENT_TOOL_INVALID,
    TOOL_SCHEMA_TOO_DEEP).

    Costs ~0.2 ms per tool (schema checks): callers with many tools run it off the event loop
    after ``validate.check_config_shape`` bounded the count and sizes.
    """
    tools: list[ToolSpec] = []
    seen: set[str] = set()
    for tool in config.client_tools:
        if tool.name in seen:
            raise ProtocolError(
                "CLIENT_TOOL_INVALID", f"client tool {echo(tool.name)} is declared twice"
            )
        seen.add(tool.name)
        if tool.timeout_ms < 0:
            raise ProtocolError(
                "CLIENT_TOOL_INVALID", f"client tool {echo(tool.name)}: negative timeout"
            )
        schema = tool.parameters_json_schema or '{"type": "object"}'
        check_schema_text(tool.name, schema, max_schema_depth)
        try:
            tools.append(
                ToolSpec.from_json(
                    tool.name,
                    tool.description,
                    schema,
                    executor=ToolExecutor.CLIENT,
                    timeout_s=tool.timeout_ms / 1000 if tool.timeout_ms else None,
                    examples=tuple(tool.examples),
                    answer=tool.answer_template,
                    continue_on_interruption=tool.continue_on_interruption,
                )
            )
        except ToolSpecError as error:
            raise ProtocolError("CLIENT_TOOL_INVALID", _bounded(str(error))) from None
        except RecursionError:
            # The depth check above makes this unreachable for JSON nesting; kept so that no
            # schema shape can ever surface as an internal error.
            raise ProtocolError(
                "TOOL_SCHEMA_TOO_DEEP", f"client tool {echo(tool.name)}: the schema nests too deep"
            ) from None
    return tools


def _bounded(message: str, limit: int = 512) -> str:
    return message if len(message) <= limit else message[:limit] + "..."


def settings_from_config(
    config: pb.SessionConfig, client_tools: list[ToolSpec] | None = None
) -> SessionSettings:
    """Validate ``config`` and return the settings in force. Raises `ProtocolError`.

    ``client_tools``: the result of `client_tools_from_config` when the caller has it already
    (parsing tools is the expensive part of a config).
    """
    input_format, output_format = wire_formats(config)
    if len(config.system_prompt.encode()) > 40_000:
        raise ProtocolError("CONFIG_INVALID", "system_prompt exceeds 40000 UTF-8 bytes")
    front = FrontEndSettings(
        echo_cancellation=not config.echo_cancellation.disabled,
        echo_tail_ms=int(
            _in_range(
                config.echo_cancellation.tail_ms or 200, 20, 1000, "echo_cancellation.tail_ms"
            )
        ),
        noise_suppression=not config.noise_suppression.disabled,
        noise_suppress_db=int(
            _in_range(
                config.noise_suppression.suppress_db or -30, -90, 0, "noise_suppression.suppress_db"
            )
        ),
        agc=config.noise_suppression.agc,
        vad=_vad(config.vad, narrowband=input_format.sample_rate <= 8000),
    )
    inference = InferenceSettings(
        max_tokens=config.inference.max_tokens or None,
        temperature=0.0 if config.inference.greedy else (config.inference.temperature or None),
        top_p=config.inference.top_p or None,
        endpointing_sensitivity=_ENDPOINTING.get(config.inference.endpointing_sensitivity),
        tool_choice=_TOOL_CHOICE.get(config.tool_choice.mode),
        tool_choice_name=config.tool_choice.tool_name,
    )
    if client_tools is None:
        client_tools = client_tools_from_config(config)
    return SessionSettings(
        time_zone=_time_zone(config.time_zone),
        # Decoded input and not-yet-encoded output are PCM at the wire format's rate.
        input_sample_rate=input_format.sample_rate,
        output_sample_rate=output_format.sample_rate,
        voice=config.voice,
        system_prompt=config.system_prompt,
        front_end=front,
        barge_in=not config.barge_in.disabled,
        barge_in_min_ms=int(
            _in_range(config.barge_in.min_speech_ms or 200, 0, 5000, "barge_in.min_speech_ms")
        ),
        inference=inference,
        client_tools=frozenset(tool.name for tool in client_tools),
        # The client's tools here; the server's own are added when the session's tools are
        # known (`runtime`: `SessionConfig.server_tools` picks among them).
        tools_surviving_interruption=frozenset(
            tool.name for tool in client_tools if tool.continue_on_interruption
        ),
    )


def effective_config(
    settings: SessionSettings, original: pb.SessionConfig, voice: str
) -> pb.SessionConfig:
    """The configuration in force, with defaults filled in, for `SessionStarted`."""
    front = settings.front_end
    vad = front.vad
    config = pb.SessionConfig()
    config.CopyFrom(original)
    input_format, output_format = wire_formats(original)
    config.input_format.CopyFrom(_format_proto(input_format))
    config.output_format.CopyFrom(_format_proto(output_format))
    config.voice = voice
    config.time_zone = settings.time_zone
    config.vad.engine = pb.VAD_ENGINE_SILERO if vad.engine == "silero" else pb.VAD_ENGINE_WEBRTC
    config.vad.confidence = vad.confidence
    config.vad.start_secs = vad.start_secs
    config.vad.stop_secs = vad.stop_secs
    config.vad.min_volume = vad.min_volume
    config.vad.speech_pad_ms = vad.speech_pad_ms
    config.barge_in.disabled = not settings.barge_in
    config.barge_in.min_speech_ms = settings.barge_in_min_ms
    config.echo_cancellation.disabled = not front.echo_cancellation
    config.echo_cancellation.tail_ms = front.echo_tail_ms
    config.noise_suppression.disabled = not front.noise_suppression
    config.noise_suppression.suppress_db = front.noise_suppress_db
    config.noise_suppression.agc = front.agc
    if settings.inference.endpointing_sensitivity:
        config.inference.endpointing_sensitivity = _ENDPOINTING_BACK[
            settings.inference.endpointing_sensitivity
        ]
    return config


def event_from_request(request: pb.ConverseRequest) -> ev.ClientEvent:
    """Translate a non-first request. Raises `ProtocolError` for a second config or none."""
    kind = request.WhichOneof("request")
    if kind == "audio":  # ~50 a second per stream: before the match below
        return ev.AudioReceived(request.audio.audio)
    match kind:
        case "audio":
            return ev.AudioReceived(request.audio.audio)
        case "text":
            return ev.TextReceived(request.text.text)
        case "tool_result":
            result = request.tool_result
            return ev.ToolResultReceived(result.tool_call_id, result.content, result.is_error)
        case "playback":
            playback = request.playback
            return ev.PlaybackReported(
                playback.turn_id, playback.played_ms, playback.output_latency_ms
            )
        case "config":
            raise ProtocolError(
                "CONFIG_ALREADY_RECEIVED",
                "SessionConfig may only be sent once, as the first message",
            )
        case _:
            raise ProtocolError("REQUEST_EMPTY", "ConverseRequest carries no message")


def response_from_output(output: ev.ClientOutput) -> pb.ConverseResponse:
    """Translate a core output into the proto the client receives."""
    if type(output) is ev.AudioOut:
        # Most outputs: set the fields in place (the nested-constructor form below copies
        # the AudioOutput into the response; ~2 us each in the benchmark's profile).
        response = pb.ConverseResponse()
        chunk = response.audio
        chunk.SetInParent()  # the oneof is set even for empty fields, as the constructor does
        chunk.audio = output.audio
        chunk.turn_id = output.turn_id
        chunk.offset_ms = output.offset_ms
        return response
    match output:
        case ev.AudioOut(audio, turn_id, offset_ms):
            return pb.ConverseResponse(
                audio=pb.AudioOutput(audio=audio, turn_id=turn_id, offset_ms=offset_ms)
            )
        case ev.TranscriptOut(role, text, final, turn_id):
            return pb.ConverseResponse(
                transcript=pb.Transcript(role=_ROLE[role], text=text, final=final, turn_id=turn_id)
            )
        case ev.SpeechActivityOut(started, offset_ms):
            kind = pb.SPEECH_ACTIVITY_KIND_STARTED if started else pb.SPEECH_ACTIVITY_KIND_STOPPED
            return pb.ConverseResponse(
                speech_activity=pb.SpeechActivity(kind=kind, offset_ms=offset_ms)
            )
        case ev.InterruptionOut(turn_id, played_ms, source, _):
            return pb.ConverseResponse(
                interruption=pb.Interruption(
                    turn_id=turn_id, played_ms=played_ms, source=_SOURCE[source]
                )
            )
        case ev.ToolCallOut(call_id, name, arguments_json, executor, turn_id):
            return pb.ConverseResponse(
                tool_call=pb.ToolCall(
                    id=call_id,
                    name=name,
                    arguments_json=arguments_json,
                    executor=_EXECUTOR[executor],
                    turn_id=turn_id,
                )
            )
        case ev.ToolCallResultOut(call_id, name, status, result_json, duration_ms):
            return pb.ConverseResponse(
                tool_call_result=pb.ToolCallResult(
                    id=call_id,
                    name=name,
                    status=_TOOL_STATUS[status],
                    result_json=result_json,
                    duration_ms=duration_ms,
                )
            )
        case ev.TurnCompleteOut(turn_id, reason, first_audio, transcript, tools, audio_ms):
            return pb.ConverseResponse(
                turn_complete=pb.TurnComplete(
                    turn_id=turn_id,
                    stop_reason=_STOP[reason],
                    latency=pb.TurnLatency(
                        first_audio_ms=first_audio, transcript_ms=transcript, tools_ms=tools
                    ),
                    audio_ms=audio_ms,
                )
            )
        case ev.UsageOut(inp, out, total):
            return pb.ConverseResponse(
                usage=pb.Usage(input_tokens=inp, output_tokens=out, total_tokens=total)
            )
        case ev.GoingAwayOut(reason, grace_ms):
            return pb.ConverseResponse(going_away=pb.GoingAway(reason=reason, grace_ms=grace_ms))
        case ev.WarningOut(reason, message):
            return pb.ConverseResponse(warning=pb.Warning(reason=reason, message=message))
