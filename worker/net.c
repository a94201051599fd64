/* Network lists (see net.h). */
#include "worker/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "common/num.h"

int
wrk_net_parse(const char *s, struct wrk_net *ret, struct sw_err *e)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash;
	struct wrk_net n;
	uint64_t prefix;
	size_t hlen;
	unsigned maxbits, i;

	if (s == NULL)
		return sw_errf(e, -EINVAL, "network: empty");
	memset(&n, 0, sizeof(n));
	slash = strchr(s, '/');
	hlen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	if (hlen == 0 || hlen >= sizeof(host))
		return sw_errf(e, -EINVAL, "network '%.64s': not an address", s);
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, n.addr) == 1) {
		n.family = AF_INET;
		maxbits = 32;
	} else if (inet_pton(AF_INET6, host, n.addr) == 1) {
		n.family = AF_INET6;
		maxbits = 128;
	} else {
		return sw_errf(e, -EINVAL, "network '%.64s': not an IPv4 or IPv6 address", s);
	}
	prefix = maxbits;
	if (slash != NULL && sw_parse_u64(slash + 1, 0, maxbits, &prefix) < 0)
		return sw_errf(e, -EINVAL, "network '%.64s': prefix must be 0..%u", s, maxbits);
	n.prefix = (unsigned)prefix;
	/*
	 * Host bits are cleared rather than refused: the matcher ignores them
	 * anyway, and configurations written before this rule carry them.
	 */
	for (i = n.prefix; i < maxbits; i++)
		n.addr[i / 8] &= (unsigned char)~(0x80u >> (i % 8));
	*ret = n;
	return 0;
}
