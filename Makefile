# Bastion: every command in the README is a target here.
#   make run    start the whole stack locally (dev PKI, keys and schema created for you)
#   make test   run every test of every module, with the race detector
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Every go command runs the toolchain that go.work pins, a Go release with the
# security fixes; the go command fetches it once through the module proxy. The
# toolchain line alone is not enough: a go whose GOTOOLCHAIN is "local", as on
# Bastion's build machines, ignores it. Make 4.3 does not hand exported
# variables to $(shell), so the go commands there name it themselves.
TOOLCHAIN := $(shell sed -n 's/^toolchain //p' $(CURDIR)/go.work)
ifeq ($(TOOLCHAIN),)
$(error go.work has no toolchain line)
endif
export GOTOOLCHAIN := $(TOOLCHAIN)

BIN      := $(CURDIR)/.bin
BUF      := tools/node_modules/.bin/buf
MODULES   = $(shell GOTOOLCHAIN=$(GOTOOLCHAIN) go list -m -f '{{.Path}}')
MODDIRS   = $(shell GOTOOLCHAIN=$(GOTOOLCHAIN) go list -m -f '{{.Dir}}')
PKGS      = $(addsuffix /...,$(MODULES))
PLUGINS  := google.golang.org/protobuf/cmd/protoc-gen-go \
            google.golang.org/grpc/cmd/protoc-gen-go-grpc \
            github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway \
            github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen
OPENAPI  := proto/openapi/bastion.openapi.json
APICLIENT := deploy/e2e/apiclient
TEST_FLAGS ?= -race -count=1 -timeout 20m
FUZZTIME   ?= 20s
FUZZ       ?= .
# The Go vulnerability database: the OSV entries of golang.org/x/vulndb, which
# the module proxy serves. It is pinned here, not in tools/go.mod: no package of
# it is imported, so go mod tidy would drop it there, and naming one of its
# commands as a tool would let every data update move the linters' and code
# generators' dependencies.
VULNDB     := golang.org/x/vulndb@v0.0.0-20261105234957-e22db6528018

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BUF): tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund --silent
	@touch $@

.PHONY: tools
tools: $(BUF) ## install the pinned code-generation tools (buf from npm, protoc plugins from tools/go.mod)
	cd tools && GOWORK=off go build -o $(BIN)/ $(PLUGINS)

.PHONY: third-party
third-party: $(BUF) ## rebuild proto/third_party from the npm registry and the Go module proxy
	bash tools/third_party.sh

.PHONY: gen
gen: tools ## regenerate Go code, the OpenAPI document and its Go proof client from proto/
	cd proto && ../$(BUF) generate
	@# The OpenAPI document: the gateway's routes and rules from the Go code
	@# just generated, the comments from a descriptor set with source info.
	cd proto && ../$(BUF) build --as-file-descriptor-set -o - | (cd ../gateway && go run ./cmd/apidoc -o ../$(OPENAPI))
	$(BIN)/oapi-codegen -config $(APICLIENT)/oapi-codegen.yaml $(OPENAPI)
	gofmt -l proto $(APICLIENT) | (! grep .)

.PHONY: gen-check
gen-check: gen ## fail if generated code differs from what is committed
	@if [ -n "$$(git status --porcelain -- proto $(APICLIENT))" ]; then \
	  git status --porcelain -- proto $(APICLIENT); echo "make gen changed the tree: commit the regenerated code" >&2; exit 1; fi

.PHONY: lint
lint: $(BUF) ## gofmt, go mod tidy per module, buf lint, go vet and staticcheck
	@unformatted="$$(gofmt -l $(MODDIRS) tools)"; if [ -n "$$unformatted" ]; then \
	  echo "gofmt would change:" >&2; echo "$$unformatted" >&2; exit 1; fi
	@# Each module must build and tidy on its own, not only through go.work.
	@for d in $(MODDIRS) $(CURDIR)/tools; do \
	  (cd $$d && GOWORK=off GOFLAGS=-mod=mod go mod tidy -diff >/dev/null) || \
	  { echo "go.mod in $$d is not tidy: run (cd $$d && GOWORK=off go mod tidy)" >&2; exit 1; }; done
	@# A module built on its own (GOWORK=off) reads the toolchain line of its go.mod.
	@stale="$$(grep -L '^toolchain $(TOOLCHAIN)$$' $(addsuffix /go.mod,$(MODDIRS)) tools/go.mod)"; if [ -n "$$stale" ]; then \
	  echo "these go.mod files do not say toolchain $(TOOLCHAIN), as go.work does: run go mod edit -toolchain=$(TOOLCHAIN) in each" >&2; \
	  echo "$$stale" >&2; exit 1; fi
	@# gopkg.in/yaml.v3 is unmaintained; go.yaml.in/yaml/v3 continues it, same API.
	@if grep -rl --include='*.go' '"gopkg.in/yaml.v3"' $(MODDIRS) tools/cmd; then \
	  echo "the files above import gopkg.in/yaml.v3: import go.yaml.in/yaml/v3 instead" >&2; exit 1; fi
	cd proto && ../$(BUF) lint
	go vet $(PKGS)
	cd tools && GOWORK=off go build -o $(BIN)/ honnef.co/go/tools/cmd/staticcheck
	$(BIN)/staticcheck $(PKGS)

