# The worker: a library of everything but the programs' main files, so unit
# tests can link it, plus the snapworker daemon and the snapctl publisher tool.
SW_LIBS += worker
worker_LIB_SRCS := $(filter-out worker/main.c worker/snapctl.c,$(wildcard worker/*.c worker/commands/*.c))
SW_BINS += snapworker snapctl
snapworker_BIN_SRCS := worker/main.c
snapctl_BIN_SRCS := worker/snapctl.c
