"""Nova Sonic voices per model, and the check that a voice exists on the model in use.

Sources (read 2026-12-05):

- Nova 1 (``amazon.nova-sonic-v1:0``): AWS Nova user guide, "Voices available for Amazon Nova
  Sonic" (docs.aws.amazon.com/nova/latest/userguide/available-voices.html): eleven voices,
  one language each; ``greta`` is its German feminine voice.
- Nova 2 (``amazon.nova-2-sonic-v1:0``): AWS Nova 2 user guide, "Language support and
  multilingual capabilities" (docs.aws.amazon.com/nova/latest/nova2-userguide/
  sonic-language-support.html), as transcribed by the LiveKit and other integrations (16
  voices): ``tina`` replaces ``greta`` for German, ``olivia`` (en-AU), ``kiara``/``arjun``
  (en-IN and hi-IN), ``carolina``/``leo`` (pt-BR) are new, and ``tiffany``/``matthew`` are
  polyglot (they speak every supported language).

A voice the model does not have fails at configuration time (``BACKEND_CONFIG_INVALID`` for
the server's default, ``VOICE_UNKNOWN`` for a client's `SessionConfig.voice`) instead of when
Bedrock refuses the stream. Model ids this module does not know are not checked (a newer model
may have more voices); they list the Nova 2 voices.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "NOVA1_MODEL_ID",
    "NOVA1_VOICES",
    "NOVA2_LANGUAGES",
    "NOVA2_MODEL_ID",
    "NOVA2_VOICES",
    "NovaVoice",
    "known_model",
    "voice_problem",
    "voices_for_model",
]

NOVA1_MODEL_ID = "amazon.nova-sonic-v1:0"
NOVA2_MODEL_ID = "amazon.nova-2-sonic-v1:0"


@dataclass(frozen=True, slots=True)
class NovaVoice:
    """One voice: its id, its main locale, every locale it speaks, and whether it is polyglot."""

    id: str
    language_code: str
    languages: tuple[str, ...]
    polyglot: bool = False


def _one(voice_id: str, locale: str) -> NovaVoice:
    return NovaVoice(voice_id, locale, (locale,))


NOVA1_VOICES: tuple[NovaVoice, ...] = (
    _one("matthew", "en-US"),
    _one("tiffany", "en-US"),
    _one("amy", "en-GB"),
    _one("ambre", "fr-FR"),
    _one("florian", "fr-FR"),
    _one("beatrice", "it-IT"),
    _one("lorenzo", "it-IT"),
    _one("greta", "de-DE"),
    _one("lennart", "de-DE"),
    _one("lupe", "es-US"),
    _one("carlos", "es-US"),
)

# Every language Nova 2 Sonic speaks; its polyglot voices speak all of them.
NOVA2_LANGUAGES: tuple[str, ...] = (
    "en-US",
    "en-GB",
    "en-AU",
    "en-IN",
    "fr-FR",
    "it-IT",
    "de-DE",
    "es-US",
    "pt-BR",
    "hi-IN",
)

NOVA2_VOICES: tuple[NovaVoice, ...] = (
    NovaVoice("matthew", "en-US", NOVA2_LANGUAGES, polyglot=True),
    NovaVoice("tiffany", "en-US", NOVA2_LANGUAGES, polyglot=True),
    _one("amy", "en-GB"),
    _one("olivia", "en-AU"),
    NovaVoice("kiara", "en-IN", ("en-IN", "hi-IN")),
    NovaVoice("arjun", "en-IN", ("en-IN", "hi-IN")),
    _one("ambre", "fr-FR"),
    _one("florian", "fr-FR"),
    _one("beatrice", "it-IT"),
    _one("lorenzo", "it-IT"),
    _one("tina", "de-DE"),
    _one("lennart", "de-DE"),
    _one("lupe", "es-US"),
    _one("carlos", "es-US"),
    _one("carolina", "pt-BR"),
    _one("leo", "pt-BR"),
)

_BY_MODEL = {NOVA1_MODEL_ID: NOVA1_VOICES, NOVA2_MODEL_ID: NOVA2_VOICES}


def known_model(model_id: str) -> bool:
    """Whether this module has the voice table of ``model_id`` (so voices are checked)."""
    return _base(model_id) in _BY_MODEL


def _base(model_id: str) -> str:
    # Cross-region inference profiles prefix the id ("us.amazon.nova-2-sonic-v1:0").
    model = model_id.strip()
    for prefix in ("us.", "eu.", "apac.", "global."):
        if model.startswith(prefix + "amazon."):
            return model[len(prefix) :]
    return model


def voices_for_model(model_id: str) -> tuple[NovaVoice, ...]:
    """The voices of ``model_id``; a model this module does not know gets Nova 2's."""
    base = _base(model_id)
    if base in _BY_MODEL:
        return _BY_MODEL[base]
    return NOVA1_VOICES if "nova-sonic-v1" in base else NOVA2_VOICES


def voice_problem(model_id: str, voice: str) -> str | None:
    """Why ``voice`` cannot be used with ``model_id`` (a sentence naming the valid voices),
    or None if it can (or the model is unknown here, so nothing is checked)."""
    voice = voice.strip().lower()
    if not known_model(model_id):
        return None
    voices = voices_for_model(model_id)
    if any(v.id == voice for v in voices):
        return None
    names = ", ".join(v.id for v in voices)
    hint = ""
    other = NOVA2_VOICES if voices is NOVA1_VOICES else NOVA1_VOICES
    if any(v.id == voice for v in other):
        other_model = NOVA2_MODEL_ID if voices is NOVA1_VOICES else NOVA1_MODEL_ID
        hint = f" (it is a voice of {other_model})"
    return f"{model_id} has no voice {voice!r}{hint}; its voices: {names}"
