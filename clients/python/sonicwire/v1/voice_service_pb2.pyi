from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AudioEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIO_ENCODING_UNSPECIFIED: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_PCM_S16LE: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_MULAW: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_ALAW: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_OPUS: _ClassVar[AudioEncoding]

class VadEngine(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VAD_ENGINE_UNSPECIFIED: _ClassVar[VadEngine]
    VAD_ENGINE_WEBRTC: _ClassVar[VadEngine]
    VAD_ENGINE_SILERO: _ClassVar[VadEngine]

class EndpointingSensitivity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENDPOINTING_SENSITIVITY_UNSPECIFIED: _ClassVar[EndpointingSensitivity]
    ENDPOINTING_SENSITIVITY_HIGH: _ClassVar[EndpointingSensitivity]
    ENDPOINTING_SENSITIVITY_MEDIUM: _ClassVar[EndpointingSensitivity]
    ENDPOINTING_SENSITIVITY_LOW: _ClassVar[EndpointingSensitivity]

class ToolChoiceMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOOL_CHOICE_MODE_UNSPECIFIED: _ClassVar[ToolChoiceMode]
    TOOL_CHOICE_MODE_AUTO: _ClassVar[ToolChoiceMode]
    TOOL_CHOICE_MODE_ANY: _ClassVar[ToolChoiceMode]
    TOOL_CHOICE_MODE_TOOL: _ClassVar[ToolChoiceMode]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_USER: _ClassVar[Role]
    ROLE_ASSISTANT: _ClassVar[Role]

class SpeechActivityKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SPEECH_ACTIVITY_KIND_UNSPECIFIED: _ClassVar[SpeechActivityKind]
    SPEECH_ACTIVITY_KIND_STARTED: _ClassVar[SpeechActivityKind]
    SPEECH_ACTIVITY_KIND_STOPPED: _ClassVar[SpeechActivityKind]

class InterruptionSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERRUPTION_SOURCE_UNSPECIFIED: _ClassVar[InterruptionSource]
    INTERRUPTION_SOURCE_BARGE_IN: _ClassVar[InterruptionSource]
    INTERRUPTION_SOURCE_BACKEND: _ClassVar[InterruptionSource]
    INTERRUPTION_SOURCE_TEXT_INPUT: _ClassVar[InterruptionSource]

class ToolExecutor(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOOL_EXECUTOR_UNSPECIFIED: _ClassVar[ToolExecutor]
    TOOL_EXECUTOR_SERVER: _ClassVar[ToolExecutor]
    TOOL_EXECUTOR_CLIENT: _ClassVar[ToolExecutor]

class ToolStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOOL_STATUS_UNSPECIFIED: _ClassVar[ToolStatus]
    TOOL_STATUS_OK: _ClassVar[ToolStatus]
    TOOL_STATUS_ERROR: _ClassVar[ToolStatus]
    TOOL_STATUS_INVALID_ARGUMENTS: _ClassVar[ToolStatus]
    TOOL_STATUS_TIMEOUT: _ClassVar[ToolStatus]
    TOOL_STATUS_CANCELLED: _ClassVar[ToolStatus]
    TOOL_STATUS_UNKNOWN_TOOL: _ClassVar[ToolStatus]

class StopReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STOP_REASON_UNSPECIFIED: _ClassVar[StopReason]
    STOP_REASON_END_TURN: _ClassVar[StopReason]
    STOP_REASON_INTERRUPTED: _ClassVar[StopReason]
    STOP_REASON_TOOL_USE: _ClassVar[StopReason]
    STOP_REASON_ERROR: _ClassVar[StopReason]
AUDIO_ENCODING_UNSPECIFIED: AudioEncoding
AUDIO_ENCODING_PCM_S16LE: AudioEncoding
AUDIO_ENCODING_MULAW: AudioEncoding
AUDIO_ENCODING_ALAW: AudioEncoding
AUDIO_ENCODING_OPUS: AudioEncoding
VAD_ENGINE_UNSPECIFIED: VadEngine
VAD_ENGINE_WEBRTC: VadEngine
VAD_ENGINE_SILERO: VadEngine
ENDPOINTING_SENSITIVITY_UNSPECIFIED: EndpointingSensitivity
ENDPOINTING_SENSITIVITY_HIGH: EndpointingSensitivity
ENDPOINTING_SENSITIVITY_MEDIUM: EndpointingSensitivity
ENDPOINTING_SENSITIVITY_LOW: EndpointingSensitivity
TOOL_CHOICE_MODE_UNSPECIFIED: ToolChoiceMode
TOOL_CHOICE_MODE_AUTO: ToolChoiceMode
TOOL_CHOICE_MODE_ANY: ToolChoiceMode
TOOL_CHOICE_MODE_TOOL: ToolChoiceMode
ROLE_UNSPECIFIED: Role
ROLE_USER: Role
ROLE_ASSISTANT: Role
SPEECH_ACTIVITY_KIND_UNSPECIFIED: SpeechActivityKind
SPEECH_ACTIVITY_KIND_STARTED: SpeechActivityKind
SPEECH_ACTIVITY_KIND_STOPPED: SpeechActivityKind
INTERRUPTION_SOURCE_UNSPECIFIED: InterruptionSource
INTERRUPTION_SOURCE_BARGE_IN: InterruptionSource
INTERRUPTION_SOURCE_BACKEND: InterruptionSource
INTERRUPTION_SOURCE_TEXT_INPUT: InterruptionSource
TOOL_EXECUTOR_UNSPECIFIED: ToolExecutor
TOOL_EXECUTOR_SERVER: ToolExecutor
TOOL_EXECUTOR_CLIENT: ToolExecutor
TOOL_STATUS_UNSPECIFIED: ToolStatus
TOOL_STATUS_OK: ToolStatus
TOOL_STATUS_ERROR: ToolStatus
TOOL_STATUS_INVALID_ARGUMENTS: ToolStatus
TOOL_STATUS_TIMEOUT: ToolStatus
TOOL_STATUS_CANCELLED: ToolStatus
TOOL_STATUS_UNKNOWN_TOOL: ToolStatus
STOP_REASON_UNSPECIFIED: StopReason
STOP_REASON_END_TURN: StopReason
STOP_REASON_INTERRUPTED: StopReason
STOP_REASON_TOOL_USE: StopReason
STOP_REASON_ERROR: StopReason

class AudioFormat(_message.Message):
    __slots__ = ("encoding", "sample_rate_hz", "channels")
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    encoding: AudioEncoding
    sample_rate_hz: int
    channels: int
    def __init__(self, encoding: _Optional[_Union[AudioEncoding, str]] = ..., sample_rate_hz: _Optional[int] = ..., channels: _Optional[int] = ...) -> None: ...

class VadSettings(_message.Message):
    __slots__ = ("engine", "confidence", "start_secs", "stop_secs", "min_volume", "speech_pad_ms")
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    START_SECS_FIELD_NUMBER: _ClassVar[int]
    STOP_SECS_FIELD_NUMBER: _ClassVar[int]
    MIN_VOLUME_FIELD_NUMBER: _ClassVar[int]
    SPEECH_PAD_MS_FIELD_NUMBER: _ClassVar[int]
    engine: VadEngine
    confidence: float
    start_secs: float
    stop_secs: float
    min_volume: float
    speech_pad_ms: int
    def __init__(self, engine: _Optional[_Union[VadEngine, str]] = ..., confidence: _Optional[float] = ..., start_secs: _Optional[float] = ..., stop_secs: _Optional[float] = ..., min_volume: _Optional[float] = ..., speech_pad_ms: _Optional[int] = ...) -> None: ...

class BargeInSettings(_message.Message):
    __slots__ = ("disabled", "min_speech_ms")
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    MIN_SPEECH_MS_FIELD_NUMBER: _ClassVar[int]
    disabled: bool
    min_speech_ms: int
    def __init__(self, disabled: _Optional[bool] = ..., min_speech_ms: _Optional[int] = ...) -> None: ...

class EchoCancellationSettings(_message.Message):
    __slots__ = ("disabled", "tail_ms")
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    TAIL_MS_FIELD_NUMBER: _ClassVar[int]
    disabled: bool
    tail_ms: int
    def __init__(self, disabled: _Optional[bool] = ..., tail_ms: _Optional[int] = ...) -> None: ...

class NoiseSuppressionSettings(_message.Message):
    __slots__ = ("disabled", "suppress_db", "agc")
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    SUPPRESS_DB_FIELD_NUMBER: _ClassVar[int]
    AGC_FIELD_NUMBER: _ClassVar[int]
    disabled: bool
    suppress_db: int
    agc: bool
    def __init__(self, disabled: _Optional[bool] = ..., suppress_db: _Optional[int] = ..., agc: _Optional[bool] = ...) -> None: ...

class InferenceSettings(_message.Message):
    __slots__ = ("max_tokens", "temperature", "top_p", "endpointing_sensitivity", "greedy")
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTING_SENSITIVITY_FIELD_NUMBER: _ClassVar[int]
    GREEDY_FIELD_NUMBER: _ClassVar[int]
    max_tokens: int
    temperature: float
    top_p: float
    endpointing_sensitivity: EndpointingSensitivity
    greedy: bool
    def __init__(self, max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., endpointing_sensitivity: _Optional[_Union[EndpointingSensitivity, str]] = ..., greedy: _Optional[bool] = ...) -> None: ...

class ToolDefinition(_message.Message):
    __slots__ = ("name", "description", "parameters_json_schema", "timeout_ms", "examples", "answer_template", "continue_on_interruption")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    ANSWER_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    CONTINUE_ON_INTERRUPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    parameters_json_schema: str
    timeout_ms: int
    examples: _containers.RepeatedScalarFieldContainer[str]
    answer_template: str
    continue_on_interruption: bool
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., parameters_json_schema: _Optional[str] = ..., timeout_ms: _Optional[int] = ..., examples: _Optional[_Iterable[str]] = ..., answer_template: _Optional[str] = ..., continue_on_interruption: _Optional[bool] = ...) -> None: ...

class ToolChoice(_message.Message):
    __slots__ = ("mode", "tool_name")
    MODE_FIELD_NUMBER: _ClassVar[int]
    TOOL_NAME_FIELD_NUMBER: _ClassVar[int]
    mode: ToolChoiceMode
    tool_name: str
    def __init__(self, mode: _Optional[_Union[ToolChoiceMode, str]] = ..., tool_name: _Optional[str] = ...) -> None: ...

class SessionConfig(_message.Message):
    __slots__ = ("input_format", "output_format", "voice", "system_prompt", "vad", "barge_in", "echo_cancellation", "noise_suppression", "inference", "client_tools", "server_tools", "resume_session_id", "time_zone", "resume_token", "tool_choice", "assistant_speaks_first", "speak_first_prompt")
    INPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    VAD_FIELD_NUMBER: _ClassVar[int]
    BARGE_IN_FIELD_NUMBER: _ClassVar[int]
    ECHO_CANCELLATION_FIELD_NUMBER: _ClassVar[int]
    NOISE_SUPPRESSION_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_TOOLS_FIELD_NUMBER: _ClassVar[int]
    SERVER_TOOLS_FIELD_NUMBER: _ClassVar[int]
    RESUME_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    ASSISTANT_SPEAKS_FIRST_FIELD_NUMBER: _ClassVar[int]
    SPEAK_FIRST_PROMPT_FIELD_NUMBER: _ClassVar[int]
    input_format: AudioFormat
    output_format: AudioFormat
    voice: str
    system_prompt: str
    vad: VadSettings
    barge_in: BargeInSettings
    echo_cancellation: EchoCancellationSettings
    noise_suppression: NoiseSuppressionSettings
    inference: InferenceSettings
    client_tools: _containers.RepeatedCompositeFieldContainer[ToolDefinition]
    server_tools: _containers.RepeatedScalarFieldContainer[str]
    resume_session_id: str
    time_zone: str
    resume_token: str
    tool_choice: ToolChoice
    assistant_speaks_first: bool
    speak_first_prompt: str
    def __init__(self, input_format: _Optional[_Union[AudioFormat, _Mapping]] = ..., output_format: _Optional[_Union[AudioFormat, _Mapping]] = ..., voice: _Optional[str] = ..., system_prompt: _Optional[str] = ..., vad: _Optional[_Union[VadSettings, _Mapping]] = ..., barge_in: _Optional[_Union[BargeInSettings, _Mapping]] = ..., echo_cancellation: _Optional[_Union[EchoCancellationSettings, _Mapping]] = ..., noise_suppression: _Optional[_Union[NoiseSuppressionSettings, _Mapping]] = ..., inference: _Optional[_Union[InferenceSettings, _Mapping]] = ..., client_tools: _Optional[_Iterable[_Union[ToolDefinition, _Mapping]]] = ..., server_tools: _Optional[_Iterable[str]] = ..., resume_session_id: _Optional[str] = ..., time_zone: _Optional[str] = ..., resume_token: _Optional[str] = ..., tool_choice: _Optional[_Union[ToolChoice, _Mapping]] = ..., assistant_speaks_first: _Optional[bool] = ..., speak_first_prompt: _Optional[str] = ...) -> None: ...

class AudioInput(_message.Message):
    __slots__ = ("audio",)
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    def __init__(self, audio: _Optional[bytes] = ...) -> None: ...

class TextInput(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class ToolResult(_message.Message):
    __slots__ = ("tool_call_id", "content", "is_error")
    TOOL_CALL_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    IS_ERROR_FIELD_NUMBER: _ClassVar[int]
    tool_call_id: str
    content: str
    is_error: bool
    def __init__(self, tool_call_id: _Optional[str] = ..., content: _Optional[str] = ..., is_error: _Optional[bool] = ...) -> None: ...

class PlaybackUpdate(_message.Message):
    __slots__ = ("turn_id", "played_ms", "output_latency_ms")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYED_MS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    played_ms: int
    output_latency_ms: int
    def __init__(self, turn_id: _Optional[str] = ..., played_ms: _Optional[int] = ..., output_latency_ms: _Optional[int] = ...) -> None: ...

class ConverseRequest(_message.Message):
    __slots__ = ("config", "audio", "text", "tool_result", "playback")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TOOL_RESULT_FIELD_NUMBER: _ClassVar[int]
    PLAYBACK_FIELD_NUMBER: _ClassVar[int]
    config: SessionConfig
    audio: AudioInput
    text: TextInput
    tool_result: ToolResult
    playback: PlaybackUpdate
    def __init__(self, config: _Optional[_Union[SessionConfig, _Mapping]] = ..., audio: _Optional[_Union[AudioInput, _Mapping]] = ..., text: _Optional[_Union[TextInput, _Mapping]] = ..., tool_result: _Optional[_Union[ToolResult, _Mapping]] = ..., playback: _Optional[_Union[PlaybackUpdate, _Mapping]] = ...) -> None: ...

class SessionLimits(_message.Message):
    __slots__ = ("max_audio_chunk_bytes", "max_session_seconds", "idle_timeout_seconds")
    MAX_AUDIO_CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    max_audio_chunk_bytes: int
    max_session_seconds: int
    idle_timeout_seconds: int
    def __init__(self, max_audio_chunk_bytes: _Optional[int] = ..., max_session_seconds: _Optional[int] = ..., idle_timeout_seconds: _Optional[int] = ...) -> None: ...

class SessionStarted(_message.Message):
    __slots__ = ("session_id", "config", "backend", "limits", "tools", "audio_path", "resume_token")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_PATH_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    config: SessionConfig
    backend: str
    limits: SessionLimits
    tools: _containers.RepeatedScalarFieldContainer[str]
    audio_path: AudioPath
    resume_token: str
    def __init__(self, session_id: _Optional[str] = ..., config: _Optional[_Union[SessionConfig, _Mapping]] = ..., backend: _Optional[str] = ..., limits: _Optional[_Union[SessionLimits, _Mapping]] = ..., tools: _Optional[_Iterable[str]] = ..., audio_path: _Optional[_Union[AudioPath, _Mapping]] = ..., resume_token: _Optional[str] = ...) -> None: ...

class AudioPath(_message.Message):
    __slots__ = ("input_format", "output_format", "output_packet_ms", "max_input_chunk_bytes", "processing_sample_rate_hz")
    INPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PACKET_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_INPUT_CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    input_format: AudioFormat
    output_format: AudioFormat
    output_packet_ms: int
    max_input_chunk_bytes: int
    processing_sample_rate_hz: int
    def __init__(self, input_format: _Optional[_Union[AudioFormat, _Mapping]] = ..., output_format: _Optional[_Union[AudioFormat, _Mapping]] = ..., output_packet_ms: _Optional[int] = ..., max_input_chunk_bytes: _Optional[int] = ..., processing_sample_rate_hz: _Optional[int] = ...) -> None: ...

class SupportedAudioFormat(_message.Message):
    __slots__ = ("encoding", "sample_rates_hz", "default_sample_rate_hz", "output_packet_ms")
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATES_HZ_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PACKET_MS_FIELD_NUMBER: _ClassVar[int]
    encoding: AudioEncoding
    sample_rates_hz: _containers.RepeatedScalarFieldContainer[int]
    default_sample_rate_hz: int
    output_packet_ms: int
    def __init__(self, encoding: _Optional[_Union[AudioEncoding, str]] = ..., sample_rates_hz: _Optional[_Iterable[int]] = ..., default_sample_rate_hz: _Optional[int] = ..., output_packet_ms: _Optional[int] = ...) -> None: ...

class AudioOutput(_message.Message):
    __slots__ = ("audio", "turn_id", "offset_ms")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_MS_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    turn_id: str
    offset_ms: int
    def __init__(self, audio: _Optional[bytes] = ..., turn_id: _Optional[str] = ..., offset_ms: _Optional[int] = ...) -> None: ...

class Transcript(_message.Message):
    __slots__ = ("role", "text", "final", "turn_id")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    role: Role
    text: str
    final: bool
    turn_id: str
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., text: _Optional[str] = ..., final: _Optional[bool] = ..., turn_id: _Optional[str] = ...) -> None: ...

class SpeechActivity(_message.Message):
    __slots__ = ("kind", "offset_ms")
    KIND_FIELD_NUMBER: _ClassVar[int]
    OFFSET_MS_FIELD_NUMBER: _ClassVar[int]
    kind: SpeechActivityKind
    offset_ms: int
    def __init__(self, kind: _Optional[_Union[SpeechActivityKind, str]] = ..., offset_ms: _Optional[int] = ...) -> None: ...

class Interruption(_message.Message):
    __slots__ = ("turn_id", "played_ms", "source")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYED_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    played_ms: int
    source: InterruptionSource
    def __init__(self, turn_id: _Optional[str] = ..., played_ms: _Optional[int] = ..., source: _Optional[_Union[InterruptionSource, str]] = ...) -> None: ...

class ToolCall(_message.Message):
    __slots__ = ("id", "name", "arguments_json", "executor", "turn_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_JSON_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    arguments_json: str
    executor: ToolExecutor
    turn_id: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., arguments_json: _Optional[str] = ..., executor: _Optional[_Union[ToolExecutor, str]] = ..., turn_id: _Optional[str] = ...) -> None: ...

class ToolCallResult(_message.Message):
    __slots__ = ("id", "name", "status", "result_json", "duration_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    status: ToolStatus
    result_json: str
    duration_ms: int
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[_Union[ToolStatus, str]] = ..., result_json: _Optional[str] = ..., duration_ms: _Optional[int] = ...) -> None: ...

class TurnLatency(_message.Message):
    __slots__ = ("first_audio_ms", "transcript_ms", "tools_ms")
    FIRST_AUDIO_MS_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_MS_FIELD_NUMBER: _ClassVar[int]
    TOOLS_MS_FIELD_NUMBER: _ClassVar[int]
    first_audio_ms: int
    transcript_ms: int
    tools_ms: int
    def __init__(self, first_audio_ms: _Optional[int] = ..., transcript_ms: _Optional[int] = ..., tools_ms: _Optional[int] = ...) -> None: ...

class TurnComplete(_message.Message):
    __slots__ = ("turn_id", "stop_reason", "latency", "audio_ms")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    AUDIO_MS_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    stop_reason: StopReason
    latency: TurnLatency
    audio_ms: int
    def __init__(self, turn_id: _Optional[str] = ..., stop_reason: _Optional[_Union[StopReason, str]] = ..., latency: _Optional[_Union[TurnLatency, _Mapping]] = ..., audio_ms: _Optional[int] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens", "total_tokens")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    total_tokens: int
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ...) -> None: ...

class GoingAway(_message.Message):
    __slots__ = ("reason", "grace_ms")
    REASON_FIELD_NUMBER: _ClassVar[int]
    GRACE_MS_FIELD_NUMBER: _ClassVar[int]
    reason: str
    grace_ms: int
    def __init__(self, reason: _Optional[str] = ..., grace_ms: _Optional[int] = ...) -> None: ...

class Warning(_message.Message):
    __slots__ = ("reason", "message")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    reason: str
    message: str
    def __init__(self, reason: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ConverseResponse(_message.Message):
    __slots__ = ("session_started", "audio", "transcript", "speech_activity", "interruption", "tool_call", "tool_call_result", "turn_complete", "usage", "going_away", "warning")
    SESSION_STARTED_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    SPEECH_ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTION_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_RESULT_FIELD_NUMBER: _ClassVar[int]
    TURN_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    GOING_AWAY_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    session_started: SessionStarted
    audio: AudioOutput
    transcript: Transcript
    speech_activity: SpeechActivity
    interruption: Interruption
    tool_call: ToolCall
    tool_call_result: ToolCallResult
    turn_complete: TurnComplete
    usage: Usage
    going_away: GoingAway
    warning: Warning
    def __init__(self, session_started: _Optional[_Union[SessionStarted, _Mapping]] = ..., audio: _Optional[_Union[AudioOutput, _Mapping]] = ..., transcript: _Optional[_Union[Transcript, _Mapping]] = ..., speech_activity: _Optional[_Union[SpeechActivity, _Mapping]] = ..., interruption: _Optional[_Union[Interruption, _Mapping]] = ..., tool_call: _Optional[_Union[ToolCall, _Mapping]] = ..., tool_call_result: _Optional[_Union[ToolCallResult, _Mapping]] = ..., turn_complete: _Optional[_Union[TurnComplete, _Mapping]] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., going_away: _Optional[_Union[GoingAway, _Mapping]] = ..., warning: _Optional[_Union[Warning, _Mapping]] = ...) -> None: ...

class ListVoicesRequest(_message.Message):
    __slots__ = ("backend", "model")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    backend: str
    model: str
    def __init__(self, backend: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class Voice(_message.Message):
    __slots__ = ("id", "language_code", "backend", "default", "language_codes", "polyglot", "model")
    ID_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODES_FIELD_NUMBER: _ClassVar[int]
    POLYGLOT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    id: str
    language_code: str
    backend: str
    default: bool
    language_codes: _containers.RepeatedScalarFieldContainer[str]
    polyglot: bool
    model: str
    def __init__(self, id: _Optional[str] = ..., language_code: _Optional[str] = ..., backend: _Optional[str] = ..., default: _Optional[bool] = ..., language_codes: _Optional[_Iterable[str]] = ..., polyglot: _Optional[bool] = ..., model: _Optional[str] = ...) -> None: ...

class ListVoicesResponse(_message.Message):
    __slots__ = ("voices", "audio_formats")
    VOICES_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FORMATS_FIELD_NUMBER: _ClassVar[int]
    voices: _containers.RepeatedCompositeFieldContainer[Voice]
    audio_formats: _containers.RepeatedCompositeFieldContainer[SupportedAudioFormat]
    def __init__(self, voices: _Optional[_Iterable[_Union[Voice, _Mapping]]] = ..., audio_formats: _Optional[_Iterable[_Union[SupportedAudioFormat, _Mapping]]] = ...) -> None: ...

class ListToolsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Tool(_message.Message):
    __slots__ = ("name", "description", "parameters_json_schema", "examples", "answer_template")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    ANSWER_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    parameters_json_schema: str
    examples: _containers.RepeatedScalarFieldContainer[str]
    answer_template: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., parameters_json_schema: _Optional[str] = ..., examples: _Optional[_Iterable[str]] = ..., answer_template: _Optional[str] = ...) -> None: ...

class ListToolsResponse(_message.Message):
    __slots__ = ("tools",)
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    def __init__(self, tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ...) -> None: ...
