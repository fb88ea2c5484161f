"""Audio codecs at the edge of the front end: G.711 (mu-law, A-law) and Opus.

The session core and the DSP see 16-bit PCM only; a stream whose wire format is encoded gets a
`Decoder` for its input and an `Encoder` for its output (``transcode.py`` drives them). The
interfaces are synchronous and return lists, as aiortc's do, because one input can give zero
or several outputs (an Opus encoder buffers to whole 20 ms packets)::

    decoder = decoder_for(WireFormat(Encoding.MULAW, 8000))
    pcm_chunks = decoder.decode(mulaw_bytes)      # list[bytes], s16le mono at 8 kHz

    encoder = encoder_for(WireFormat(Encoding.OPUS, 48000))
    packets = encoder.encode(pcm)                 # zero or more 20 ms packets
    packets += encoder.flush()                    # end of a turn: the rest, padded
    encoder.reset()                               # barge-in: drop what is buffered

Which encodings and rates are allowed lives in ``formats.py``; the libraries behind them are
the stdlib's ``audioop`` (``audioop-lts`` from Python 3.13 on) for G.711 and libopus (Debian's
``libopus0`` through ``opuslib-next``) for Opus.
"""

from sonicwire.server.codecs.base import CodecError, Decoder, Encoder
from sonicwire.server.codecs.formats import (
    SUPPORTED_FORMATS,
    Encoding,
    FormatSupport,
    UnsupportedFormat,
    WireFormat,
    resolve_format,
)
from sonicwire.server.codecs.registry import decoder_for, encoder_for

__all__ = [
    "SUPPORTED_FORMATS",
    "CodecError",
    "Decoder",
    "Encoder",
    "Encoding",
    "FormatSupport",
    "UnsupportedFormat",
    "WireFormat",
    "decoder_for",
    "encoder_for",
    "resolve_format",
]
