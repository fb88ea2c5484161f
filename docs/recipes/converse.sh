#!/usr/bin/env bash
# One Converse call with audio from a WAV file (16-bit PCM mono, 8/16/24/48 kHz), sent as
# base64 in AudioInput messages of 32000 bytes, then a half-close. Prints every
# ConverseResponse as JSON (assistant audio is base64 in "audio").
#   docs/recipes/converse.sh question.wav
# Convert other audio first: ffmpeg -i in.mp3 -ac 1 -ar 16000 -c:a pcm_s16le question.wav
set -euo pipefail
. "$(dirname "$0")/common.sh"

wav="${1:?usage: converse.sh FILE.wav}"
# Sample rate: bytes 24..27 of the WAV header (little-endian).
rate=$(od -An -tu4 -j24 -N4 "$wav" | tr -d ' ')
# Samples start after the "data" chunk header (4-byte tag + 4-byte size).
data_at=$(LC_ALL=C grep -obUa 'data' "$wav" | head -n1 | cut -d: -f1)

{
  printf '{"config": {"inputFormat": {"encoding": "AUDIO_ENCODING_PCM_S16LE", "sampleRateHz": %s, "channels": 1}}}\n' "$rate"
  tail -c +"$((data_at + 9))" "$wav" |
    split -b 32000 --filter='printf "{\"audio\": {\"audio\": \"%s\"}}\n" "$(base64 -w0)"' -
} | "${CURL[@]}" -d @- "$URL/sonicwire.v1.VoiceService/Converse"
