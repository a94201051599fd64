# ovastore: the storage format library and the `ovastore` CLI (cli.c holds main()).
ovastore_LIB_SRCS := $(filter-out ovastore/cli.c,$(wildcard ovastore/*.c))
ifneq ($(ovastore_LIB_SRCS),)
SW_LIBS += ovastore
endif
ifneq ($(wildcard ovastore/cli.c),)
SW_BINS += ovastore
ovastore_BIN_SRCS := ovastore/cli.c
endif
# Failure injection: ENOSPC from write(), EIO from fsync() at chosen calls.
test_ovastore_fail_LDFLAGS := -Wl,--wrap=write,--wrap=fsync,--wrap=sync_file_range
