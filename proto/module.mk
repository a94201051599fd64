SW_LIBS += proto
proto_LIB_SRCS := proto/command.c proto/event.c proto/util.c proto/cancel.c
