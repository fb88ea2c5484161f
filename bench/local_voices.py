"""Whether the voices given to `bench.local_eval --voices` are the voices they are named.

espeak-ng reads a voice or a variant it does not know as another voice, with no error and
nothing on stderr (1.51: "en-us+m9" is "en-us", a voice listened to while tuning; "en-x-typo"
is "en-gb", an evaluation voice), so a name check alone would let a typo run the confirmation
on a voice used before, under a name used nowhere. A voice is told by its audio instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sonicwire.server.testing.local_harness import speak

__all__ = ["PROBE", "fresh_voices", "speaks_as_another"]

#: What every voice says to be told apart (synthesis is deterministic).
PROBE = "what is the weather in lyon tomorrow"


def speaks_as_another(voices: Sequence[str], used: Iterable[str]) -> tuple[str, str] | None:
    """(voice, other): one of ``voices`` speaks exactly as another name, one of ``used``,
    another of ``voices`` or, for an espeak variant ("espeak:en-us+m1"), its voice without the
    variant (an unknown variant is dropped); None when each is a voice of its own. Raises
    `FileNotFoundError` when a synthesiser of ``voices`` is not installed."""
    names: dict[bytes, str] = {}
    for name in dict.fromkeys(used):
        try:
            names.setdefault(speak(PROBE, name), name)
        except FileNotFoundError:
            continue  # not installed here: it is no voice a name could fall back to
    for voice in voices:
        base = voice.partition("+")[0]
        if voice.startswith("espeak:") and base != voice:
            names.setdefault(speak(PROBE, base), base)
        audio = speak(PROBE, voice)
        other = names.setdefault(audio, voice)
        if other != voice:
            return voice, other
    return None


def fresh_voices(
    given: str, tuned: Sequence[str], evaluated: Sequence[str]
) -> tuple[list[str], str | None]:
    """The voices of ``given`` (comma-separated; stripped, de-duplicated) and why they are
    refused, or None: none given, one of ``tuned`` (listened to while tuning: no check of the
    held-out numbers), or one speaking as another (`speaks_as_another`)."""
    voices = list(dict.fromkeys(v.strip() for v in given.split(",") if v.strip()))
    if not voices:
        return voices, "no voice"
    if used := set(voices) & set(tuned):
        return voices, f"{', '.join(sorted(used))} used in development"
    if same := speaks_as_another(voices, (*tuned, *evaluated)):
        return voices, f"{same[0]} speaks exactly as {same[1]} (an unknown name?)"
    return voices, None
