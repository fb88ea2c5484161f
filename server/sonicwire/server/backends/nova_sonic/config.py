"""Settings of the Nova Sonic backend: keyword options, then environment, then defaults.

`NovaSonicSettings.from_options(**options)` is what ``NovaSonicBackend.from_options`` calls.
Options that are None count as unset. Unknown option names are rejected with
``BackendError(BACKEND_CONFIG_INVALID)`` naming them, so a typo never passes silently.

=========================  ======================================  ==========================
option                     environment (first set wins)            default
=========================  ======================================  ==========================
region                     AWS_REGION, AWS_DEFAULT_REGION,         us-east-1
                           the profile's ``region``
endpoint_url               AWS_ENDPOINT_URL_BEDROCK_RUNTIME,       the regional endpoint
                           AWS_ENDPOINT_URL (the SDK reads it)
ca_bundle                  AWS_CA_BUNDLE                           system trust store
credentials                SONICWIRE_NOVA_CREDENTIALS              ``default`` (see below)
profile                    AWS_PROFILE (read by the SDK)           ``default``
aws_access_key_id, ...     AWS_ACCESS_KEY_ID, ... (default chain)  -
model_id                   SONICWIRE_NOVA_MODEL_ID                 amazon.nova-2-sonic-v1:0
voice                      SONICWIRE_NOVA_VOICE                    matthew
output_sample_rate         SONICWIRE_NOVA_OUTPUT_RATE              the client's rate if Nova
                                                                   makes it (8/16/24 kHz),
                                                                   else 24000
input_sample_rate          SONICWIRE_NOVA_INPUT_RATE               ``auto``: 8000 for 8 kHz
                                                                   clients, else 16000
speak_first_cue            SONICWIRE_NOVA_SPEAK_FIRST_CUE          the packaged "ready" (Nova 1
                                                                   speak-first; a 16 kHz WAV)
endpointing_sensitivity    SONICWIRE_NOVA_ENDPOINTING              Nova's default (Nova 2)
continuation_threshold_s   SONICWIRE_NOVA_CONTINUATION_S           360
continuation_max_defer_s   SONICWIRE_NOVA_CONTINUATION_DEFER_S     60
continuation_prepared_idle_s SONICWIRE_NOVA_PREPARED_IDLE_S        20
audio_replay_ms            SONICWIRE_NOVA_AUDIO_REPLAY_MS          3000
open_timeout_s             SONICWIRE_NOVA_OPEN_TIMEOUT_S           10
close_timeout_s            SONICWIRE_NOVA_CLOSE_TIMEOUT_S          3
reconnects                 SONICWIRE_NOVA_RECONNECTS               3
retry_backoff_s            SONICWIRE_NOVA_RETRY_BACKOFF_S          0.5 (doubles per attempt)
credential_refresh_margin_s SONICWIRE_NOVA_CREDENTIAL_MARGIN_S     120
=========================  ======================================  ==========================

``credentials``: ``default`` is the SDK's chain (environment variables, then the shared
config/credentials files and ``credential_process`` of the profile); ``environment``;
``container`` (ECS/EKS task role via ``AWS_CONTAINER_CREDENTIALS_*``); ``imds`` (EC2 instance
profile). Explicit ``aws_access_key_id``/``aws_secret_access_key`` options override all of them.
"""

from __future__ import annotations

import os
import wave
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from sonicwire.server.backends.nova_sonic.errors import BACKEND_CONFIG_INVALID
from sonicwire.server.backends.nova_sonic.speak_first import load_cue
from sonicwire.server.backends.nova_sonic.voices import voice_problem
from sonicwire.server.core.errors import BackendError, ErrorCode

__all__ = [
    "CREDENTIAL_SOURCES",
    "DEFAULT_MODEL_ID",
    "NOVA_INPUT_RATES",
    "NOVA_OUTPUT_RATES",
    "NovaSonicSettings",
]

DEFAULT_MODEL_ID = "amazon.nova-2-sonic-v1:0"
DEFAULT_VOICE = "matthew"
NOVA_OUTPUT_RATES = frozenset({8_000, 16_000, 24_000})
# Rates the user's audio can go to Nova at. Nova takes 8000, 16000 and 24000 (input events
# pages of both user guides); the front end's audio is 16 kHz, so 24 kHz would only be an
# upsampled copy of it: not offered.
NOVA_INPUT_RATES = frozenset({8_000, 16_000})
CREDENTIAL_SOURCES = frozenset({"default", "environment", "container", "imds"})


