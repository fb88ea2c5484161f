#!/usr/bin/env bash
# Sets up everything Sonicwire needs on a fresh Debian machine, idempotently:
#   Debian packages (SpeexDSP, libopus, espeak-ng; sox and ffmpeg as reference codecs for the
#   codec tests; flite and alsa voice samples for the local engine's evaluation; chromium for
#   the browser test; redis-server, haproxy and nginx-light for the multi-replica test),
#   Debian's Go toolchain, protoc plugins and packaged gRPC/protobuf libraries for the Go client,
#   a Python >= 3.12 virtual environment at .venv with pinned packages and the per-frame modules
#   compiled with mypyc (gcc; the Python headers come with pyenv's Python), npm tools (buf) and
#   the TypeScript client's pinned packages (an npm workspace), and the TypeScript client's build.
# Re-running is cheap: each step is skipped when its inputs have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libspeexdsp1 libopus0 sox ffmpeg espeak-ng flite alsa-utils chromium chromium-driver fonts-dejavu-core redis-server haproxy nginx-light)
# The Go client (clients/go): no Go module proxy is needed, it builds in GOPATH mode against
# Debian's packaged libraries (scripts/go). golang-github-golang-protobuf-1-5-dev: without it apt
# picks the 1.3 package, whose runtime panics on the generated code. About 590 MB installed.
# gcc and libc6-dev: mypyc's C (compile_native).
APT_PACKAGES+=(gcc libc6-dev)
APT_PACKAGES+=(golang-go protobuf-compiler protoc-gen-go protoc-gen-go-grpc golang-google-grpc-dev
  golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev)

log() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

install_apt() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then sudo=(sudo); else
      log "missing Debian packages: ${missing[*]} (run as root or install them)"; return 1
    fi
  fi
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  }
}

find_python() {
  # The AWS SDK needs Python >= 3.12; the machine's default python3 may be older.
  local candidates=(python3.12 python3.13 python3)
  if command -v pyenv >/dev/null; then
    local root; root=$(pyenv root)
    for v in "$root"/versions/3.12.* "$root"/versions/3.13.*; do
      [[ -x "$v/bin/python3" ]] && candidates+=("$v/bin/python3")
    done
  fi
  for dir in /root/.pyenv/versions/3.12.* /root/.pyenv/versions/3.13.* "$HOME"/.pyenv/versions/3.1[23].*; do
    [[ -x "$dir/bin/python3" ]] && candidates+=("$dir/bin/python3")
  done
  for py in "${candidates[@]}"; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$py"; return 0
    fi
  done
  log "no Python >= 3.12 found (tried: ${candidates[*]})"; return 1
}

install_venv() {
  local stamp=.venv/.sonicwire-setup
  local want; want=$(cat pyproject.toml requirements/constraints.txt | sha256sum | cut -c1-16)
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then return 0; fi
  if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
    local py; py=$(find_python)
    log "creating .venv with $("$py" --version)"
    rm -rf .venv
    "$py" -m venv .venv
  fi
  log "installing Python packages (pinned by requirements/constraints.txt)"
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel
  # With build isolation: dependencies that come as source (pocketsphinx) build with their own
  # backends (scikit-build-core), which the venv does not have. Pure Python here; compile_native
  # compiles afterwards, without isolation, against the venv's packages.
  SONICWIRE_COMPILE=0 .venv/bin/python -m pip install -q \
    -c requirements/constraints.txt -e '.[dev]'
  echo "$want" > "$stamp"
  # The pure reinstall rewrote the editable install's import map without mypyc's shared
  # helper module (at the checkout's root): compiled modules still on disk would then import
  # in this directory only, and fail in a subprocess started elsewhere. Compile again.
  REINSTALLED=1
}

compile_native() {
  # The per-frame modules compiled with mypyc, next to their sources (setup.py,
  # server/sonicwire/server/native.py): rebuilt when one is missing or its source changed.
  # mypyc type-checks them against the venv's packages, hence no build isolation.
  # SONICWIRE_COMPILE=0 keeps pure Python: a previous build is removed, or it would still win
  # the imports.
  if [[ ${SONICWIRE_COMPILE:-1} == 0 ]]; then
    local removed
    removed=$(.venv/bin/python -c 'from sonicwire.server import native; print(len(native.remove_build()))')
    [[ $removed == 0 ]] || log "SONICWIRE_COMPILE=0: removed the previous build ($removed files)"
    return 0
  fi
  if [[ -z ${REINSTALLED:-} ]]; then
    .venv/bin/python -c 'import sys; from sonicwire.server import native; sys.exit(native.needs_build())' && return 0
  fi
  log "compiling the per-frame modules with mypyc (about a minute)"
  local build_log=.venv/compile-native.log
  SONICWIRE_COMPILE=1 .venv/bin/python -m pip install -q --no-build-isolation --no-deps -e . \
    >"$build_log" 2>&1 || { tail -40 "$build_log"; log "compiling failed (log: $build_log)"; return 1; }
  log "$(.venv/bin/python -c 'from sonicwire.server import native; print(native.describe())')"
}

install_npm() {
  local stamp=node_modules/.sonicwire-setup
  local want; want=$(sha256sum package-lock.json | cut -c1-16)
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then return 0; fi
  log "installing npm tools (buf, playwright-core) and the TypeScript client's packages"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "$want" > "$stamp"
}

build_typescript() {
  # The Node client runs from its build (clients/typescript/dist, not committed): rebuilt
  # whenever its sources, its configuration or the installed packages change.
  local stamp=clients/typescript/dist/.sonicwire-setup
  local want; want=$(cat package-lock.json clients/typescript/package.json \
    clients/typescript/tsconfig.json $(find clients/typescript/src -name '*.ts' | sort) |
    sha256sum | cut -c1-16)
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then return 0; fi
  log "building the TypeScript client (clients/typescript/dist)"
  rm -rf clients/typescript/dist
  node_modules/.bin/tsc -p clients/typescript
  echo "$want" > "$stamp"
}

install_apt
install_venv
compile_native
install_npm
build_typescript
log "ready"
