"""The codec interfaces: synchronous, list-returning (one input may give zero or more outputs)."""

from __future__ import annotations

from typing import Protocol

__all__ = ["CodecError", "Decoder", "Encoder", "PcmDecoder", "PcmEncoder"]


class CodecError(ValueError):
    """Encoded input that cannot be decoded (a corrupt Opus packet, an odd PCM byte count)."""


class Decoder(Protocol):
    """Wire audio in, 16-bit PCM (mono, little-endian, at the format's rate) out."""

    def decode(self, payload: bytes) -> list[bytes]:
        """Decode one chunk (one packet for packetised codecs). Raises `CodecError`."""
        ...


class Encoder(Protocol):
    """16-bit PCM in, wire audio out."""

    packet_ms: int
    """Duration of each output packet, or 0 when chunks follow the input's size."""

    def encode(self, pcm: bytes) -> list[bytes]:
        """Encode ``pcm`` (a whole number of samples); returns every chunk now complete."""
        ...

    def flush(self) -> list[bytes]:
        """End of a stretch of audio (a turn): encode what is buffered, padded with silence."""
        ...

    def reset(self) -> None:
        """Drop whatever is buffered (the audio was interrupted and will never be played)."""
        ...


class PcmDecoder:
    """The identity decoder for PCM s16le streams: checks the sample alignment only."""

    def decode(self, payload: bytes) -> list[bytes]:
        if len(payload) % 2:
            raise CodecError(
                f"audio chunk of {len(payload)} bytes is not a whole number of 16-bit samples"
            )
        return [payload] if payload else []


class PcmEncoder:
    """The identity encoder for PCM s16le streams."""

    packet_ms = 0

    def encode(self, pcm: bytes) -> list[bytes]:
        return [pcm] if pcm else []

    def flush(self) -> list[bytes]:
        return []

    def reset(self) -> None:
        return None
