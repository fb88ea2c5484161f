"""Whether the voices given to `bench.local_eval --voices` are the voices they are named.

espeak-ng reads a voice or a variant it does not know as another voice, with no error and
nothing on stderr (1.51: "en-us+m9" is "en-us", a voice listened to while tuning; "en-x-typo"
is "en-gb", an evaluation voice), so a name check alone would let a typo run the confirmation
on a voice used before, under a name used nowhere. A voice is told by its audio instead.

flite (2.2) does the same with a voice name it does not know: it speaks as kal, silently. kal is
no voice of the evaluation, so the audio check would take "flite:kall" for a voice of its own
and measure kal under that name; flite names are checked against its own list (`flite -lv`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence

from sonicwire.server.testing.local_harness import speak

__all__ = ["PROBE", "flite_voices", "fresh_voices", "speaks_as_another"]

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


def flite_voices() -> list[str]:
    """The voices this flite has, from ``flite -lv`` ("Voices available: kal awb_time ...").
    Raises `FileNotFoundError` when flite is not installed."""
    listed = subprocess.run(
        ["flite", "-lv"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    return listed.partition(":")[2].split()


def fresh_voices(
    given: str, tuned: Sequence[str], evaluated: Sequence[str]
) -> tuple[list[str], str | None]:
    """The voices of ``given`` (comma-separated; stripped, de-duplicated) and why they are
    refused, or None: none given, one of ``tuned`` (listened to while tuning: no check of the
    held-out numbers), a flite name flite does not have (`flite_voices`), or one speaking as
    another (`speaks_as_another`)."""
    voices = list(dict.fromkeys(v.strip() for v in given.split(",") if v.strip()))
    if not voices:
        return voices, "no voice"
    if used := set(voices) & set(tuned):
        return voices, f"{', '.join(sorted(used))} used in development"
    flite = [v for v in voices if v.startswith("flite:")]
    known = flite_voices() if flite else []
    if unknown := [v for v in flite if v.partition(":")[2] not in known]:
        return voices, (
            f"not a flite voice: {', '.join(unknown)} (flite would speak as kal;"
            f" `flite -lv`: {' '.join(known)})"
        )
    if same := speaks_as_another(voices, (*tuned, *evaluated)):
        return voices, f"{same[0]} speaks exactly as {same[1]} (an unknown name?)"
    return voices, None
