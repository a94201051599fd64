# The worker: a library of everything but the programs' main files, so unit
# tests can link it, plus the snapworker daemon and the snapctl publisher tool.
worker_LIB_SRCS := $(filter-out worker/main.c worker/snapctl.c,$(wildcard worker/*.c worker/commands/*.c))
ifneq ($(worker_LIB_SRCS),)
SW_LIBS += worker
endif
ifneq ($(wildcard worker/main.c),)
SW_BINS += snapworker
snapworker_BIN_SRCS := worker/main.c
endif
ifneq ($(wildcard worker/snapctl.c),)
SW_BINS += snapctl
snapctl_BIN_SRCS := worker/snapctl.c
endif
# Failure injection for the store health probe: a statx that hangs, an openat that fails.
test_worker_storehealth_LDFLAGS := -Wl,--wrap=statx,--wrap=openat
