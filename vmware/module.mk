# vmware/: the vSphere SOAP client library and the vmwctl operator tool.
vmware_LIB_SRCS := $(filter-out vmware/ctl.c,$(wildcard vmware/*.c))
ifneq ($(vmware_LIB_SRCS),)
SW_LIBS += vmware
endif
ifneq ($(wildcard vmware/ctl.c),)
SW_BINS += vmwctl
vmwctl_BIN_SRCS := vmware/ctl.c
endif