.PHONY: vulncheck
vulncheck: ## fail on a known vulnerability that the code can reach (govulncheck, offline database VULNDB)
	cd tools && GOWORK=off go build -o $(BIN)/ golang.org/x/vuln/cmd/govulncheck
	rm -rf $(BIN)/vulndb
	cd tools && GOWORK=off go run ./cmd/vulndb $(VULNDB) $(BIN)/vulndb
	@# govulncheck must start in a module; through go.work it then sees every
	@# module of the workspace, analysed together at the versions they build with.
	$(BIN)/govulncheck -C $(firstword $(MODDIRS)) -db file://$(BIN)/vulndb $(PKGS)

.PHONY: services
services: ## make sure the local PostgreSQL and Redis answer (starting them if they can be started here)
	bash deploy/scripts/ensure-services.sh

.PHONY: alerts-test
alerts-test: ## check the Prometheus alert rules and run their unit tests (promtool, from Debian if missing)
	bash deploy/scripts/ensure-promtool.sh
	promtool check rules deploy/alerts/*.rules.yml
	cd deploy/alerts && promtool test rules *.test.yml

.PHONY: test
test: services $(BUF) ## run every test of every module with -race (real Postgres, real TLS)
	go test $(TEST_FLAGS) $(PKGS)
	cd tools && GOWORK=off go test $(TEST_FLAGS) ./...

# go test -fuzz takes one target of one package at a time, so every
# func FuzzXxx of every module is found by name and run on its own.
.PHONY: fuzz
fuzz: ## run each Go fuzz target for FUZZTIME (default 20s); FUZZ=regexp picks targets
	@grep -rlE --include='*_test.go' '^func Fuzz[A-Z]' $(MODDIRS) | sort | while read -r file; do \
	  dir="$$(dirname "$$file")"; \
	  for name in $$(sed -nE 's/^func (Fuzz[A-Za-z0-9_]+)\(.*/\1/p' "$$file"); do \
	    [[ $$name =~ $(FUZZ) ]] || continue; \
	    echo "== $$name in $${dir#$(CURDIR)/}"; \
	    (cd "$$dir" && go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) .) || exit 1; \
	  done; \
	done

.PHONY: cover
cover: services ## test coverage of platform/, per package and in total
	go test -count=1 -coverpkg=github.com/bastion-bank/bastion/platform/... -coverprofile=coverage.platform.out github.com/bastion-bank/bastion/platform/...
	go tool cover -func=coverage.platform.out | tail -1

# Mutation testing: gremlins (pinned in tools/go.mod) breaks one condition,
# operator or boundary of a package at a time and runs its tests, which must
# fail. DIR:module runs every test of DIR's module against DIR's mutants, for
# domain rules exercised mostly by the rpc and Postgres tests; auth's domain
# is tested against the real PostgreSQL in its own package, so its own tests
# suffice. Survivors and why each is harmless: docs/testing.md.
MUTATE_PKGS    ?= platform/rbac platform/token platform/grpcserver platform/mtls gateway/internal/policy \
                  services/auth/internal/domain services/accounts/internal/domain:module \
                  services/transactions/internal/domain:module
# CI's gate: the access rules and the edge policy in full, minutes on two
# cores; then, of token, grpcserver and mtls, only the files the commit
# under test changed (MUTATE_SINCE, its first parent): all of platform/token
# took 24 minutes on a loaded 2-core machine. The domain packages, an hour
# each against their module's tests, run in `make mutate` only.
MUTATE_CI_PKGS    ?= platform/rbac gateway/internal/policy
MUTATE_CI_CHANGED ?= platform/token platform/grpcserver platform/mtls
MUTATE_CI_SINCE   ?= HEAD^1
MUTATE_CI_ENV      = MUTATE_WORKERS=2 MUTATE_TIMEOUT_COEFFICIENT=5 MUTATE_THRESHOLD=95

.PHONY: mutate
mutate: services ## mutation testing of the security-critical packages, a table per package (MUTATE_PKGS picks them)
	cd tools && GOWORK=off go build -o $(BIN)/ github.com/go-gremlins/gremlins/cmd/gremlins
	bash tools/mutate.sh $(MUTATE_PKGS)

