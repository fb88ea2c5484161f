#!/usr/bin/env bash
# Regenerates the committed client code from proto/ with buf, for every language:
#   Python      clients/python/sonicwire/v1    buf.gen.yaml             (pinned grpcio-tools)
#   TypeScript  clients/typescript/src/gen     buf.gen.typescript.yaml  (pinned protoc-gen-es)
#   Go          clients/go/sonicwirev1         buf.gen.go.yaml          (Debian's protoc-gen-go*)
#   scripts/gen_proto.sh          write the generated code in place
#   scripts/gen_proto.sh --check  regenerate into a temporary folder and fail on any drift
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PWD/node_modules/.bin:$PATH"
# template, then the generated folder it owns
targets=(
  buf.gen.yaml clients/python/sonicwire/v1
  buf.gen.typescript.yaml clients/typescript/src/gen
  buf.gen.go.yaml clients/go/sonicwirev1
)
if [[ "${1:-}" == "--check" ]]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  drift=0
  for ((i = 0; i < ${#targets[@]}; i += 2)); do
    template=${targets[i]} dir=${targets[i + 1]}
    buf generate --template "$template" --output "$tmp" >/dev/null
    # Compare only generated files: __init__.py and py.typed are ours.
    if ! diff -r -x __init__.py -x py.typed -x __pycache__ "$tmp/$dir" "$dir"; then
      echo "generated code in $dir is out of date ($template)" >&2
      drift=1
    fi
  done
  if ((drift)); then
    echo "run scripts/gen_proto.sh (make gen) and commit" >&2
    exit 1
  fi
  echo "generated code matches proto/ (Python, TypeScript, Go)"
else
  for ((i = 0; i < ${#targets[@]}; i += 2)); do
    template=${targets[i]} dir=${targets[i + 1]}
    # Stale files of removed protos must not survive: the generated folders are ours alone
    # (the Python package keeps its own __init__.py and py.typed).
    find "$dir" -type f \( -name '*_pb.ts' -o -name '*.pb.go' \) -delete 2>/dev/null || true
    buf generate --template "$template" >/dev/null
    echo "generated $dir"
  done
fi
