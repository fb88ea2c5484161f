"""`python -m bench.inprocess --digest`: the output identity check docs/server_cpu.md cites
repeats run to run and changes when the server's behaviour does."""

from __future__ import annotations

import hashlib

import pytest
import webrtcvad

from bench.inprocess import measure


def _digest(seconds: float = 6.0, streams: int = 2) -> tuple[str, int]:
    digest = hashlib.sha256()
    result = measure(seconds, streams, 1, digest)
    return digest.hexdigest(), result["messages_out"]


def test_the_digest_repeats_and_follows_a_behaviour_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, responses = _digest()
    assert responses > 0
    assert _digest() == (first, responses)
    # A more aggressive onset VAD decides some frames differently: other responses. (Through
    # webrtcvad, which the VAD looks up at run time: a compiled WebrtcEngine, see
    # sonicwire.server.native, would not see its own methods replaced.)
    real_vad = webrtcvad.Vad
    monkeypatch.setattr(webrtcvad, "Vad", lambda mode: real_vad(3))
    assert _digest()[0] != first
