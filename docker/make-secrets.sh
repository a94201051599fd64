#!/usr/bin/env bash
# Makes the compose rig's secrets in docker/secrets/: a random broker password
# (amqp.secret, for the workers), the broker's definitions.json holding only
# its salted hash, and a random simulator password (vc.secret, for the workers
# and the simulator).  Files are mode 0600 owned by uid 10001 (the image's
# snapworker user; snapworker refuses secrets readable by others); the
# definitions and vc.secret are also readable by their service's user.
# Run once, as root, before `docker compose up`.
#   docker/make-secrets.sh [DIR]     DIR: default docker/secrets (then give
#                                    RIG_SECRETS=DIR to docker compose)
set -eu
dir=${1:-$(cd "$(dirname "$0")" && pwd)/secrets}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
umask 077
[ -s "$dir/amqp.secret" ] || openssl rand -hex 24 >"$dir/amqp.secret"
[ -s "$dir/vc.secret" ] || openssl rand -hex 24 >"$dir/vc.secret"
pass=$(head -n1 "$dir/amqp.secret")
# rabbit_password_hashing_sha256: base64(salt || sha256(salt || password)), as tests/rig/rabbitmq.sh.
hex_to_bin() { printf '%b' "$(sed 's/../\\x&/g')"; }
hash_password() {
	local salt digest
	salt=${SALT:-$(openssl rand -hex 4)}
	digest=$({ printf '%s' "$salt" | hex_to_bin; printf '%s' "$1"; } | openssl dgst -sha256 -r | cut -c1-64)
	printf '%s%s' "$salt" "$digest" | hex_to_bin | base64 -w0
}
hash=$(hash_password "$pass")
cat >"$dir/definitions.json" <<JSON
{
  "vhosts": [{"name": "/"}],
  "users": [{"name": "snapworker", "password_hash": "$hash",
             "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]}],
  "permissions": [{"user": "snapworker", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}]
}
JSON
# Bind-mounted secrets keep the host's owner and mode (no swarm): give each to its reader.
chown 10001:10001 "$dir/amqp.secret" "$dir/vc.secret"
chmod 0600 "$dir/amqp.secret" "$dir/vc.secret"
# The broker's image (docker/Dockerfile.rabbitmq) runs as uid 999; the simulator (uid 10002) reads vc.secret
# through its own copy.
cp "$dir/vc.secret" "$dir/vcsim.secret"
chown 10002 "$dir/vcsim.secret"
chown 999:999 "$dir/definitions.json"
chmod 0600 "$dir/vcsim.secret" "$dir/definitions.json"
echo "secrets in $dir"
