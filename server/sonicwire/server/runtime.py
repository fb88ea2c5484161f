"""Process-wide state shared by every stream: backend, auth, limits, tools, live conversations."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from sonicwire.server import convert, validate
from sonicwire.server.auth import ApiKeyAuthenticator, load_keys
from sonicwire.server.backends.base import (
    Backend,
    BackendOptions,
    BackendSession,
    ToolDescription,
)
from sonicwire.server.codecs.upsample import Upsampler2x
from sonicwire.server.config import ServerConfig
from sonicwire.server.conversation import Conversation
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import (
    BackendError,
    ErrorCode,
    ProtocolError,
    ResumeError,
    ServerDraining,
)
from sonicwire.server.core.ports import ResamplerPort
from sonicwire.server.core.session import Session
from sonicwire.server.core.settings import MAX_AUDIO_CHUNK_BYTES, SessionSettings
from sonicwire.server.core.snapshot import ConversationState
from sonicwire.server.dsp.pipeline import FrontEnd
from sonicwire.server.dsp.resample import Resampler
from sonicwire.server.limits import InputLimits, InputPolicy, StreamLimiter
from sonicwire.server.metrics import SESSION_RESUMES, StreamMetrics
from sonicwire.server.resume import (
    Resumer,
    SaveOutcome,
    StateSaver,
    new_token,
    token_digest,
)
from sonicwire.server.state_store import open_store
from sonicwire.server.tools.bridge import SessionTools
from sonicwire.server.tools.outcome import ToolDispatch
from sonicwire.server.tools.registry import build_registry
from sonicwire.server.tools.spec import ToolSpec, ToolSpecError
from sonicwire.v1 import voice_service_pb2 as pb

__all__ = ["ServerRuntime"]

log = logging.getLogger(__name__)

# What prompts the assistant to open a conversation (`SessionConfig.assistant_speaks_first`).
DEFAULT_SPEAK_FIRST_PROMPT = (
    "The call has just connected and the user has not said anything yet. Greet the user "
    "briefly, as your instructions describe, and offer your help."
)


def input_resampler(in_rate: int, out_rate: int) -> ResamplerPort:
    """The resampler of a client's audio into the front end: soxr's streaming resampler
    returns 8 -> 16 kHz audio in ~100 ms blocks, which delayed the end-of-speech marker (see
    `codecs.upsample`), so the telephone rate gets a frame-by-frame FIR instead."""
    if (in_rate, out_rate) == (8000, 16000):
        return Upsampler2x()
    return Resampler(in_rate, out_rate)


async def _close_quietly(tools: SessionTools, backend_session: BackendSession) -> None:
    for close in (tools.aclose, backend_session.aclose):
        try:
            await close()
        except Exception:
            log.warning("closing after a failed start", exc_info=True)


class ServerRuntime:
    """Everything a stream needs from the process. Built by ``app.build_server``."""

    def __init__(self, config: ServerConfig, backend: Backend) -> None:
        self.config = config
        self.backend = backend
        self.authenticator = ApiKeyAuthenticator(load_keys(config.api_keys, config.api_key_files))
        self.limiter = StreamLimiter(config.max_streams, config.max_streams_per_key)
        self.conversations: set[Conversation] = set()
        # Live conversations by session id: a resume elsewhere ends the old stream.
        self.live: dict[str, Conversation] = {}
        self._savers: dict[str, StateSaver] = {}  # beside `live`: who saves each conversation
        self.resumer = Resumer(open_store(config.state_store), config.resume_ttl_s)
        self._idle = asyncio.Event()
        self._idle.set()
        self._starting = 0  # streams whose conversation is being set up (not live yet)
        self.draining = False
        # When the drain's grace ends (loop time), set as the drain tells the live streams to
        # go away: a stream that goes live after that tells itself.
        self.drain_ends_at: float | None = None
        self.registry = build_registry(config.tools)
        self.config_limits = validate.ConfigLimits(
            max_client_tools=config.max_client_tools,
            max_tool_schema_bytes=config.max_tool_schema_bytes,
            max_tool_schema_depth=config.max_tool_schema_depth,
            max_tool_schemas_total_bytes=config.max_tool_schemas_total_bytes,
            max_system_prompt_bytes=config.max_system_prompt_bytes,
        )
        self.input_limits = InputLimits(
            text_rate_per_s=config.text_rate_per_s,
            text_burst=config.text_burst,
            tool_result_rate_per_s=config.tool_result_rate_per_s,
            tool_result_burst=config.tool_result_burst,
            max_tool_result_bytes=config.max_tool_result_bytes,
            audio_rate_per_s=config.audio_rate_per_s,
            audio_burst=config.audio_burst,
        )
        # Set when draining starts: streams still waiting for their config end at once.
        self.drain_started = asyncio.Event()
        # Names this process in its SERVER_DRAINING refusals (random: nothing about the host).
        self.replica_id = secrets.token_hex(4)

    def check_accepting(self) -> None:
        if self.draining:
            raise self.draining_error("the server is shutting down; retry elsewhere")

    def draining_error(self, message: str) -> ServerDraining:
        """``SERVER_DRAINING`` with this replica's id and the time its drain has left."""
        ends = self.drain_ends_at
        if ends is None:  # the drain has begun but not yet set its deadline: all of it is left
            left = self.config.drain_grace_s
        else:
            left = ends - asyncio.get_running_loop().time()
        return ServerDraining(
            "SERVER_DRAINING", message, replica=self.replica_id, drain_left_s=left
        )

    @asynccontextmanager
    async def conversation(
        self, config: pb.SessionConfig, caller: str
    ) -> AsyncIterator[tuple[Conversation, pb.SessionStarted]]:
        """Open the backend session and the session core for one stream (a new conversation,
        or the saved one that ``config.resume_session_id`` names).

        While it is being set up (resume, tool schemas, the backend's open) the stream counts
        as live for a drain's `wait_idle`, so that the drain waits for its refusal
        (SERVER_DRAINING) instead of stopping the server under it."""
        self._starting += 1
        self._idle.clear()
        async with AsyncExitStack() as stack:
            try:
                opened = await stack.enter_async_context(self._conversation(config, caller))
            finally:
                self._starting -= 1
                self._update_idle()
            yield opened

    def _update_idle(self) -> None:
        if not self.conversations and not self._starting:
            self._idle.set()

    @asynccontextmanager
    async def _conversation(
        self, config: pb.SessionConfig, caller: str
    ) -> AsyncIterator[tuple[Conversation, pb.SessionStarted]]:
        # Sizes first (cheap): a resume id is client input that goes to the store.
        validate.check_config_shape(config, self.config_limits)
        validate.check_resume(config)
        resumed: ConversationState | None = None
        if config.resume_session_id:
            resumed = await self.resumer.load(config.resume_session_id, config.resume_token, caller)
            # The conversation goes on with the settings it started with.
            config = pb.SessionConfig.FromString(resumed.config)
        settings, client_tools = await self.prepare(config)
        session_id = resumed.session_id if resumed else "sw_" + secrets.token_hex(8)
        token = new_token()
        voice = settings.voice or self._default_voice()
        # The conversation exists only after the backend opened, but a bad tool declaration
        # must fail before that: the runner's callbacks find the conversation through `holder`.
        holder: list[Conversation] = []

        # A tool that reports after the stream ended finds `holder` empty.
        def on_outcome(outcome: ev.ToolCompleted) -> None:
            if holder:
                holder[0].on_tool_outcome(outcome)

        def on_dispatch(dispatch: ToolDispatch) -> None:
            if holder:
                holder[0].on_tool_dispatch(dispatch.call_id)

        try:
            tools = SessionTools(
                self.registry,
                client_tools,
                server_tools=list(config.server_tools) or None,
                on_outcome=on_outcome,
                on_dispatch=on_dispatch,
                session_id=session_id,
                context_extras={"time_zone": settings.time_zone} if settings.time_zone else None,
            )
        except ToolSpecError as error:
            # The message can name every unknown server tool: cut it (status metadata is small).
            raise ProtocolError("CLIENT_TOOL_INVALID", str(error)[:512]) from None
        try:
            validate.check_tool_choice(config.tool_choice, (s.name for s in tools.specs))
        except ProtocolError:
            await tools.aclose()
            raise
        # The calls that survive a barge-in: the client's tools that ask for it (already in
        # `settings`) and the offered server tools whose authors declared it.
        settings = dataclasses.replace(
            settings,
            tools_surviving_interruption=frozenset(
                s.name for s in tools.specs if s.continue_on_interruption
            ),
        )
        options = BackendOptions(
            session_id=session_id,
            voice=voice,
            system_prompt=settings.system_prompt,
            inference=settings.inference,
            tools=[
                ToolDescription(
                    s.name,
                    s.description,
                    dict(s.parameters),
                    examples=s.examples,
                    answer=s.answer,
                    keywords=s.keywords,
                )
                for s in tools.specs
            ],
            output_sample_rate=settings.output_sample_rate,
            input_sample_rate=settings.input_sample_rate,
            speech_pad_ms=settings.front_end.vad.speech_pad_ms,
            history=resumed.history if resumed else (),
            speak_first=(
                (config.speak_first_prompt or DEFAULT_SPEAK_FIRST_PROMPT)
                if config.assistant_speaks_first and not resumed
                else ""
            ),
        )
        try:
            try:
                async with asyncio.timeout(self.config.backend_timeout_s or None):
                    backend_session = await self.backend.open(options)
            except TimeoutError:
                raise BackendError(
                    "BACKEND_TIMEOUT",
                    f"the {self.backend.name} backend did not open within "
                    f"{self.config.backend_timeout_s:g} s",
                    code=ErrorCode.DEADLINE_EXCEEDED,
                ) from None
        except BaseException:
            await tools.aclose()
            raise
        try:
            # The driver wires the core to the C-backed DSP (the core only knows `core.ports`).
            session = Session(
                session_id,
                settings,
                front_end=FrontEnd(settings.front_end),
                resampler=Resampler,
                input_resampler=input_resampler,
            )
            if resumed is not None:
                session.resume_from(resumed.history, resumed.turn_count, resumed.user_turn)
        except BaseException:
            await _close_quietly(tools, backend_session)
            raise
        conversation = Conversation(
            session,
            backend_session,
            idle_timeout_s=self.config.idle_timeout_s,
            max_session_s=self.config.max_session_s,
            close_timeout_s=self.config.backend_timeout_s or 30.0,
            metrics=StreamMetrics(frozenset(self.registry.names())),
        )
        holder.append(conversation)
        conversation.attach_tools(tools)
        saved_config = config.SerializeToString()

        def snapshot() -> ConversationState:
            turns, user_turns = session.turn_counters
            return ConversationState(
                session_id=session_id,
                owner=caller,
                token_sha256=token_digest(token),
                config=saved_config,
                history=session.history.messages,
                turn_count=turns,
                user_turn=user_turns,
            )

        # The stored conversation carries the resumed token now (a new one: nothing, and our
        # own token is as good). The first save below claims it for this stream's token.
        saver = StateSaver(
            self.resumer,
            snapshot,
            expect=resumed.token_sha256 if resumed is not None else token_digest(token),
        )
        conversation.on_checkpoint = saver.request
        started = pb.SessionStarted(
            session_id=session_id,
            config=convert.effective_config(settings, config, voice),
            backend=self.backend.name,
            limits=pb.SessionLimits(
                max_audio_chunk_bytes=MAX_AUDIO_CHUNK_BYTES,
                max_session_seconds=int(self.config.max_session_s),
                idle_timeout_seconds=int(self.config.idle_timeout_s),
            ),
            tools=[spec.name for spec in tools.specs],
            audio_path=convert.audio_path(config),
            resume_token=token,
        )
        if self.draining:
            # The drain began while this stream was being set up (its config was read
            # before): refused like a new stream, and before it claims a resumed
            # conversation, whose token the client can then use elsewhere. Before, it started
            # unseen by the drain and was cut by the final stop (UNAVAILABLE, no reason).
            await conversation.aclose()
            holder.clear()
            self.check_accepting()
        # Resumable from the start, not only after the first turn; for a resume this is the
        # claim: of two streams resuming with one token (on any replicas), the second loses.
        if await saver.save_now() is SaveOutcome.TAKEN_OVER:
            await conversation.aclose()
            holder.clear()
            raise ResumeError(
                "SESSION_NOT_FOUND",
                "no conversation to resume with that id and token (resumed by another stream)",
            )
        # From now on a refused save means a stream elsewhere resumed this conversation.
        saver.on_taken_over = lambda: conversation.terminate(
            ResumeError(
                "SESSION_RESUMED_ELSEWHERE",
                "this conversation was resumed on another stream",
                code=ErrorCode.ABORTED,
            )
        )
        previous = self.live.get(session_id)
        if previous is not None:
            self._savers[session_id].supersede()
            previous.terminate(
                ResumeError(
                    "SESSION_RESUMED_ELSEWHERE",
                    "this conversation was resumed on another stream",
                    code=ErrorCode.ABORTED,
                )
            )
        if resumed is not None:
            SESSION_RESUMES.inc()
            log.info("session %s resumed (turn %d)", session_id, resumed.turn_count)
        self.live[session_id] = conversation
        self._savers[session_id] = saver
        self.conversations.add(conversation)
        self._idle.clear()
        log.info("session %s started for %s on %s", session_id, caller, self.backend.name)
        if self.drain_ends_at is not None:
            # The drain began during the save above: too late to refuse the stream (it has
            # claimed the conversation), and the drain did not see it among the live ones.
            grace_s = max(self.drain_ends_at - asyncio.get_running_loop().time(), 0.0)
            conversation.go_away("server draining", grace_s)
        try:
            yield conversation, started
        finally:
            # Every exit closes the backend session and the tools: also a cancel at the
            # SessionStarted yield or a failed send_initial_metadata, before `outputs` ran.
            await conversation.aclose()
            # The final state (the last turn as heard), kept for resume_ttl_s.
            await saver.close()
            # on_taken_over closes a cycle (conversation -> on_checkpoint -> saver -> lambda
            # -> conversation) that kept every ended conversation for the cyclic GC.
            saver.on_taken_over = None
            if self.live.get(session_id) is conversation:
                del self.live[session_id]
                del self._savers[session_id]
            # `holder` closes a reference cycle (conversation -> tools -> callbacks -> holder):
            # left in place, every ended conversation's audio state waited for the cyclic GC,
            # and RSS rose ~2 MB/s under load until a full collection (docs/soak.md).
            holder.clear()
            # So does the saver's callback (conversation -> on_checkpoint -> saver -> it).
            saver.on_taken_over = None
            self.conversations.discard(conversation)
            self._update_idle()
            log.info("session %s ended", session_id)

    async def prepare(self, config: pb.SessionConfig) -> tuple[SessionSettings, list[ToolSpec]]:
        """Validate ``config``: cheap caps on the loop, the tool schemas off it.

        Raises:
            ProtocolError: a cap is exceeded or a field is invalid (INVALID_ARGUMENT).
        """
        validate.check_config_shape(config, self.config_limits)
        depth = self.config.max_tool_schema_depth

        def parse() -> tuple[SessionSettings, list[ToolSpec]]:
            tools = convert.client_tools_from_config(config, max_schema_depth=depth)
            return convert.settings_from_config(config, tools), tools

        if not config.client_tools:
            return parse()
        # Up to max_client_tools schemas at ~0.2 ms each: far over the ~1 ms the loop allows.
        return await asyncio.to_thread(parse)

    def input_policy(self, input_sample_rate_hz: int) -> InputPolicy:
        """A fresh per-stream input policy (rates and sizes after the config), for a stream
        whose decoded input is PCM at ``input_sample_rate_hz``."""
        return InputPolicy(self.input_limits, time.monotonic(), input_sample_rate_hz)

    async def wait_idle(self, within_s: float) -> bool:
        """Wait until no conversation is live; False if ``within_s`` passed first."""
        try:
            async with asyncio.timeout(within_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    def _default_voice(self) -> str:
        voices = self.backend.voices()
        for voice in voices:
            if voice.default:
                return voice.id
        return voices[0].id if voices else ""

    def list_voices(self, backend: str, model: str = "") -> pb.ListVoicesResponse:
        """The backend's voices; ``model`` picks another model of a backend that has several
        (nova-sonic), other backends list nothing for a model they do not have."""
        if backend and backend.replace("_", "-") != self.backend.name:
            return pb.ListVoicesResponse()
        by_model = getattr(self.backend, "voices_for_model", None)
        if not model:
            voices = self.backend.voices()
        elif callable(by_model):
            voices = list(by_model(model))
        else:
            voices = []
        return pb.ListVoicesResponse(
            voices=[
                pb.Voice(
                    id=v.id,
                    language_code=v.language_code,
                    backend=self.backend.name,
                    default=v.default,
                    language_codes=list(v.languages),
                    polyglot=v.polyglot,
                    model=v.model,
                )
                for v in voices
            ],
            audio_formats=convert.supported_audio_formats(),
        )

    def list_tools(self) -> pb.ListToolsResponse:
        return pb.ListToolsResponse(
            tools=[
                pb.Tool(
                    name=spec.name,
                    description=spec.description,
                    parameters_json_schema=spec.parameters_json,
                    examples=spec.examples,
                    answer_template=spec.answer,
                )
                for spec in self.registry.specs()
            ]
        )
