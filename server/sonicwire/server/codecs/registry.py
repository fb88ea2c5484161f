"""Pick the decoder and encoder for a wire format."""

from __future__ import annotations

from sonicwire.server.codecs.base import Decoder, Encoder, PcmDecoder, PcmEncoder
from sonicwire.server.codecs.formats import Encoding, WireFormat
from sonicwire.server.codecs.g711 import AlawDecoder, AlawEncoder, MulawDecoder, MulawEncoder

__all__ = ["decoder_for", "encoder_for"]


def decoder_for(fmt: WireFormat) -> Decoder:
    """A fresh decoder for one input stream in ``fmt``."""
    match fmt.encoding:
        case Encoding.PCM_S16LE:
            return PcmDecoder()
        case Encoding.MULAW:
            return MulawDecoder()
        case Encoding.ALAW:
            return AlawDecoder()
        case Encoding.OPUS:
            # Imported here: libopus is only loaded by servers that see Opus streams.
            from sonicwire.server.codecs.opus import OpusDecoder

            return OpusDecoder(fmt.sample_rate)


def encoder_for(fmt: WireFormat) -> Encoder:
    """A fresh encoder for one output stream in ``fmt``."""
    match fmt.encoding:
        case Encoding.PCM_S16LE:
            return PcmEncoder()
        case Encoding.MULAW:
            return MulawEncoder()
        case Encoding.ALAW:
            return AlawEncoder()
        case Encoding.OPUS:
            from sonicwire.server.codecs.opus import OpusEncoder

            return OpusEncoder(fmt.sample_rate)
