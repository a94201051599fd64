# Test rig: the vCenter simulator (tests/rig/vcsim, Go, built offline from
# Debian's golang-github-vmware-govmomi-dev in GOPATH mode). Included by the
# top-level Makefile; usable alone: make -f rig.mk rig
BUILD ?= build

RIG_GO       ?= go
RIG_ABSBUILD  = $(abspath $(BUILD))
RIG_GOENV     = GO111MODULE=off GOFLAGS= GOPROXY=off GOENV=off GOTOOLCHAIN=local \
                GOPATH=/usr/share/gocode:$(RIG_ABSBUILD)/gopath GOCACHE=$(RIG_ABSBUILD)/gocache
RIG_VCSIM_SRC = $(wildcard tests/rig/vcsim/*.go)

.PHONY: rig
rig: $(BUILD)/bin/snapworker-vcsim

$(BUILD)/bin/snapworker-vcsim: $(RIG_VCSIM_SRC)
	@mkdir -p $(BUILD)/bin
	$(RIG_GOENV) $(RIG_GO) build -trimpath -o $@ ./tests/rig/vcsim
