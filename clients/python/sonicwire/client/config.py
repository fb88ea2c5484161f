"""Building a ``SessionConfig``, the first message of every conversation.

:func:`session_config` covers what most callers set; the result is the generated
``sonicwire.v1.SessionConfig`` message, so rarer knobs (VAD thresholds, noise suppression
depth, ...) can be set on it directly before passing it to ``Client.converse``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from sonicwire.v1 import voice_service_pb2 as pb

__all__ = ["SUPPORTED_SAMPLE_RATES", "SessionConfig", "session_config"]

SessionConfig = pb.SessionConfig
"""The generated ``sonicwire.v1.SessionConfig`` message type."""

SUPPORTED_SAMPLE_RATES: tuple[int, ...] = (8000, 16000, 24000, 48000)
"""Sample rates the server accepts for input and output audio."""

_ENCODINGS = {
    "pcm_s16le": pb.AUDIO_ENCODING_PCM_S16LE,
    "mulaw": pb.AUDIO_ENCODING_MULAW,
    "alaw": pb.AUDIO_ENCODING_ALAW,
    "opus": pb.AUDIO_ENCODING_OPUS,
}
_VAD_ENGINES = {"webrtc": pb.VAD_ENGINE_WEBRTC, "silero": pb.VAD_ENGINE_SILERO}
_ENDPOINTING = {
    "high": pb.ENDPOINTING_SENSITIVITY_HIGH,
    "medium": pb.ENDPOINTING_SENSITIVITY_MEDIUM,
    "low": pb.ENDPOINTING_SENSITIVITY_LOW,
}


def _check_rate(name: str, rate: int) -> None:
    if rate not in SUPPORTED_SAMPLE_RATES:
        allowed = ", ".join(str(r) for r in SUPPORTED_SAMPLE_RATES)
        raise ValueError(f"{name} must be one of {allowed} Hz, got {rate}")


def session_config(
    *,
    sample_rate_hz: int = 16000,
    output_sample_rate_hz: int | None = None,
    voice: str = "",
    system_prompt: str = "",
    barge_in: bool = True,
    echo_cancellation: bool = True,
    noise_suppression: bool = True,
    vad_engine: Literal["webrtc", "silero"] | None = None,
    endpointing: Literal["high", "medium", "low"] | None = None,
    server_tools: Sequence[str] = (),
    max_tokens: int = 0,
    temperature: float = 0.0,
    top_p: float = 0.0,
    resume_session_id: str = "",
    time_zone: str = "",
    encoding: Literal["pcm_s16le", "mulaw", "alaw", "opus"] = "pcm_s16le",
    resume_token: str = "",
) -> pb.SessionConfig:
    """Build a ``SessionConfig`` with sane defaults: 16 kHz mono PCM s16le in and out.

    Args:
        sample_rate_hz: rate of the microphone audio you send (8000, 16000, 24000 or 48000).
        output_sample_rate_hz: rate of the assistant audio you want; defaults to
            ``sample_rate_hz``.
        encoding: the audio encoding both ways: ``"pcm_s16le"``, G.711 ``"mulaw"`` or
            ``"alaw"`` (8000 Hz), or ``"opus"`` (16000 or 48000 Hz, one packet per message);
            the server refuses other combinations with ``AUDIO_FORMAT_UNSUPPORTED``.
        voice: a voice id from ``Client.list_voices()``; empty for the backend default.
        system_prompt: the assistant's instructions; empty for the server default.
        barge_in: whether the user's voice interrupts the assistant.
        echo_cancellation: keep on unless your client cancels echo itself.
        noise_suppression: server-side noise suppression.
        vad_engine: ``"webrtc"`` or ``"silero"``; ``None`` for the server default.
        endpointing: how quickly the model ends the user's turn; ``None`` for the default.
        server_tools: names of server tools to offer; empty offers all of them.
        max_tokens: maximum tokens per response; 0 for the backend default.
        temperature: sampling temperature; 0 for the backend default.
        top_p: nucleus sampling mass; 0 for the backend default.
        resume_session_id: continue an earlier conversation (any replica sharing the server's
            state store), with ``resume_token`` from its ``SessionStarted``.
        time_zone: the user's IANA time zone (e.g. ``"Europe/Paris"``), context for tools
            such as ``get_date_time``; empty for the server's default zone.

    Returns:
        A new ``sonicwire.v1.SessionConfig`` message. Client-side tools are added by
        ``Client.converse(config, tools=...)``.

    Raises:
        ValueError: for an unsupported sample rate or an unknown ``vad_engine``/``endpointing``.
    """
    _check_rate("sample_rate_hz", sample_rate_hz)
    out_rate = sample_rate_hz if output_sample_rate_hz is None else output_sample_rate_hz
    _check_rate("output_sample_rate_hz", out_rate)
    if encoding not in _ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(_ENCODINGS)}, got {encoding!r}")
    wire = _ENCODINGS[encoding]
    config = pb.SessionConfig(
        input_format=pb.AudioFormat(encoding=wire, sample_rate_hz=sample_rate_hz, channels=1),
        output_format=pb.AudioFormat(encoding=wire, sample_rate_hz=out_rate, channels=1),
        voice=voice,
        system_prompt=system_prompt,
        barge_in=pb.BargeInSettings(disabled=not barge_in),
        echo_cancellation=pb.EchoCancellationSettings(disabled=not echo_cancellation),
        noise_suppression=pb.NoiseSuppressionSettings(disabled=not noise_suppression),
        inference=pb.InferenceSettings(max_tokens=max_tokens, temperature=temperature, top_p=top_p),
        server_tools=list(server_tools),
        resume_session_id=resume_session_id,
        time_zone=time_zone,
        resume_token=resume_token,
    )
    if vad_engine is not None:
        if vad_engine not in _VAD_ENGINES:
            raise ValueError(f"vad_engine must be 'webrtc' or 'silero', got {vad_engine!r}")
        config.vad.engine = _VAD_ENGINES[vad_engine]
    if endpointing is not None:
        if endpointing not in _ENDPOINTING:
            raise ValueError(f"endpointing must be high, medium or low, got {endpointing!r}")
        config.inference.endpointing_sensitivity = _ENDPOINTING[endpointing]
    return config
