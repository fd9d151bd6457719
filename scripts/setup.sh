#!/usr/bin/env bash
# Installs what streamgate needs on Debian/Ubuntu: the speech engine, sox, the speech-fixture voices
# (flite, espeak-ng), and the real parts the tests start on loopback (redis-server, prometheus,
# chromium) from apt, then the npm dependencies. Used by the README's two commands, by .ci/run and by the Dockerfile.
#   scripts/setup.sh                 every Debian package + npm ci (README, CI)
#   scripts/setup.sh --system-only   the runtime Debian packages only (the Dockerfile's runtime stage)
set -euo pipefail
cd "$(dirname "$0")/.."

# What the gateway runs with, and what the tests and the fixture scripts start beside it.
RUNTIME_PACKAGES=(pocketsphinx pocketsphinx-en-us sox)
TEST_PACKAGES=(flite espeak-ng redis-server prometheus chromium)
PACKAGES=("${RUNTIME_PACKAGES[@]}")
[ "${1:-}" = "--system-only" ] || PACKAGES+=("${TEST_PACKAGES[@]}")

# Node.js >= 20.19 with npm (package.json engines). Debian 12's own nodejs is 18: too old.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "streamgate setup: Node.js >= 20.19 and npm are needed (https://nodejs.org, or NodeSource's Debian packages)." >&2
  exit 1
fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "streamgate setup: Node.js $(node --version) is too old; streamgate needs >= 20.19." >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "streamgate setup: cannot install Debian packages without root. Run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    echo "then run this script again. (Without them the gateway runs with TRANSCRIPTION=none.)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "${1:-}" != "--system-only" ]; then
  npm ci --no-audit --no-fund
fi
