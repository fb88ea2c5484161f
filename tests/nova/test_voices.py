"""Nova voices per model (issue 15): the tables, and a voice the model lacks failing at
configuration time with a reason, not when Bedrock refuses the stream."""

from __future__ import annotations

import pytest

from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.nova_sonic.backend import NovaSonicBackend
from sonicwire.server.backends.nova_sonic.voices import (
    NOVA1_MODEL_ID,
    NOVA2_LANGUAGES,
    NOVA2_MODEL_ID,
    voice_problem,
    voices_for_model,
)
from sonicwire.server.core.errors import BackendError, ErrorCode


def by_id(model: str) -> dict[str, tuple[str, tuple[str, ...], bool]]:
    return {v.id: (v.language_code, v.languages, v.polyglot) for v in voices_for_model(model)}


def test_nova2_table_matches_the_language_support_page() -> None:
    nova2 = by_id(NOVA2_MODEL_ID)
    assert len(nova2) == 16
    assert "tina" in nova2 and "greta" not in nova2
    assert nova2["tina"][0] == nova2["lennart"][0] == "de-DE"
    for indian in ("kiara", "arjun"):
        assert nova2[indian][1] == ("en-IN", "hi-IN")
    for polyglot in ("matthew", "tiffany"):
        assert nova2[polyglot] == ("en-US", NOVA2_LANGUAGES, True)
    assert [v for v, (_, _, poly) in nova2.items() if poly] == ["matthew", "tiffany"]
    assert {nova2[v][0] for v in ("olivia", "carolina", "leo")} == {"en-AU", "pt-BR"}


def test_nova1_table() -> None:
    nova1 = by_id(NOVA1_MODEL_ID)
    assert len(nova1) == 11
    assert "greta" in nova1 and "tina" not in nova1 and "kiara" not in nova1
    assert not any(poly for _, _, poly in nova1.values())


def test_voice_problems_name_the_valid_voices() -> None:
    assert voice_problem(NOVA2_MODEL_ID, "Tina") is None
    problem = voice_problem(NOVA2_MODEL_ID, "greta")
    assert problem is not None
    assert "no voice 'greta'" in problem and NOVA1_MODEL_ID in problem and "tina" in problem
    assert voice_problem(NOVA1_MODEL_ID, "kiara") is not None
    assert voice_problem("us." + NOVA2_MODEL_ID, "olivia") is None
    assert voice_problem("us." + NOVA2_MODEL_ID, "nobody") is not None
    # A model this table does not know is not checked (it may have new voices).
    assert voice_problem("amazon.nova-3-sonic-v1:0", "someone") is None


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"voice": "greta"}, "no voice 'greta'"),
        ({"model_id": NOVA1_MODEL_ID, "voice": "tina"}, "no voice 'tina'"),
        ({"model_id": NOVA1_MODEL_ID, "voice": "carolina"}, "no voice 'carolina'"),
        ({"voice": "Bogus"}, "no voice 'bogus'"),
    ],
)
def test_a_server_voice_the_model_lacks_fails_at_start(
    options: dict[str, str], fragment: str
) -> None:
    with pytest.raises(BackendError) as caught:
        NovaSonicBackend.from_options(region="us-east-1", **options)
    assert caught.value.reason == "BACKEND_CONFIG_INVALID"
    assert caught.value.code is ErrorCode.FAILED_PRECONDITION
    assert fragment in caught.value.message


def test_a_session_voice_the_model_lacks_fails_at_configuration() -> None:
    backend = NovaSonicBackend.from_options(region="us-east-1")
    with pytest.raises(BackendError) as caught:
        backend.setup_for(BackendOptions(session_id="s", voice="greta"))
    assert caught.value.reason == "VOICE_UNKNOWN"
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    assert backend.setup_for(BackendOptions(session_id="s", voice="Kiara")).voice == "kiara"


def test_voices_per_model() -> None:
    backend = NovaSonicBackend.from_options(region="us-east-1", voice="tiffany")
    default = backend.voices()
    assert [v.id for v in default if v.default] == ["tiffany"]
    assert {v.model for v in default} == {NOVA2_MODEL_ID}
    nova1 = backend.voices_for_model(NOVA1_MODEL_ID)
    assert "greta" in {v.id for v in nova1} and not any(v.default for v in nova1)
    assert {v.model for v in nova1} == {NOVA1_MODEL_ID}
