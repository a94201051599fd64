/*
 * Network lists: the [download] allow networks of the configuration, which
 * RegisterTemplate's fetcher checks every connection against.  One parser
 * for both, so that what the configuration accepts is exactly what the
 * fetcher matches.
 */
#ifndef WRK_NET_H
#define WRK_NET_H

#include "common/err.h"

/* An IPv4 or IPv6 network: address and prefix length. */
struct wrk_net {
	int family;                 /* AF_INET or AF_INET6 */
	unsigned char addr[16];     /* host bits (past prefix) always zero */
	unsigned prefix;
};

/*
 * Parses "10.0.0.0/8", "fd00::/8" or a bare address (a full-length prefix:
 * one host).  The prefix is decimal, 0..32 or 0..128; nothing else may
 * follow it, and no space may surround the '/'.  Host bits are accepted and
 * cleared, as ip(8) reads "10.1.2.3/8": the network is 10.0.0.0/8.  Errors:
 * -EINVAL with a message quoting (at most 64 bytes of) s; *ret is untouched.
 */
int wrk_net_parse(const char *s, struct wrk_net *ret, struct sw_err *e);

#endif