.PHONY: mutate-ci
mutate-ci: ## CI's short mutation run: rbac, policy, and the token/grpcserver/mtls files changed since MUTATE_CI_SINCE; fails below 95 %
	cd tools && GOWORK=off go build -o $(BIN)/ github.com/go-gremlins/gremlins/cmd/gremlins
	$(MUTATE_CI_ENV) MUTATE_OUT=.mutate/ci bash tools/mutate.sh $(MUTATE_CI_PKGS)
	$(MUTATE_CI_ENV) MUTATE_OUT=.mutate/ci-changed MUTATE_SINCE=$(MUTATE_CI_SINCE) bash tools/mutate.sh $(MUTATE_CI_CHANGED)

.PHONY: run
run: ## start the whole stack: auth, accounts, transactions and the HTTPS gateway
	@mkdir -p .dev/bin && go build -o .dev/bin/devrun ./deploy/cmd/devrun
	@# Run the built binary rather than `go run`, which exits 1 on Ctrl-C even
	@# after the runner has stopped every process cleanly.
	@.dev/bin/devrun

.PHONY: up
up: ## start the stack with observability under Docker Compose (needs a Docker engine)
	docker compose up --build

# Workshop labs (labs/README.md, docs/workshop.md): each lab is the bank with
# one control removed, built from a git worktree of its own under .labs/ and
# run on free loopback ports with a database of its own, so `make run` is
# untouched. LAB is a lab's number: make lab-start LAB=01.
LAB ?=
LAB_RUNNER = @mkdir -p .labs/bin && go build -o .labs/bin/lab ./labs/cmd/lab

.PHONY: lab-start lab-exploit lab-check lab-stop lab-reset labs-ci labs-refresh
lab-start: services ## start lab LAB (make lab-start LAB=01): worktree .labs/NN-*, its break applied, a stack of its own
	$(LAB_RUNNER)
	.labs/bin/lab start $(LAB)

lab-exploit: ## run lab LAB's exploit against its stack: it prints EXPLOITED or BLOCKED
	$(LAB_RUNNER)
	.labs/bin/lab exploit $(LAB)

lab-check: services ## rebuild lab LAB from your edited worktree: its exploit must be BLOCKED, the control's tests pass
	$(LAB_RUNNER)
	.labs/bin/lab check $(LAB)

lab-stop: ## stop lab LAB's stack (its worktree and database stay)
	$(LAB_RUNNER)
	.labs/bin/lab stop $(LAB)

lab-reset: ## stop lab LAB, remove its worktree and database: the next lab-start begins afresh
	$(LAB_RUNNER)
	.labs/bin/lab reset $(LAB)

labs-ci: services ## every lab: the break applies to HEAD, EXPLOITED against it, BLOCKED against main (summary table)
	bash deploy/scripts/ensure-promtool.sh
	$(LAB_RUNNER)
	.labs/bin/lab ci

labs-refresh: ## rewrite labs/*/break.patch against HEAD (3-way apply, make gen for .proto changes); LAB=NN for one
	$(LAB_RUNNER)
	.labs/bin/lab refresh $(LAB)

.PHONY: bench
bench: services ## run the Go benchmarks (token verification, login, transfers)
	go test -run '^$$' -bench . -benchmem -count 1 $(PKGS)

# The web console's screens at 1280x800, taken by the browser test that
# walks them (deploy/e2e TestConsoleTour) against a stack of its own.
.PHONY: screenshots
screenshots: services ## regenerate docs/screenshots: every console screen in headless Chromium (installed if missing)
	bash deploy/scripts/ensure-chromium.sh
	@mkdir -p docs/screenshots
	SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots go test -count=1 -timeout 10m -run '^TestConsoleTour$$' ./deploy/e2e/

# bench-e2e builds and starts a stack of its own (free ports, a throw-away
# PostgreSQL cluster), runs pgbench and the full path interleaved, and stops
# everything; BENCH_E2E_FLAGS="-baseline-rev 9853b03" adds a "before" stack,
# -overload the 3× saturation check. docs/performance.md.
BENCH_E2E_FLAGS ?=

.PHONY: bench-e2e
bench-e2e: ## the full path (HTTPS → mTLS gRPC → Postgres) against pgbench, interleaved, on a stack of its own (minutes; docs/performance.md)
	@mkdir -p .dev/bin && go build -o .dev/bin/benche2e ./loadtest/cmd/benche2e
	.dev/bin/benche2e $(BENCH_E2E_FLAGS)

# The fault campaign builds and starts a stack of its own (free ports, a
# throw-away PostgreSQL cluster, a Redis of its own), so it never touches
# `make run` or a shared server. CI runs it with CHAOS_FLAGS=-schedule=short.
CHAOS_FLAGS ?=

.PHONY: chaos
chaos: ## the fault campaign and its money audit, on a stack of its own (a few minutes; docs/reliability.md)
	@mkdir -p .dev/bin && go build -o .dev/bin/chaos ./deploy/cmd/chaos
	.dev/bin/chaos $(CHAOS_FLAGS)