@dataclass(frozen=True, slots=True)
class NovaSonicSettings:
    """Resolved, validated settings. Build with `from_options`; all fields are read-only."""

    region: str | None = None
    endpoint_url: str | None = None
    ca_bundle: str | None = None
    credentials: str = "default"
    profile: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    model_id: str = DEFAULT_MODEL_ID
    voice: str = DEFAULT_VOICE
    output_sample_rate: int | None = None
    # None (``auto``): 8 kHz for telephone-band clients, 16 kHz for the rest (`input_rate_for`).
    input_sample_rate: int | None = None
    # Nova 1's speak-first cue: a mono 16-bit 16 kHz WAV (None: the packaged "ready").
    speak_first_cue: str | None = None
    endpointing_sensitivity: str | None = None
    continuation_threshold_s: float = 360.0
    continuation_max_defer_s: float = 60.0
    # A pre-opened next stream gets no input until the switch; Bedrock aborts idle streams
    # ("Timed out waiting for input events"), so it is replaced after this long.
    continuation_prepared_idle_s: float = 20.0
    audio_replay_ms: int = 3000
    open_timeout_s: float = 10.0
    close_timeout_s: float = 3.0
    # Transient failures (throttling, stream errors, model not ready, "System instability")
    # are retried this many times in a row, as the pipecat/LiveKit integrations do, waiting
    # retry_backoff_s, then twice that, ... before each attempt.
    reconnects: int = 3
    retry_backoff_s: float = 0.5
    # Streams open with credentials valid this much longer, and a conversation moves to a new
    # stream this long before its stream's temporary credentials expire.
    credential_refresh_margin_s: float = 120.0

    @property
    def nova2(self) -> bool:
        """Nova 2 (and later) takes turn detection settings and typed text turns."""
        return "nova-sonic-v1" not in self.model_id

    def output_rate_for(self, client_rate: int) -> int:
        """The rate to ask Nova for: the configured one, else the client's if Nova can make it
        (saves a resampling step), else Nova's native 24 kHz."""
        if self.output_sample_rate is not None:
            return self.output_sample_rate
        return client_rate if client_rate in NOVA_OUTPUT_RATES else 24_000

    def input_rate_for(self, client_rate: int) -> int:
        """The rate Nova hears the user at: the configured one, else 8 kHz for a client at
        8 kHz (G.711, telephony: its audio has nothing above 4 kHz, and half the bytes go
        upstream) and the front end's 16 kHz for every other."""
        if self.input_sample_rate is not None:
            return self.input_sample_rate
        return 8_000 if client_rate <= 8_000 else 16_000

    @classmethod
    def from_options(
        cls, env: Mapping[str, str] | None = None, **options: Any
    ) -> NovaSonicSettings:
        """Resolve options, then ``env`` (default `os.environ`), then defaults.

        Raises `BackendError` (``BACKEND_CONFIG_INVALID``) for unknown options or bad values.
        """
        env = os.environ if env is None else env
        known = {f.name for f in fields(cls)}
        unknown = sorted(k for k, v in options.items() if k not in known and v is not None)
        if unknown:
            raise _invalid(
                f"unknown nova-sonic option(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        given = {k: v for k, v in options.items() if v is not None}

        def pick(name: str, *env_names: str) -> Any:
            if name in given:
                return given[name]
            for env_name in env_names:
                if env.get(env_name):
                    return env[env_name]
            return None

        raw: dict[str, Any] = {
            "region": pick("region", "AWS_REGION", "AWS_DEFAULT_REGION"),
            "endpoint_url": pick("endpoint_url", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"),
            "ca_bundle": pick("ca_bundle", "AWS_CA_BUNDLE"),
            "credentials": pick("credentials", "SONICWIRE_NOVA_CREDENTIALS"),
            "profile": pick("profile"),
            "aws_access_key_id": pick("aws_access_key_id"),
            "aws_secret_access_key": pick("aws_secret_access_key"),
            "aws_session_token": pick("aws_session_token"),
            "model_id": pick("model_id", "SONICWIRE_NOVA_MODEL_ID"),
            "voice": pick("voice", "SONICWIRE_NOVA_VOICE"),
            "output_sample_rate": pick("output_sample_rate", "SONICWIRE_NOVA_OUTPUT_RATE"),
            "input_sample_rate": pick("input_sample_rate", "SONICWIRE_NOVA_INPUT_RATE"),
            "speak_first_cue": pick("speak_first_cue", "SONICWIRE_NOVA_SPEAK_FIRST_CUE"),
            "endpointing_sensitivity": pick(
                "endpointing_sensitivity", "SONICWIRE_NOVA_ENDPOINTING"
            ),
            "continuation_threshold_s": pick(
                "continuation_threshold_s", "SONICWIRE_NOVA_CONTINUATION_S"
            ),
            "continuation_max_defer_s": pick(
                "continuation_max_defer_s", "SONICWIRE_NOVA_CONTINUATION_DEFER_S"
            ),
            "continuation_prepared_idle_s": pick(
                "continuation_prepared_idle_s", "SONICWIRE_NOVA_PREPARED_IDLE_S"
            ),
            "audio_replay_ms": pick("audio_replay_ms", "SONICWIRE_NOVA_AUDIO_REPLAY_MS"),
            "open_timeout_s": pick("open_timeout_s", "SONICWIRE_NOVA_OPEN_TIMEOUT_S"),
            "close_timeout_s": pick("close_timeout_s", "SONICWIRE_NOVA_CLOSE_TIMEOUT_S"),
            "reconnects": pick("reconnects", "SONICWIRE_NOVA_RECONNECTS"),
            "retry_backoff_s": pick("retry_backoff_s", "SONICWIRE_NOVA_RETRY_BACKOFF_S"),
            "credential_refresh_margin_s": pick(
                "credential_refresh_margin_s", "SONICWIRE_NOVA_CREDENTIAL_MARGIN_S"
            ),
        }
        return cls(**_validated({k: v for k, v in raw.items() if v is not None}))


def _invalid(message: str) -> BackendError:
    return BackendError(BACKEND_CONFIG_INVALID, message, code=ErrorCode.FAILED_PRECONDITION)


def _number[T: (int, float)](values: dict[str, Any], name: str, kind: type[T], low: T) -> None:
    if name not in values:
        return
    try:
        value = kind(values[name])
    except (TypeError, ValueError):
        raise _invalid(f"{name} must be a number, got {values[name]!r}") from None
    if value < low:
        raise _invalid(f"{name} must be at least {low}, got {value}")
    values[name] = value


def _validated(values: dict[str, Any]) -> dict[str, Any]:
    for name in (
        "continuation_threshold_s",
        "continuation_max_defer_s",
        "close_timeout_s",
        "retry_backoff_s",
        "credential_refresh_margin_s",
    ):
        _number(values, name, float, 0.0)
    _number(values, "open_timeout_s", float, 0.1)
    _number(values, "continuation_prepared_idle_s", float, 0.05)
    _number(values, "audio_replay_ms", int, 0)
    _number(values, "reconnects", int, 0)
    _number(values, "output_sample_rate", int, 1)
    rate = values.get("output_sample_rate")
    if rate is not None and rate not in NOVA_OUTPUT_RATES:
        raise _invalid(f"output_sample_rate must be one of 8000, 16000, 24000, got {rate}")
    if str(values.get("input_sample_rate", "")).strip().lower() == "auto":
        del values["input_sample_rate"]
    _number(values, "input_sample_rate", int, 1)
    rate = values.get("input_sample_rate")
    if rate is not None and rate not in NOVA_INPUT_RATES:
        raise _invalid(
            f"input_sample_rate must be auto, 8000 or 16000, got {rate} (the echo canceller "
            "and VAD run at 16 kHz, so Nova never gets more than 16 kHz of band)"
        )
    credentials = str(values.get("credentials", "default")).lower()
    if credentials not in CREDENTIAL_SOURCES:
        raise _invalid(
            f"credentials must be one of {', '.join(sorted(CREDENTIAL_SOURCES))}, "
            f"got {credentials!r}"
        )
    values["credentials"] = credentials
    if ("aws_access_key_id" in values) != ("aws_secret_access_key" in values):
        raise _invalid("aws_access_key_id and aws_secret_access_key go together")
    if "voice" in values:
        values["voice"] = str(values["voice"]).strip().lower()
    if "endpointing_sensitivity" in values:
        sensitivity = str(values["endpointing_sensitivity"]).upper()
        if sensitivity not in ("HIGH", "MEDIUM", "LOW"):
            raise _invalid(f"endpointing_sensitivity must be HIGH, MEDIUM or LOW: {sensitivity}")
        values["endpointing_sensitivity"] = sensitivity
    endpoint = values.get("endpoint_url")
    if endpoint is not None and not str(endpoint).startswith("https://"):
        # Plain http:// falls back to HTTP/1.1, where the SDK buffers the whole request body
        # until close: no duplex stream, so Nova would never hear the audio.
        raise _invalid(f"endpoint_url must be https:// (HTTP/2 is required): {endpoint}")
    cue = values.get("speak_first_cue")
    if cue is not None:
        try:
            load_cue(16_000, str(cue))
        except (OSError, ValueError, EOFError, wave.Error) as error:
            raise _invalid(f"speak_first_cue {cue}: {error}") from None
        values["speak_first_cue"] = str(cue)
    ca_bundle = values.get("ca_bundle")
    if ca_bundle is not None and not os.path.isfile(str(ca_bundle)):
        raise _invalid(f"ca_bundle (AWS_CA_BUNDLE) is not a readable file: {ca_bundle}")
    model = str(values.get("model_id", DEFAULT_MODEL_ID))
    if not model.strip():
        raise _invalid("model_id is empty")
    problem = voice_problem(model, str(values.get("voice", DEFAULT_VOICE)))
    if problem is not None:
        raise _invalid(f"voice: {problem}")
    return values
