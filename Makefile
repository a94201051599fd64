# snapworker build.  Every module has a fragment (<dir>/module.mk) that
# declares its library, programs and tests with the macros below; this file
# holds only the generic rules.  See README.md for the targets.

BUILD      ?= build
CC         ?= cc
PKG_CONFIG ?= pkg-config
# Install locations (`make install`; debian/rules sets them for Debian).
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/snapworker
SCHEMADIR  ?= $(PREFIX)/share/snapworker/schema
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR    ?= $(PREFIX)/lib/sysusers.d

# Every third-party library comes through pkg-config.
SW_PKGS := librabbitmq json-c libcurl libxml-2.0 openssl libarchive libsystemd \
           libmicrohttpd uuid
TEST_PKGS := cmocka

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
        -Wno-unused-parameter -Wno-format-truncation
ifeq ($(CI),true)
WARN += -Werror
endif
ifneq ($(WERROR),)
WARN += -Werror
endif

OPT      ?= -O2 -g
CPPFLAGS += -I. -D_GNU_SOURCE
CFLAGS   += -std=c11 $(OPT) $(WARN) -fno-strict-aliasing -fstack-protector-strong \
            -D_FORTIFY_SOURCE=2 -MMD -MP
LDFLAGS  +=

# SANITIZER=address,undefined (what `make asan` uses) or any -fsanitize= list.
ifneq ($(SANITIZER),)
CFLAGS  += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
CFLAGS  := $(filter-out -D_FORTIFY_SOURCE=2,$(CFLAGS))
LDFLAGS += -fsanitize=$(SANITIZER)
OPT      = -O1 -g
endif

PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(SW_PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(SW_PKGS) 2>/dev/null) -lpthread -lm
TEST_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS   := $(shell $(PKG_CONFIG) --libs $(TEST_PKGS) 2>/dev/null)
CPPFLAGS += $(PKG_CFLAGS)

# Libraries in link order (a library may use those after it).
SW_LIB_ORDER := worker proto vmware ovastore common
# Module fragments declare what they build:
#   SW_LIBS += NAME ; NAME_LIB_SRCS := ...   ->  $(BUILD)/lib/libNAME.a
#   SW_BINS += NAME ; NAME_BIN_SRCS := ...   ->  $(BUILD)/bin/NAME (linked with every library)
SW_LIBS :=
SW_BINS :=
-include common/module.mk ovastore/module.mk proto/module.mk vmware/module.mk worker/module.mk
ifneq ($(wildcard rig.mk),)
include rig.mk
else
rig:
	@echo "rig: tests/rig not present"
endif

ALL_LIBS := $(foreach l,$(SW_LIB_ORDER),$(if $(filter $(l),$(SW_LIBS)),$(BUILD)/lib/lib$(l).a))
ALL_BINS := $(foreach b,$(SW_BINS),$(BUILD)/bin/$(b))
LINK_LIBS := $(ALL_LIBS)

define sw_lib_tpl
$$(BUILD)/lib/lib$(1).a: $$(patsubst %.c,$$(BUILD)/obj/%.o,$$($(1)_LIB_SRCS))
	@mkdir -p $$(@D)
	@rm -f $$@
	$$(AR) rcsP $$@ $$^
endef
$(foreach l,$(SW_LIBS),$(eval $(call sw_lib_tpl,$(l))))

define sw_bin_tpl
$$(BUILD)/bin/$(1): $$(patsubst %.c,$$(BUILD)/obj/%.o,$$($(1)_BIN_SRCS)) $$(ALL_LIBS)
	@mkdir -p $$(@D)
	$$(CC) $$(CFLAGS) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $$(LINK_LIBS) $$(PKG_LIBS)
endef
$(foreach b,$(SW_BINS),$(eval $(call sw_bin_tpl,$(b))))

