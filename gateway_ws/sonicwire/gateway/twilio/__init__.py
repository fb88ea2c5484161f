"""The telephony edge: Twilio Media Streams on ``/twilio`` (see ``docs/telephony.md``).

``codec`` (the JSON wire format), ``playback`` (20 ms frames, marks, clear), ``callconfig``
(custom parameters and keypad turns), ``closing`` (close codes by status) and ``auth`` (request
signatures) are pure; ``call`` is the per-socket driver and ``endpoint`` the handshake check.
Like the browser shim, the edge speaks only ``Converse`` through the SDK client; it never
imports the server.
"""

from .call import TwilioCall, TwilioStats
from .endpoint import TWILIO_PATH, check_handshake, is_signed

__all__ = ["TWILIO_PATH", "TwilioCall", "TwilioStats", "check_handshake", "is_signed"]
