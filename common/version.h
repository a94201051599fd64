/*
 * The release of every snapworker program (snapworker, snapctl, ovastore,
 * vmwctl), printed by their --version, and the wire protocol version it
 * speaks (docs/protocol.md).
 */
#ifndef COMMON_VERSION_H
#define COMMON_VERSION_H

#define SW_VERSION          "1.0"
#define SW_PROTOCOL_VERSION 1

#endif
