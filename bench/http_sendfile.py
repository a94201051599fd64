#!/usr/bin/env python3
"""A static file server for the download benchmarks (bench/bench_register.sh).

usage: http_sendfile.py DIR PORT

Serves the files of DIR on 127.0.0.1:PORT (GET and HEAD, Content-Length,
no ranges, no listings) and sends each body with sendfile(2), so the server
costs the machine a kernel copy and not a Python read/write loop per block:
on a 2-CPU machine, python3 -m http.server spent about 0.4 s of CPU per GiB
served, taken from the very CPUs the measured download needs, where a real
template server is another machine.  Both sides of a comparison use it.
"""
import http.server
import os
import socketserver
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _open(self):
        name = os.path.basename(self.path.split("?", 1)[0])
        path = os.path.join(self.server.root, name)
        if not name or not os.path.isfile(path):
            self.send_error(404)
            return None
        f = open(path, "rb")
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(os.fstat(f.fileno()).st_size))
        self.end_headers()
        return f

    def do_HEAD(self):
        f = self._open()
        if f is not None:
            f.close()

    def do_GET(self):
        f = self._open()
        if f is None:
            return
        with f:
            self.wfile.flush()
            self.connection.sendfile(f)

    def log_message(self, fmt, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: http_sendfile.py DIR PORT")
    srv = Server(("127.0.0.1", int(sys.argv[2])), Handler)
    srv.root = sys.argv[1]
    srv.serve_forever()


if __name__ == "__main__":
    main()
