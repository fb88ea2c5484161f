"""The session core runs with an injected front end and resampler, without the C libraries.

A child interpreter makes numpy, soxr, webrtcvad, cffi and onnxruntime unimportable, imports
the core, drives a conversation through a scripted plain-Python front end (its VAD events come
from a script, not from audio) and checks the core's decisions: the cleaned audio goes to the
backend, speech start and stop become commands and outputs, speech during playback barges in,
the echo reference is pushed to the front end and cut at the barge-in.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import importlib.abc
    import json
    import sys

    BLOCKED = {"numpy", "soxr", "webrtcvad", "cffi", "_cffi_backend", "onnxruntime"}


    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: the core must not need it")
            return None


    sys.meta_path.insert(0, Block())

    from dataclasses import dataclass

    from sonicwire.server.core import events as ev
    from sonicwire.server.core.session import Session
    from sonicwire.server.core.settings import SessionSettings
    from sonicwire.server.dsp.settings import SpeechStarted, SpeechStopped

    FRAME = 640  # 20 ms at 16 kHz, s16le


    @dataclass
    class Frame:
        pcm: bytes
        offset: int
        in_speech: bool
        events: tuple
        voiced: bool


    class ScriptedFrontEnd:
        # Passes audio through in 20 ms frames; VAD events at the frame numbers in the script.
        def __init__(self, script):
            self.script = script
            self.buffer = b""
            self.frames = 0
            self.speaking = False
            self.far_end = []
            self.truncated = []
            self.closed = False

        @property
        def mic_position(self):
            return self.frames * FRAME // 2

        def process(self, pcm):
            self.buffer += pcm
            out = []
            while len(self.buffer) >= FRAME:
                chunk, self.buffer = self.buffer[:FRAME], self.buffer[FRAME:]
                events = ()
                if self.script.get(self.frames) == "start":
                    self.speaking = True
                    events = (SpeechStarted(self.mic_position - 10 * FRAME // 2),)
                elif self.script.get(self.frames) == "stop":
                    self.speaking = False
                    events = (SpeechStopped(self.mic_position),)
                out.append(Frame(chunk, self.mic_position, self.speaking, events, self.speaking))
                self.frames += 1
            return out

        def push_far_end(self, pcm):
            self.far_end.append(len(pcm))

        def report_playback(self, played_samples, output_latency=0):
            pass

        def truncate_far_end(self, played_samples):
            self.truncated.append(played_samples)

        def close(self):
            self.closed = True


    class Identity:
        def __init__(self, rate_in, rate_out):
            assert rate_in == rate_out, "this test keeps every rate at 16 kHz"

        def process(self, pcm):
            return pcm

        def flush(self):
            return b""


    front = ScriptedFrontEnd({20: "start", 60: "stop", 120: "start"})
    session = Session("s", SessionSettings(), front_end=front, resampler=Identity)
    report = {}

    # The user speaks (frames 20-60) and stops: the backend gets every frame and both events.
    for k in range(80):
        session.receive_client(ev.AudioReceived(bytes(FRAME)), now=k / 50)
    commands = session.commands_to_send()
    report["sent_audio_bytes"] = sum(len(c.pcm) for c in commands if isinstance(c, ev.SendAudio))
    report["speech_commands"] = [
        type(c).__name__ for c in commands
        if isinstance(c, (ev.UserSpeechStarted, ev.UserSpeechStopped))
    ]
    session.outputs_to_send()

    # The assistant answers with 3 s of audio; it is released paced and pushed as the echo
    # reference; at frame 120 the user speaks again over it: a barge-in.
    session.receive_backend(ev.AssistantAudio(bytes(3 * 32_000), 16_000), now=1.6)
    for k in range(80, 140):
        session.tick(k / 50)
        session.receive_client(ev.AudioReceived(bytes(FRAME)), now=k / 50)
    outputs = session.outputs_to_send()
    report["interruptions"] = [
        o.source.value for o in outputs if isinstance(o, ev.InterruptionOut)
    ]
    report["cancelled"] = any(
        isinstance(c, ev.CancelResponse) for c in session.commands_to_send()
    )
    report["far_end_pushed"] = sum(front.far_end)
    report["truncated"] = front.truncated
    session.close(now=3.0)
    report["blocked_loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    report["dsp_engines_loaded"] = sorted(
        m for m in sys.modules
        if m.startswith("sonicwire.server.dsp.") and m.rsplit(".", 1)[1]
        in ("pipeline", "vad", "aec", "speex", "resample", "delay")
    )
    print(json.dumps(report))
    """
)


def test_core_runs_without_the_c_libraries() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["blocked_loaded"] == []
    assert report["dsp_engines_loaded"] == []
    assert report["sent_audio_bytes"] == 80 * 640  # every cleaned frame went to the backend
    assert report["speech_commands"] == ["UserSpeechStarted", "UserSpeechStopped"]
    assert report["interruptions"] == ["barge_in"]
    assert report["cancelled"] is True
    assert report["far_end_pushed"] > 0  # the echo reference reached the front end
    assert len(report["truncated"]) == 1  # and was cut at the barge-in
