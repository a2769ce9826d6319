# amesh: see README.md. `make demo` and `make test` are the front door.
SHELL := /bin/bash
GO ?= go
BUILD := build
FUZZTIME ?= 3s
BENCHTIME ?= 1s

.PHONY: test-js relay all build wasm envoy-filter test test-go lint crossbuild fuzz fuzz-short bench demo deps clean

all: build

## build: the amesh and amesh-relay binaries in build/.
build:
	@mkdir -p $(BUILD)
	$(GO) build -o $(BUILD)/amesh ./cli/amesh
	$(GO) build -o $(BUILD)/amesh-relay ./relay/cmd/amesh-relay

## wasm: rebuild amesh.wasm (the verification core as a wasip1 reactor), the
## copy embedded in host/wasmhost and build/amesh.wasm. Run it after changing
## wasm/protocol, wasm/abi or wasm/guest: a test checks the embedded copy.
wasm:
	@mkdir -p $(BUILD)
	$(GO) generate ./host/wasmhost
	cp host/wasmhost/amesh.wasm $(BUILD)/amesh.wasm

## envoy-filter: build/amesh-envoy.wasm, the proxy-wasm filter for Envoy >= 1.33 and Istio.
envoy-filter:
	@mkdir -p $(BUILD)
	GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -buildmode=c-shared -o $(BUILD)/amesh-envoy.wasm ./envoy-filter

## relay: run amesh-relay on loopback.
relay:
	$(GO) run ./relay/cmd/amesh-relay --listen 127.0.0.1:8787 --log-format text

deps:
	scripts/deps.sh test

## test: everything, as CI runs it (CI=true turns missing dependencies into failures).
test: deps lint crossbuild test-go test-js fuzz-short

test-go:
	$(GO) test -count=1 -timeout 20m ./...
	# The core again on the P-256 code the wasm builds use.
	$(GO) test -count=1 -tags amesh_nistec ./wasm/protocol/

## test-js: the npm package in Node, Deno, Bun, workerd and headless Chromium.
test-js:
	cd js && npm test

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## crossbuild: the module must build for macOS without cgo and for Windows.
crossbuild:
	CGO_ENABLED=0 GOOS=darwin GOARCH=arm64 $(GO) build ./...
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 $(GO) build ./...
	GOOS=wasip1 GOARCH=wasm $(GO) build ./wasm/... ./envoy-filter/...

fuzz-short:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

fuzz:
	FUZZTIME=60s scripts/fuzz.sh

## bench: benchmarks; ratios and values go to build/bench.json.
bench:
	@mkdir -p $(BUILD)
	@rm -f $(BUILD)/bench.json
	cd js && npm run bench
	$(GO) test -run '^$$' -bench 'BenchmarkRatios$$' -benchtime 1x ./wasm/protocol/ | $(GO) run ./internal/tools/benchjson -o $(BUILD)/bench.json
	$(GO) test -run '^$$' -bench 'BenchmarkSignSummary$$' -benchtime 1x ./keystore/ | $(GO) run ./internal/tools/benchjson -o $(BUILD)/bench.json
	$(GO) test -run '^$$' -bench . -benchtime 1x ./host/wasmhost/ | $(GO) run ./internal/tools/benchjson -o $(BUILD)/bench.json
	$(GO) test -run '^$$' -bench 'BenchmarkEnvoyFilter$$' -benchtime 1x ./envoy-filter/ | $(GO) run ./internal/tools/benchjson -o $(BUILD)/bench.json
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./relay/cmd/amesh-relay/ | $(GO) run ./internal/tools/benchjson -o $(BUILD)/bench.json
	@cat $(BUILD)/bench.json

## demo: the main job end to end on loopback: relay, controller, a server
## enrolled with a bootstrap token, the Go middleware, accepted, replayed and
## revoked requests.
demo: build
	scripts/deps.sh demo
	$(GO) run ./internal/demo -bin $(BUILD)

clean:
	rm -rf $(BUILD)
