# ovastore: the storage format library and the `ovastore` CLI (cli.c holds main()).
ovastore_LIB_SRCS := $(filter-out ovastore/cli.c,$(wildcard ovastore/*.c))
ifneq ($(ovastore_LIB_SRCS),)
SW_LIBS += ovastore
endif
ifneq ($(wildcard ovastore/cli.c),)
SW_BINS += ovastore
ovastore_BIN_SRCS := ovastore/cli.c
endif
