#!/usr/bin/env bash
# Recognition on workers over NATS (issue 16): the same meeting captioned by `tolk serve`
# alone, and by a room server with one and with two `tolk worker` processes (each pinned to
# one core with taskset, one Whisper thread), over a real nats-server on loopback; then two
# workers with one killed (-9) mid-speech, to time the handover; then the room server
# decoding one channel itself (`decode_here = 1`, pinned to core 0) beside one worker.
#
#   bash benches/cluster.sh [CHANNELS] [KILL_AT_SECS] [kill|here]   (defaults: 3 channels,
#                                 40 s; `kill`: the handover run only; `here`: the last only)
#
# Channels: the floor speaks an English program (sonnet, a conversational recording, jfk;
# 116 s), the booths alternate a Spanish program (Asterisk prompts; 93 s) and the English
# one. Per channel: WER against the recordings' references (`tolk wer`), finals, and each
# final's delay (its arrival, `wall_ms`, less the moment its last word was spoken: the
# source's start plus the final's end) p50 / p95. Run on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
CHANNELS=${1:-3}
KILL_AT=${2:-40}
ONLY=${3:-all}
TOLK=$PWD/target/release/tolk
export TOLK_CACHE_DIR=${TOLK_CACHE_DIR:-$PWD/.cache/tolk}
command -v nats-server >/dev/null || { echo "nats-server is missing: run make test (or apt-get install nats-server)"; exit 1; }
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 1; rm -rf "$WORK"' EXIT

# The two programs and their references.
program() { # $1: output, then the recordings
  local out=$1 parts=(); shift
  for f in "$@"; do sox "testdata/$f" -r 16000 -c 1 -b 16 "$WORK/part-$f"; parts+=("$WORK/part-$f"); done
  sox "${parts[@]}" "$out"
}
program "$WORK/en.wav" sonnet.wav mfa-michaelandsickmichael.wav jfk.wav
program "$WORK/es.wav" es-conf-adminmenu-18.wav es-vm-options.wav es-demo-instruct.wav
cat tests/data/sonnet.txt tests/data/mfa-michaelandsickmichael.txt tests/data/jfk.txt | tr '\n' ' ' > "$WORK/en.txt"
cat tests/data/es-conf-adminmenu-18.txt tests/data/es-vm-options.txt tests/data/es-demo-instruct.txt | tr '\n' ' ' > "$WORK/es.txt"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats-server -js -a 127.0.0.1 -p "$PORT" -sd "$WORK/js" >/dev/null 2>&1 &
sleep 1
URL=nats://127.0.0.1:$PORT

meeting() { # $1: folder, $2: local (no cluster), cluster (workers only) or here (the room decodes one)
  mkdir -p "$1"
  {
    printf '[meeting]\nid = "bench"\ntitle = "cluster bench"\narchive = "archive.sqlite"\nmodel = "base"\nrevise = false\n'
    [ "$2" = here ] && printf 'threads = 1\n'
    [ "$2" = cluster ] && printf '\n[cluster]\nnats = "%s"\ndecode_here = 0\n' "$URL"
    [ "$2" = here ] && printf '\n[cluster]\nnats = "%s"\ndecode_here = 1\n' "$URL"
    for i in $(seq 0 $((CHANNELS - 1))); do
      lang=en; [ $((i % 2)) = 1 ] && lang=es
      id=floor; [ "$i" -gt 0 ] && id=booth$i
      floor=false; [ "$i" = 0 ] && floor=true
      printf '\n[[channel]]\nid = "%s"\nlanguage = "%s"\nfloor = %s\nsource = { kind = "file", path = "%s/%s.wav" }\n' "$id" "$lang" "$floor" "$WORK" "$lang"
    done
  } > "$1/meeting.toml"
}

# Starts the room server in $1; waits for its address; records the sources' start (ms).
serve() { # $1: folder; $2: the cores it may use (default: all)
  (cd "$1" && exec taskset -c "${2:-0-$(($(nproc) - 1))}" $TOLK serve --config meeting.toml --listen 127.0.0.1:0 --organizer-token bench-organizer-token-0123 > serve.out 2> serve.err) &
  SERVER=$!
  until grep -q "captions (WebSocket)" "$1/serve.out" 2>/dev/null; do sleep 0.1; done
  date +%s%3N > "$1/t0"
}

worker() { # $1: core, $2: name
  taskset -c "$1" $TOLK worker --nats "$URL" --threads 1 --max-channels "$CHANNELS" --name "$2" --model base > "$WORK/$2.out" 2> "$WORK/$2.err" &
  echo $!
  until grep -q ready "$WORK/$2.out" 2>/dev/null; do sleep 0.2; done
}

# Waits for every channel's source to end, then for the last finals.
wait_end() {
  local secs; secs=$(soxi -D "$WORK/en.wav" | cut -d. -f1)
  sleep $((secs + 15))
}

