#!/usr/bin/env bash
# One Converse call with a typed turn instead of audio.
#   docs/recipes/converse_text.sh "What time is it?"
set -euo pipefail
. "$(dirname "$0")/common.sh"

text="${1:?usage: converse_text.sh TEXT}"
# JSON-escape backslashes and quotes of the text.
escaped=$(printf '%s' "$text" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')
printf '{"config": {}}\n{"text": {"text": "%s"}}\n' "$escaped" |
  "${CURL[@]}" -d @- "$URL/sonicwire.v1.VoiceService/Converse"
