# shellcheck shell=bash
# Shared by tests/integration/test_worker_*.sh (sourced; not executable, so
# the runner does not run it): checks and counters, workers started and
# recorded in pids[] (the caller stops them by PID), command builders and
# broker queries through snapctl.  The caller sets SW, CTL, conf (the
# snapctl/worker config) and optionally PW_FILE.
pass=0
fail=0
pids=()

ok() { echo "ok   - $*"; pass=$((pass + 1)); }
nok() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else nok "$what"; fi; }

# start_worker CONF LOG NAME: starts a worker, records its PID in $wpid.
start_worker() {
	SNAPWORKER_WORKER_NAME=$3 "$SW" run -c "$1" 2>"$2" &
	wpid=$!
	pids+=("$wpid")
}

uuid() { cat /proc/sys/kernel/random/uuid; }

# shellcheck source=tests/integration/wait_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/wait_lib.sh"

# A DeleteSnapshot of an absent object: succeeds at once, touches nothing.
delete_cmd() {
	printf '{"version":1,"id":"%s","type":"DeleteSnapshot","store":{"url":"nfs://10.0.0.5/export/secondary"},"args":{"path":"snapshots/1/2/%s/%s"}}' "$1" "$1" "$1"
}

# queue_line QUEUE: "name ready unacked consumers" from snapctl status.
queue_line() { "$CTL" -c "$conf" ${PW_FILE:+--password-file "$PW_FILE"} status 2>/dev/null | grep "^$1 "; }
consumers() { queue_line "$1" | awk '{print $3}'; }
ready() { queue_line "$1" | awk '{print $2}'; }

wait_consumers() { # queue n
	local i
	for i in $(seq 150); do [ "$(consumers "$1")" = "$2" ] && return 0; sleep 0.1; done
	return 1
}

wait_grep() { # seconds pattern file
	local i
	for i in $(seq $(($1 * 10))); do grep -q "$2" "$3" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}

# start_http DIR: a loopback HTTP server for RegisterTemplate sources.  /NAME
# serves DIR/NAME; /slow/N/NAME serves it after N seconds; /slow/N answers
# 404 after N seconds (a command that runs N seconds, then fails NOT_FOUND).
# Sets HTTP_PORT and http_pid (the caller stops it).
start_http() {
	local i
	cat >"$tmp/srv.py" <<'PY'
import http.server, os, socketserver, sys, time
root = sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        parts = self.path.strip('/').split('/')
        if parts[0] == 'slow' and len(parts) > 1:
            try:
                time.sleep(float(parts[1]))
            except ValueError:
                pass
            parts = parts[2:]
        path = os.path.join(root, os.path.basename(parts[-1])) if parts and parts[-1] else ''
        if not path or not os.path.isfile(path):
            self.send_response(404); self.send_header('Content-Length', '0'); self.end_headers()
            return
        self.send_response(200)
        self.send_header('Content-Length', str(os.path.getsize(path)))
        self.end_headers()
        with open(path, 'rb') as f:
            self.wfile.write(f.read())
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
s = S(('127.0.0.1', 0), H)
open(sys.argv[1], 'w').write(str(s.server_address[1]))
s.serve_forever()
PY
	python3 "$tmp/srv.py" "$tmp/http.port" "$1" &
	http_pid=$!
	for i in $(seq 50); do [ -s "$tmp/http.port" ] && break; sleep 0.1; done
	HTTP_PORT=$(cat "$tmp/http.port")
}