report() { # $1: folder, $2: label
  local t0; t0=$(cat "$1/t0")
  for i in $(seq 0 $((CHANNELS - 1))); do
    lang=en; [ $((i % 2)) = 1 ] && lang=es
    id=floor; [ "$i" -gt 0 ] && id=booth$i
    (cd "$1" && $TOLK export -f txt "$id" > "$id.txt" && $TOLK export -f json "$id" > "$id.json")
    wer=$($TOLK wer "$WORK/$lang.txt" "$1/$id.txt" --language "$lang" 2>/dev/null | head -1 | sed 's/^WER //' || true)
    python3 - "$1/$id.json" "$t0" "$2" "$id ($lang)" "$wer" <<'EOF'
import json, sys
finals = json.load(open(sys.argv[1])); t0 = int(sys.argv[2])
d = sorted((f["wall_ms"] - (t0 + f["end"] * 1000)) / 1000 for f in finals)
q = lambda p: d[min(len(d) - 1, int(p * len(d)))] if d else float("nan")
print(f"| {sys.argv[3]} | {sys.argv[4]} | {sys.argv[5] or '?'} | {len(finals)} | {q(0.5):.2f} / {q(0.95):.2f} s |")
EOF
  done
}

echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%Y-%m-%d); $CHANNELS channels; base"
echo
echo "| setup | channel | WER | finals | final delay p50 / p95 |"
echo "|---|---|---|---|---|"

if [ "$ONLY" = all ]; then
# 0. Offline, for reference: `tolk transcribe` (beam 5, both threads) of each program.
for lang in en es; do
  $TOLK transcribe "$WORK/$lang.wav" --language "$lang" -f text 2>/dev/null | sed 's/^\[[^]]*\] *//' > "$WORK/offline-$lang.txt"
  echo "| tolk transcribe (offline) | $lang program | $($TOLK wer "$WORK/$lang.txt" "$WORK/offline-$lang.txt" --language "$lang" | sed 's/^WER //') | | |"
done

# 1. One machine, no cluster: the engine as today, both threads.
meeting "$WORK/alone" local
serve "$WORK/alone"; wait_end; kill $SERVER; wait $SERVER 2>/dev/null || true
report "$WORK/alone" "tolk serve alone (2 threads)"

# 2. One worker, pinned to core 1.
W1=$(worker 1 w1)
meeting "$WORK/one" cluster
serve "$WORK/one"; wait_end; kill $SERVER; wait $SERVER 2>/dev/null || true
report "$WORK/one" "room + 1 worker (core 1)"
kill "$W1"; wait "$W1" 2>/dev/null || true
sleep 7 # its leases expire

# 3. Two workers, one per core.
WA=$(worker 0 wa); WB=$(worker 1 wb)
meeting "$WORK/two" cluster
serve "$WORK/two"; wait_end; kill $SERVER; wait $SERVER 2>/dev/null || true
report "$WORK/two" "room + 2 workers (1 core each)"
kill "$WA" "$WB"; wait "$WA" "$WB" 2>/dev/null || true
sleep 7
fi

if [ "$ONLY" != here ]; then
# 4. Two workers; the first killed (-9) at KILL_AT s.
WA=$(worker 0 ka); WB=$(worker 1 kb)
meeting "$WORK/kill" cluster
serve "$WORK/kill"
sleep "$KILL_AT"
held=$(curl -s -H "Authorization: Bearer bench-organizer-token-0123" "http://$(sed -n 's#^listening on http://##p' "$WORK/kill/serve.out" | head -1)/api/organizer" \
  | python3 -c 'import json,sys; print(" ".join(c["id"] for c in json.load(sys.stdin)["channels"] if c.get("worker") == "ka"))')
kill_ms=$(date +%s%3N); kill -9 "$WA"
wait_end; kill $SERVER; wait $SERVER 2>/dev/null || true
report "$WORK/kill" "room + 2 workers, one killed at ${KILL_AT} s"
kill "$WB" 2>/dev/null || true
echo
for id in $held; do
  (cd "$WORK/kill" && $TOLK export -f json "$id") | python3 -c "
import json, sys
kill = $kill_ms; f = json.load(sys.stdin)
before = [x['wall_ms'] for x in f if x['wall_ms'] <= kill]
after = [x['wall_ms'] for x in f if x['wall_ms'] > kill]
gaps = [b - a for a, b in zip([x['wall_ms'] for x in f], [x['wall_ms'] for x in f][1:])]
print(f'handover of {sys.argv[1]}: last final {(kill - before[-1]) / 1000:.1f} s before the kill, next {(after[0] - kill) / 1000:.1f} s after it (longest wait between its finals {max(gaps) / 1000:.1f} s; median {sorted(gaps)[len(gaps) // 2] / 1000:.1f} s)' if before and after else f'{sys.argv[1]}: no final on one side of the kill')
" "$id"
done
fi

if [ "$ONLY" = all ] || [ "$ONLY" = here ]; then
# 5. The room server decodes one channel itself on core 0 (one thread); one worker on core 1.
sleep 7
WH=$(worker 1 wh)
meeting "$WORK/here" here
serve "$WORK/here" 0; wait_end; kill $SERVER; wait $SERVER 2>/dev/null || true
report "$WORK/here" "room decoding 1 (core 0) + 1 worker (core 1)"
kill "$WH"; wait "$WH" 2>/dev/null || true
fi
