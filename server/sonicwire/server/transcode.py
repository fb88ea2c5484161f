"""Encoded audio at the edge of the front end: one `StreamAudio` per stream (pure, no I/O).

The session core takes and gives 16-bit PCM at the stream's sample rate; a stream whose wire
format is G.711 or Opus has its input decoded before the core sees it and the core's output
encoded after. The driver calls::

    audio = StreamAudio(input_format, output_format)
    for pcm in audio.decode_input(chunk):          # each AudioInput
        session.receive_client(AudioReceived(pcm), now)
    for out in audio.encode_outputs(outputs):      # what the core produced
        send(out)

Output framing: sample encodings (PCM, G.711) keep the core's chunks and offsets one to one.
Opus re-chunks into 20 ms packets numbered from the start of the turn; the turn's last packet
is padded with silence and sent before its `TurnCompleteOut`; an `InterruptionOut` drops the
samples still buffered, as the client drops what it had not played.
"""

from __future__ import annotations

from collections.abc import Iterable

from sonicwire.server.codecs import (
    CodecError,
    WireFormat,
    decoder_for,
    encoder_for,
)
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import ProtocolError
from sonicwire.server.core.settings import MAX_AUDIO_CHUNK_BYTES

__all__ = ["StreamAudio"]


class StreamAudio:
    """Decoder and encoder state of one stream."""

    def __init__(
        self,
        input_format: WireFormat,
        output_format: WireFormat,
        *,
        max_chunk_bytes: int = MAX_AUDIO_CHUNK_BYTES,
    ) -> None:
        self.input_format = input_format
        self.output_format = output_format
        self.max_chunk_bytes = max_chunk_bytes
        self._decoder = decoder_for(input_format)
        self._encoder = encoder_for(output_format)
        self._packet_ms = self._encoder.packet_ms
        self._turn_id = ""
        self._turn_offset_ms = 0  # offset of the next Opus packet within the turn
        self.passthrough = input_format.is_pcm and output_format.is_pcm

    def decode_input(self, chunk: bytes) -> list[bytes]:
        """PCM for the core from one `AudioInput` payload, in pieces the core accepts.

        Raises:
            ProtocolError: AUDIO_CHUNK_TOO_LARGE (over the wire limit, in encoded bytes) or
                AUDIO_CHUNK_INVALID (undecodable).
        """
        if len(chunk) > self.max_chunk_bytes:
            raise ProtocolError(
                "AUDIO_CHUNK_TOO_LARGE",
                f"audio chunk of {len(chunk)} bytes exceeds the maximum of {self.max_chunk_bytes}",
            )
        if self.input_format.is_pcm:
            return [chunk]  # the core checks PCM itself (and must see even empty chunks)
        try:
            decoded = self._decoder.decode(chunk)
        except CodecError as error:
            raise ProtocolError("AUDIO_CHUNK_INVALID", str(error)) from None
        # Decoding expands G.711 twofold: split so each piece stays within the core's limit.
        limit = self.max_chunk_bytes
        return [pcm[i : i + limit] for pcm in decoded for i in range(0, len(pcm), limit)]

    def encode_outputs(self, outputs: Iterable[ev.ClientOutput]) -> list[ev.ClientOutput]:
        """The core's outputs with their audio in the wire format (order kept)."""
        if self.output_format.is_pcm:
            return list(outputs)
        result: list[ev.ClientOutput] = []
        for output in outputs:
            match output:
                case ev.AudioOut(pcm, turn_id, offset_ms):
                    result.extend(self._encode(pcm, turn_id, offset_ms))
                case ev.TurnCompleteOut(turn_id=turn_id):
                    if turn_id == self._turn_id:
                        result.extend(self._packets(self._encoder.flush()))
                    result.append(output)
                case ev.InterruptionOut():
                    self._encoder.reset()
                    result.append(output)
                case _:
                    result.append(output)
        return result

    def _encode(self, pcm: bytes, turn_id: str, offset_ms: int) -> list[ev.ClientOutput]:
        if turn_id != self._turn_id:
            # A new turn: whatever the last one left (it ended without TurnComplete) is stale.
            self._encoder.reset()
            self._turn_id = turn_id
            self._turn_offset_ms = 0
        chunks = self._encoder.encode(pcm)
        if not self._packet_ms:
            return [ev.AudioOut(chunk, turn_id, offset_ms) for chunk in chunks]
        return self._packets(chunks)

    def _packets(self, packets: list[bytes]) -> list[ev.ClientOutput]:
        out: list[ev.ClientOutput] = []
        for packet in packets:
            out.append(ev.AudioOut(packet, self._turn_id, self._turn_offset_ms))
            self._turn_offset_ms += self._packet_ms
        return out
