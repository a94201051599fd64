SW_LIBS += common
common_LIB_SRCS := $(wildcard common/*.c)