# Unit tests: every tests/unit/test_*.c is one cmocka program, linked with
# every library; test_foo_LDFLAGS may add e.g. -Wl,--wrap=write.
UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
UNIT_HELPERS := $(filter-out $(UNIT_SRCS),$(wildcard tests/unit/*.c))
UNIT_HELPER_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(UNIT_HELPERS))

$(BUILD)/obj/tests/%.o: CPPFLAGS += $(TEST_CFLAGS) -DSW_SRCDIR='"$(CURDIR)"'

$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(UNIT_HELPER_OBJS) $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) $($*_LDFLAGS) -o $@ $< $(UNIT_HELPER_OBJS) $(LINK_LIBS) \
	    $(PKG_LIBS) $(TEST_LIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

.PHONY: all programs deps build test test-unit test-integration test-open asan asan-hostile valgrind fuzz bench demo \
        clean install check-deps
.DEFAULT_GOAL := all

all: $(ALL_LIBS) $(ALL_BINS) $(UNIT_TESTS)

# The programs alone (no unit tests, so no cmocka): what install and packages need.
programs: $(ALL_LIBS) $(ALL_BINS)

# The one idempotent dependency step (quick when everything is present).
deps:
	@./scripts/deps.sh

test: deps
	$(MAKE) all rig
	./tests/run.sh --build $(BUILD) all

test-unit: all
	./tests/run.sh --build $(BUILD) unit

test-integration: all rig
	./tests/run.sh --build $(BUILD) integration

# The compose rig run for real on a Docker engine the test starts (root; the
# first run on a machine debootstraps a base and builds the images: minutes).
test-docker: deps
	$(MAKE) all rig
	./tests/run.sh --build $(BUILD) --filter test_ops_compose integration

# Suites that show a known open defect (tests/integration/open/); not in `make test`.
test-open: all rig
	@rc=0; for t in $(wildcard tests/integration/open/*.sh); do \
	    echo "=== $$t"; SW_BUILD=$(CURDIR)/$(BUILD) bash "$$t" || rc=1; \
	done; [ -n "$(wildcard tests/integration/open/*.sh)" ] || echo "test-open: no open suite"; \
	exit $$rc

# Tests under AddressSanitizer + UndefinedBehaviorSanitizer, in their own tree.
asan:
	$(MAKE) BUILD=build/asan SANITIZER=address,undefined all
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    ./tests/run.sh --build build/asan unit

# The hostile-input suites through a running worker, the broker and the simulator
# (tests/integration/test_hostile_*.sh) with every program built under ASan+UBSan
# (build/asan); the unit suites (tests/unit/test_hostile_*.c) run in `make asan`.
asan-hostile:
	$(MAKE) BUILD=build/asan SANITIZER=address,undefined all
	$(MAKE) rig
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    VCSIM_BIN=$(CURDIR)/build/bin/snapworker-vcsim \
	    ./tests/run.sh --build build/asan --filter hostile integration

valgrind: all
	./tests/run.sh --build $(BUILD) --valgrind unit

# Short libFuzzer runs (clang) of every tests/fuzz/fuzz_*.c over its corpus.
FUZZ_SECONDS ?= 20
fuzz:
	./tests/fuzz/run.sh $(FUZZ_SECONDS)

bench: all rig
	./bench/run.sh --build $(BUILD)

demo: deps
	$(MAKE) all rig
	./scripts/demo.sh --build $(BUILD)

# Programs, man pages, systemd units (ExecStart pointed at $(BINDIR)), the
# sysusers entry, the sample configuration (never over an operator's /etc) and
# the protocol's JSON Schemas (data that validators load, so not under the doc
# directory, which systems may leave out), each under $(DESTDIR) at the
# directory its variable names (see the top).
install: programs
	install -d $(DESTDIR)$(BINDIR)
	for b in $(ALL_BINS); do install -m 0755 $$b $(DESTDIR)$(BINDIR)/ || exit 1; done
	for s in 1 5 8; do \
	    install -d $(DESTDIR)$(MANDIR)/man$$s; \
	    for m in man/*.$$s; do \
	        [ ! -f "$$m" ] || install -m 0644 "$$m" $(DESTDIR)$(MANDIR)/man$$s/ || exit 1; \
	    done; \
	done
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(DOCDIR)
	for u in systemd/*.service; do \
	    sed 's#^ExecStart=/usr/local/bin/#ExecStart=$(BINDIR)/#' "$$u" \
	        >$(DESTDIR)$(SYSTEMDUNITDIR)/$$(basename "$$u") && \
	    chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$(basename "$$u") || exit 1; \
	done
	install -m 0644 systemd/snapworker.sysusers $(DESTDIR)$(SYSUSERSDIR)/snapworker.conf
	install -m 0644 systemd/snapworker.conf $(DESTDIR)$(DOCDIR)/snapworker.conf.sample
	install -d $(DESTDIR)$(SCHEMADIR)
	install -m 0644 docs/schema/*.schema.json docs/schema/README.md $(DESTDIR)$(SCHEMADIR)/

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
