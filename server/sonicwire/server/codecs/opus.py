"""Opus (RFC 6716), mono, through libopus (Debian's ``libopus0`` via ``opuslib-next``).

Input: one Opus packet per call, any duration Opus allows (2.5-120 ms); the decoder keeps its
state between packets as the codec requires. Output: the encoder buffers PCM and emits whole
20 ms packets; `OpusEncoder.flush` pads the rest of a turn with silence to one last packet,
`OpusEncoder.reset` drops it (barge-in).
"""

from __future__ import annotations

import opuslib_next  # type: ignore[import-untyped]

from sonicwire.server.codecs.base import CodecError

__all__ = ["PACKET_MS", "OpusDecoder", "OpusEncoder"]

PACKET_MS = 20
_MAX_PACKET_MS = 120  # the longest packet Opus defines
# Voice at these rates is transparent well below these; fixed so the cost is predictable.
_BITRATES = {16000: 24_000, 48000: 32_000}


class OpusDecoder:
    """Decode a stream of Opus packets to s16le PCM at ``sample_rate``."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._decoder = opuslib_next.Decoder(sample_rate, 1)
        self._max_samples = sample_rate * _MAX_PACKET_MS // 1000

    def decode(self, payload: bytes) -> list[bytes]:
        """Decode one packet. Raises `CodecError` for data libopus rejects."""
        if not payload:
            return []
        try:
            pcm = self._decoder.decode(payload, self._max_samples)
        except opuslib_next.OpusError as error:
            raise CodecError(f"not a valid Opus packet ({len(payload)} bytes): {error}") from None
        return [bytes(pcm)] if pcm else []


class OpusEncoder:
    """Encode s16le PCM at ``sample_rate`` into 20 ms Opus packets."""

    packet_ms = PACKET_MS

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._encoder = opuslib_next.Encoder(sample_rate, 1, opuslib_next.APPLICATION_VOIP)
        self._encoder.bitrate = _BITRATES.get(sample_rate, 32_000)
        self._samples = sample_rate * PACKET_MS // 1000
        self._frame_bytes = self._samples * 2
        self._pending = bytearray()

    def encode(self, pcm: bytes) -> list[bytes]:
        """Buffer ``pcm``; return every complete 20 ms packet."""
        if len(pcm) % 2:
            raise CodecError(f"PCM of {len(pcm)} bytes is not a whole number of 16-bit samples")
        self._pending += pcm
        packets: list[bytes] = []
        while len(self._pending) >= self._frame_bytes:
            frame = bytes(self._pending[: self._frame_bytes])
            del self._pending[: self._frame_bytes]
            packets.append(bytes(self._encoder.encode(frame, self._samples)))
        return packets

    def flush(self) -> list[bytes]:
        """Pad what is buffered with silence to one last packet."""
        if not self._pending:
            return []
        self._pending += bytes(self._frame_bytes - len(self._pending))
        return self.encode(b"")

    def reset(self) -> None:
        """Drop buffered samples; the encoder's own state carries on (the next turn follows)."""
        self._pending.clear()
