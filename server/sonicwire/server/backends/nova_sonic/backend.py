"""`NovaSonicBackend`: Amazon Nova Sonic for the whole process (settings, credentials, voices,
the stream opener); `open` starts one `NovaSonicSession` (``connection.py``) per conversation."""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import replace
from typing import Any

from sonicwire.server.backends.base import BackendOptions, VoiceInfo
from sonicwire.server.backends.nova_sonic import codec
from sonicwire.server.backends.nova_sonic.config import NovaSonicSettings
from sonicwire.server.backends.nova_sonic.connection import NovaSonicSession
from sonicwire.server.backends.nova_sonic.speak_first import cue_instruction
from sonicwire.server.backends.nova_sonic.stream import StreamOpener
from sonicwire.server.backends.nova_sonic.voices import voice_problem, voices_for_model
from sonicwire.server.core.errors import BackendError, ErrorCode

__all__ = ["NovaSonicBackend"]


class NovaSonicBackend:
    """Amazon Nova Sonic over Bedrock's bidirectional stream. One per process."""

    name = "nova-sonic"

    def __init__(self, settings: NovaSonicSettings, credentials_resolver: Any = None) -> None:
        """``credentials_resolver``: an SDK identity resolver (``get_identity``/``invalidate``)
        to sign streams with instead of the one the settings describe."""
        self.settings = settings
        self._opener = StreamOpener(settings, credentials_resolver)
        self._sessions: weakref.WeakSet[NovaSonicSession] = weakref.WeakSet()

    @classmethod
    def from_options(cls, credentials_resolver: Any = None, **options: Any) -> NovaSonicBackend:
        """Build from keyword options with environment fallbacks (see ``config.py``).
        Raises `BackendError` (``BACKEND_CONFIG_INVALID``) for unknown options or bad values."""
        return cls(NovaSonicSettings.from_options(**options), credentials_resolver)

    async def check_credentials(self) -> None:
        """Resolve AWS credentials now. Raises `BackendError` (``BACKEND_AUTH_FAILED``)."""
        await self._opener.check_credentials()

    def voices(self) -> list[VoiceInfo]:
        """The voices of the configured model (see ``voices.py``)."""
        return self.voices_for_model(self.settings.model_id)

    def voices_for_model(self, model_id: str) -> list[VoiceInfo]:
        """The voices of ``model_id`` (empty: the configured model), for ``ListVoices``."""
        model = model_id.strip() or self.settings.model_id
        default = self.settings.voice if model == self.settings.model_id else ""
        return [
            VoiceInfo(
                v.id,
                v.language_code,
                default=v.id == default,
                languages=v.languages,
                polyglot=v.polyglot,
                model=model,
            )
            for v in voices_for_model(model)
        ]

    def setup_for(self, options: BackendOptions) -> codec.StreamSetup:
        """The opening configuration of a conversation (voice, rate, prompt, tools).
        Raises `BackendError` ``VOICE_UNKNOWN`` (INVALID_ARGUMENT) for a voice the model lacks."""
        inference = options.inference
        if inference.endpointing_sensitivity is None and self.settings.endpointing_sensitivity:
            inference = replace(
                inference, endpointing_sensitivity=self.settings.endpointing_sensitivity
            )
        voice = (options.voice or self.settings.voice).strip().lower()
        problem = voice_problem(self.settings.model_id, voice)
        if problem is not None:
            # Bedrock would refuse the stream only once it opens; say so at configuration.
            raise BackendError(
                "VOICE_UNKNOWN", f"{problem}; see ListVoices", code=ErrorCode.INVALID_ARGUMENT
            )
        system_prompt = options.system_prompt
        if options.speak_first and not self.settings.nova2:
            # Nova 1 takes no typed turn: it is told to speak first on a spoken cue.
            system_prompt = f"{system_prompt}\n\n{cue_instruction(options.speak_first)}".strip()
        return codec.StreamSetup(
            voice=voice,
            output_sample_rate=self.settings.output_rate_for(options.output_sample_rate),
            system_prompt=system_prompt,
            inference=inference,
            tools=tuple(options.tools),
            nova2=self.settings.nova2,
            input_sample_rate=self.settings.input_rate_for(options.input_sample_rate),
        )

    async def open(self, options: BackendOptions) -> NovaSonicSession:
        """Start a conversation: resolve credentials, open the first stream.
        Raises `BackendError` (auth, throttling, validation, unreachable endpoint)."""
        setup = self.setup_for(options)  # a bad voice fails here, before any AWS call
        await self._opener.check_credentials()
        session = NovaSonicSession(self._opener, setup, options)
        try:
            await session.start()
        except BaseException:
            await session.aclose()
            raise
        self._sessions.add(session)
        return session

    async def aclose(self) -> None:
        sessions, self._sessions = list(self._sessions), weakref.WeakSet()
        await asyncio.gather(*(s.aclose() for s in sessions), return_exceptions=True)
        await self._opener.aclose()
