/*
 * libFuzzer target for the network-list parser (wrk_net_parse, the
 * [download] allow networks).  Besides not crashing, a parsed network must
 * have a prefix within its family, no host bits, print and parse back to
 * itself, and contain its own address by the fetcher's connect-time check,
 * so the parser and the matcher agree.
 */
/* FUZZ_MODULES: worker worker/commands proto vmware ovastore common */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "worker/commands/fetch.h"
#include "worker/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const struct wrk_net *n)
{
	unsigned maxbits = n->family == AF_INET ? 32 : 128, i;
	char text[INET6_ADDRSTRLEN + 8], addr[INET6_ADDRSTRLEN];
	struct sockaddr_storage ss;
	struct wrk_net again;
	socklen_t len;

	if (n->family != AF_INET && n->family != AF_INET6)
		abort();
	if (n->prefix > maxbits)
		abort();
	for (i = n->prefix; i < maxbits; i++)
		if (n->addr[i / 8] & (0x80u >> (i % 8)))
			abort();
	for (i = maxbits / 8; i < sizeof(n->addr); i++)
		if (n->addr[i] != 0)
			abort();
	if (inet_ntop(n->family, n->addr, addr, sizeof(addr)) == NULL)
		abort();
	(void)snprintf(text, sizeof(text), "%s/%u", addr, n->prefix);
	if (wrk_net_parse(text, &again, NULL) != 0 || memcmp(&again, n, sizeof(again)) != 0)
		abort();
	memset(&ss, 0, sizeof(ss));
	if (n->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, n->addr, 4);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, n->addr, 16);
		len = sizeof(*in6);
	}
	if (!wrk_fetch_addr_allowed((struct sockaddr *)&ss, len, n, 1, NULL))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = strndup((const char *)data, size);
	struct wrk_net n, before;
	struct sw_err e;

	if (s == NULL)
		return 0;
	memset(&n, 0xa5, sizeof(n));
	before = n;
	sw_err_clear(&e);
	if (wrk_net_parse(s, &n, &e) == 0)
		check(&n);
	else if (memcmp(&n, &before, sizeof(n)) != 0 || e.msg[0] == '\0')
		abort();   /* ret_ untouched on failure, and a reason given */
	free(s);
	return 0;
}
