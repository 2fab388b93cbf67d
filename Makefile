# trailwatch: `make run` runs the demo pipeline over samples/, `make test` runs every test.
SWIFT ?= swift
SYSTEM_PACKAGES := libzstd-dev zlib1g-dev libsqlite3-dev zstd pkg-config
# Only for the test that renders the dashboard in a headless browser.
TEST_PACKAGES := chromium
# The PostgreSQL store's tests start a throw-away cluster with the server binaries (no service).
POSTGRES_PACKAGES := postgresql
BIN := .build/release/trailwatch

.PHONY: all deps build run test bench eval fuzz clean

# Fuzzing: FUZZ_SECONDS per target (make fuzz), FUZZ_TARGETS to pick some (default: all).
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 3
FUZZ_TARGETS ?=

all: build

deps:
	@scripts/ensure-deps.sh $(SYSTEM_PACKAGES)

build: deps
	$(SWIFT) build -c release --product trailwatch

run: build
	@mkdir -p var
	$(BIN) run pipelines/demo.yaml --once
	@scripts/demo-api.sh $(BIN)

test: deps
	@scripts/ensure-deps.sh $(TEST_PACKAGES) || echo "note: $(TEST_PACKAGES) could not be installed; the headless-browser dashboard test will be skipped"
	@scripts/ensure-deps.sh $(POSTGRES_PACKAGES) || echo "note: $(POSTGRES_PACKAGES) could not be installed; the PostgreSQL store tests will be skipped"
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build; status=$$?; scripts/stop-test-clusters.sh; exit $$status
	.build/debug/trailwatch test pipelines/demo.yaml --junit .build/demo-tests.xml
	@echo "fuzz targets, $(FUZZ_SMOKE_SECONDS) s each (built-in harness; coverage-guided: make fuzz):"
	scripts/fuzz.sh builtin $(CURDIR)/.build/debug/trailwatch-fuzz $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

bench: build
	python3 bench/run.py --binary $(BIN)

# Template mining on Loghub 2k (grouping accuracy per system) and insights on a generated week
# with real CloudTrail bursts. Both need ../shared/data and say so when it is absent.
eval: build
	python3 eval/loghub/run_eval.py -- $(BIN) patterns --assign
	python3 eval/insights/run_eval.py --binary $(BIN)
	TRAILWATCH=$(BIN) python3 eval/nab/run_eval.py

# Coverage-guided fuzzing with libFuzzer: an instrumented release build in .build-fuzz, then each
# target for FUZZ_SECONDS. Findings land in var/fuzz/TARGET/. Linked with lld: libFuzzer's archive
# brings its own main, which gold refuses next to SwiftPM's (lld lets trailwatch-fuzz's main win).
fuzz: deps
	$(SWIFT) build -c release --product trailwatch-fuzz --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer -Xswiftc -DLIBFUZZER -Xswiftc -use-ld=lld
	scripts/fuzz.sh libfuzzer $(CURDIR)/.build-fuzz/release/trailwatch-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf .build .build-fuzz var bench/out
