"""Which encodings the service speaks, at which rates: the one table of them.

Pure data and one lookup; no codec library is imported here, so validation stays cheap and
``ListVoices`` can describe the formats without loading libopus.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "SUPPORTED_FORMATS",
    "Encoding",
    "FormatSupport",
    "UnsupportedFormat",
    "WireFormat",
    "resolve_format",
]


class Encoding(enum.StrEnum):
    """An audio encoding on the wire."""

    PCM_S16LE = "pcm_s16le"
    MULAW = "mulaw"
    ALAW = "alaw"
    OPUS = "opus"


@dataclass(frozen=True, slots=True)
class FormatSupport:
    """What the service accepts for one encoding."""

    encoding: Encoding
    sample_rates: tuple[int, ...]
    default_rate: int
    packet_ms: int = 0  # duration of every output packet; 0 for sample streams
    bytes_per_sample: int = 0  # 0 for variable-rate codecs


SUPPORTED_FORMATS: tuple[FormatSupport, ...] = (
    FormatSupport(Encoding.PCM_S16LE, (8000, 16000, 24000, 48000), 16000, bytes_per_sample=2),
    # G.711 is defined at 8 kHz; a "16 kHz mu-law" stream is not something a carrier sends.
    FormatSupport(Encoding.MULAW, (8000,), 8000, bytes_per_sample=1),
    FormatSupport(Encoding.ALAW, (8000,), 8000, bytes_per_sample=1),
    # Opus codes at 8/12/16/24/48 kHz internally; the contract offers wideband (16 kHz, speech)
    # and fullband (48 kHz, what WebRTC uses), in 20 ms packets, Opus' and WebRTC's default.
    FormatSupport(Encoding.OPUS, (16000, 48000), 48000, packet_ms=20),
)
_BY_ENCODING = {support.encoding: support for support in SUPPORTED_FORMATS}


class UnsupportedFormat(ValueError):
    """An encoding/rate/channel combination the service does not take."""


@dataclass(frozen=True, slots=True)
class WireFormat:
    """A validated audio format: encoding and sample rate (always mono)."""

    encoding: Encoding
    sample_rate: int

    @property
    def support(self) -> FormatSupport:
        return _BY_ENCODING[self.encoding]

    @property
    def packet_ms(self) -> int:
        """Duration of each output packet, 0 for sample streams."""
        return self.support.packet_ms

    @property
    def is_pcm(self) -> bool:
        return self.encoding is Encoding.PCM_S16LE


def resolve_format(encoding: Encoding, sample_rate: int, channels: int = 1) -> WireFormat:
    """Validate a requested format; a rate or channel count of 0 means the default.

    Raises:
        UnsupportedFormat: the combination is not supported (the message says what is).
    """
    support = _BY_ENCODING[encoding]
    if channels not in (0, 1):
        raise UnsupportedFormat(f"only mono audio is supported, got {channels} channels")
    rate = sample_rate or support.default_rate
    if rate not in support.sample_rates:
        allowed = ", ".join(str(r) for r in support.sample_rates)
        raise UnsupportedFormat(
            f"{encoding.name} audio at {rate} Hz is not supported (use {allowed} Hz)"
        )
    return WireFormat(encoding, rate)
