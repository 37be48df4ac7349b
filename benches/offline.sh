#!/usr/bin/env bash
# Offline transcription benchmark: model load time, real-time factor and peak RSS of
# `tolk transcribe` on real recordings, for each model. Several runs, medians reported.
#
#   bash benches/offline.sh [RUNS]        (make bench runs it after the set-up)
#
# Prints a Markdown table for benches/README.md. Run it on an otherwise idle machine:
# whisper.cpp spin-waits on its threads and any other load distorts the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
TOLK=target/release/tolk
THREADS=$(nproc)

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(date -u +%Y-%m-%d); $RUNS runs, median; threads $THREADS"
echo
echo "| model | recording | audio s | decoding | load s | transcribe s | RTF | peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|"
for model in base tiny.en base-q8_0; do
  [ -f ".cache/tolk/models/ggml-$model.bin" ] || $TOLK models fetch "$model" >/dev/null
  for rec in jfk sonnet; do
    for beam in 5 1; do
      loads=(); runs=(); rss=()
      for _ in $(seq "$RUNS"); do
        log=$(TOLK_LOG=tolk=info /usr/bin/time -f "RSS %M" $TOLK transcribe "testdata/$rec.wav" \
              --model "$model" --language en --beam-size "$beam" --threads "$THREADS" 2>&1 >/dev/null)
        loads+=("$(grep -o 'load_s=[0-9.]*' <<<"$log" | cut -d= -f2)")
        runs+=("$(grep -o 'run_s=[0-9.]*' <<<"$log" | cut -d= -f2)")
        rss+=("$(grep -o 'RSS [0-9]*' <<<"$log" | cut -d' ' -f2)")
      done
      dur=$(soxi -D "testdata/$rec.wav")
      load=$(printf '%s\n' "${loads[@]}" | median)
      run=$(printf '%s\n' "${runs[@]}" | median)
      mem=$(printf '%s\n' "${rss[@]}" | median)
      dec=$([ "$beam" = 1 ] && echo greedy || echo "beam $beam")
      awk -v m="$model" -v r="$rec" -v d="$dur" -v dec="$dec" -v l="$load" -v t="$run" -v k="$mem" \
        'BEGIN { printf "| %s | %s | %.1f | %s | %.2f | %.2f | %.3f | %d |\n", m, r, d, dec, l, t, t/d, k/1024 }'
    done
  done
done

# Accuracy of the default decoding (base, beam 5) on the test recordings, as the tests score it.
echo
echo "| model | recording | language | WER |"
echo "|---|---|---|---|"
tmp=$(mktemp)
for case in "jfk en" "sonnet en" "es-demo-instruct es" "en-demo-instruct en"; do
  set -- $case
  for model in base tiny.en; do
    [ "$model" = tiny.en ] && [ "$2" != en ] && continue
    $TOLK transcribe "testdata/$1.wav" --model "$model" --language "$2" --format json \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["text"])' > "$tmp"
    echo "| $model | $1 | $2 | $($TOLK wer "tests/data/$1.txt" "$tmp" --language "$2" | sed 's/^WER //') |"
  done
done
rm -f "$tmp"
