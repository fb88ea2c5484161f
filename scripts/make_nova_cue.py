"""Regenerate the Nova 1 speak-first cue (``backends/nova_sonic/data/ready.wav``).

Nova 1 takes no typed turn, so the backend prompts its first answer with a short spoken cue
(see ``backends/nova_sonic/speak_first.py``). The cue is the word "ready" in espeak-ng's en-us
voice at 16 kHz, trimmed of silence. Run from the repository root::

    .venv/bin/python scripts/make_nova_cue.py
"""

from __future__ import annotations

import wave
from pathlib import Path

from sonicwire.server.testing.local_harness import speak

OUT = Path("server/sonicwire/server/backends/nova_sonic/data/ready.wav")


def main() -> None:
    pcm = speak("Ready.", "espeak:en-us")
    with wave.open(str(OUT), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(pcm)
    print(f"{OUT}: {len(pcm) // 32} ms")


if __name__ == "__main__":
    main()
