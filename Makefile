# tolk: the two commands.
#   make run    set up what is missing, then run tolk's main job
#   make test   the same set-up, then the whole test suite
# Every set-up step is idempotent and does only what is missing.

SHELL := /bin/bash
CARGO ?= cargo
TOLK := target/release/tolk
# Debian packages: the C/C++ build of whisper.cpp, ALSA and Opus for audio I/O, and the
# tools the tests use to make and check audio (sox, opusenc, espeak-ng).
# chromium: the pages' tests run in it (headless, driven by playwright-core from npm).
DEB_PACKAGES := cmake pkg-config g++ libasound2-dev libopus-dev sox libsox-fmt-all opus-tools espeak-ng chromium pulseaudio pulseaudio-utils libasound2-plugins nats-server
MODEL ?= base
TEST_MODELS := base tiny.en

.PHONY: run test setup deps build models testdata webdeps lint bench soak churn fuzz clean-cache

run: setup
	$(TOLK) serve --model $(MODEL)

test: setup lint
	$(TOLK) models fetch $(TEST_MODELS)
	$(CARGO) test --release --lib --bins --tests

setup: deps build models testdata webdeps

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }
	@python3 -m pip --version >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip; }
	@command -v $(CARGO) >/dev/null || { echo "cargo (Rust) is required: see README.md"; exit 1; }

build: deps
	$(CARGO) build --release --locked

models: build
	$(TOLK) models fetch $(MODEL)

testdata: deps
	bash scripts/fetch-testdata.sh

# playwright-core and axe-core for the browser tests (pinned in web/tests/package-lock.json;
# playwright-core drives Debian's chromium and downloads no browser).
webdeps: deps
	@[ -d web/tests/node_modules/playwright-core ] && [ -d web/tests/node_modules/axe-core ] || (cd web/tests && npm ci --no-audit --no-fund)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets --locked -- -D warnings

bench: setup
	$(TOLK) models fetch $(TEST_MODELS) base-q8_0
	bash benches/offline.sh
	bash benches/cluster.sh 3 40
	$(CARGO) bench --bench streaming -- --model base --lang en
	$(CARGO) bench --bench streaming -- --model tiny.en --lang en
	$(CARGO) bench --bench streaming -- --model base --lang es
	$(CARGO) bench --bench streaming -- --model base --lang en --pacing realtime
	$(CARGO) bench --bench terms -- --model base
	$(CARGO) bench --bench glossary
	ulimit -n 20000 && $(CARGO) bench --bench fanout
	ulimit -n 20000 && $(CARGO) bench --bench fanout -- --edge

# The 60-minute soak (about 25 minutes here): the English program looped with 5-minute silences.
soak: setup
	$(CARGO) bench --bench streaming -- --model base --lang en --soak 60

# 1,000 listeners connecting and leaving for 10 minutes: memory, descriptors, tasks.
churn: setup
	ulimit -n 20000 && $(CARGO) bench --bench fanout -- --churn 600 --listeners 1000

# Fuzzing (cargo-fuzz on stable, no sanitizer, coverage-guided): FUZZ_SECS per target. `make
# test` runs the same targets for 3 s each, mutated at random, not guided (tests/fuzz.rs): the
# instrumented build compiles whisper.cpp again (about 9 minutes here). A crash is saved in
# fuzz/artifacts/TARGET/; it becomes a regression input (see fuzz/README.md).
FUZZ_SECS ?= 60
FUZZ_TARGETS := protocol ingest_frames audio_file glossary
fuzz: deps
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  $(CARGO) fuzz run -s none $$t -- -max_total_time=$(FUZZ_SECS) -rss_limit_mb=4096 || exit 1; \
	done

clean-cache:
	rm -rf .cache testdata
