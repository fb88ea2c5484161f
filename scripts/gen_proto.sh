#!/usr/bin/env bash
# Regenerates clients/python/sonicwire/v1 from proto/ with buf and the pinned grpcio-tools.
#   scripts/gen_proto.sh          write the generated code in place
#   scripts/gen_proto.sh --check  regenerate into a temporary folder and fail on any drift
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PWD/node_modules/.bin:$PATH"
gen_dir=sonicwire/v1
if [[ "${1:-}" == "--check" ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  buf generate --output "$tmp" >/dev/null
  # Compare only generated files: __init__.py and py.typed are ours.
  if ! diff -r -x __init__.py -x py.typed -x __pycache__ "$tmp/clients/python/$gen_dir" "clients/python/$gen_dir"; then
    echo "generated code is out of date: run scripts/gen_proto.sh (make gen) and commit" >&2
    exit 1
  fi
  echo "generated code matches proto/"
else
  buf generate >/dev/null
  echo "generated clients/python/$gen_dir"
fi
