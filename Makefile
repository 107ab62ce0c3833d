# sluice — the two commands a newcomer needs: `make demo` and `make test`.
GO      ?= go
# The newest release of CHANGELOG.md (and the chart's appVersion; a test
# holds them equal). Tagged trees are stamped with their tag (v stripped),
# others with BASE_VERSION-dev.
BASE_VERSION := 0.1.0
VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null) && echo $${v\#v} || echo $(BASE_VERSION)-dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
BENCHTIME ?= 2s
# Runs of each configuration of the end-to-end benchmark (medians reported).
BENCH_REPEAT ?= 3

.PHONY: all build demo test test-short lint fuzz bench chaos tools clean print-version

# The S3-compatible server the tests start on 127.0.0.1 (versitygw, built
# from the Go module proxy into .tools/; rebuilt only when missing).
VERSITYGW_VERSION ?= v1.8.0
# helm renders and lints the chart in the tests.
HELM_VERSION ?= v3.22.0
TOOLS := $(CURDIR)/.tools
# hyparquet (JavaScript) reads every end-to-end file beside Arrow and DuckDB;
# installed from the npm registry into .tools/node (Node.js and npm needed).
HYPARQUET_VERSION ?= 1.33.0
HYPARQUET_COMPRESSORS_VERSION ?= 1.1.2
# The real Snowplow tracker drives `sluice collect` in the end-to-end tests.
SNOWPLOW_TRACKER_VERSION ?= 4.8.0
NODE_MODULES := $(TOOLS)/node/node_modules
NODE_STAMP := $(TOOLS)/node/.installed-$(HYPARQUET_VERSION)-$(HYPARQUET_COMPRESSORS_VERSION)-$(SNOWPLOW_TRACKER_VERSION)

all: lint test

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/sluice ./cmd/sluice

# Runs the pipeline end to end on embedded defaults: in-process Kafka broker,
# generated events, Parquet files in ./sluice-demo.
demo:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/sluice demo

# Every test, with the race detector: unit tables, fixtures, fuzz seeds,
# end-to-end runs against the in-process broker with sluice as a subprocess.
test: tools
	SLUICE_VERSITYGW=$(TOOLS)/versitygw SLUICE_HELM=$(TOOLS)/helm SLUICE_NODE_MODULES=$(NODE_MODULES) \
		$(GO) test -race -count=1 -timeout 30m ./...

tools: $(TOOLS)/versitygw $(TOOLS)/helm $(TOOLS)/staticcheck $(NODE_STAMP)

# staticcheck runs in make lint; it must report nothing.
STATICCHECK_VERSION ?= v0.8.2
$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# One install of every package (an install of one alone may prune the
# others), redone when a version changes.
$(NODE_STAMP):
	mkdir -p $(TOOLS)/node
	cd $(TOOLS)/node && npm install --no-audit --no-fund --no-save --prefix . \
		hyparquet@$(HYPARQUET_VERSION) hyparquet-compressors@$(HYPARQUET_COMPRESSORS_VERSION) \
		@snowplow/node-tracker@$(SNOWPLOW_TRACKER_VERSION)
	touch $@

$(TOOLS)/helm:
	GOBIN=$(TOOLS) $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

$(TOOLS)/versitygw:
	GOBIN=$(TOOLS) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

test-short:
	$(GO) test -short -count=1 ./...

lint: $(TOOLS)/staticcheck
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(TOOLS)/staticcheck ./...

# Longer fault runs: 30 kills per crash test, every fault test three times.
CHAOS_CYCLES ?= 30
chaos: tools
	SLUICE_VERSITYGW=$(TOOLS)/versitygw SLUICE_CHAOS_CYCLES=$(CHAOS_CYCLES) \
		$(GO) test -count=3 -timeout 60m -run 'Crash|StoreFaults|RebalanceAndZombie|Restart' -v ./cmd/sluice

# Coverage-guided fuzzing of the decoder (FUZZTIME to change the budget).
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./stages/decode

# Benchmarks per stage and end to end; BENCHMARKS.md records one run.
bench:
	@mkdir -p benchmarks/out
	SLUICE_BENCH_REPEAT=$(BENCH_REPEAT) $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count 1 -timeout 90m ./benchmarks/ ./stages/... | tee benchmarks/out/bench.txt

clean:
	rm -rf bin sluice-demo benchmarks/out .tools

# The version make build stamps (for the image's VERSION build argument).
print-version:
	@echo $(VERSION)
