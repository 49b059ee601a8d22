#!/usr/bin/env python3
"""A loopback stand-in for the Hugging Face hub, for the download tests.

  hub-server.py --repo ORG/NAME=DIR [--repo ...] [--port 0]

Serves each DIR in the hub's URL layout:
  GET|HEAD /{repo}/resolve/{revision}/{file}
Small files are answered directly (ETag, X-Repo-Commit, Content-Length), like
the hub's git files. Weights (*.safetensors, *.bin) get a 302 to
/__lfs/{sha256} with X-Linked-Size and X-Linked-Etag, like the hub's LFS
files. Ranges ("bytes=N-" and "bytes=N-M") give 206 with Content-Range.
Unknown repositories answer 401 (X-Error-Code: RepositoryNotFound), unknown
files and revisions 404, as the hub does. The revision is "main" or the
repository's commit (a fixed fake hash).

Prints "PORT <n> TRAP <m>" on stdout once listening. Port m serves the same
hub under another address (127.0.0.1:m is another host as far as URLs go):
redirects there stand for redirects to a foreign host, and its requests are
logged with "host": "trap". Controlled over HTTP:
  POST /__control  JSON, merged into the fault settings:
    {"truncate": {"FILE": BYTES}}  send the full Content-Length, then only
                                   BYTES of the body and close the connection
    {"stall": {"FILE": BYTES}}     send BYTES of the body, then hang
    {"fault_count": N}             faults apply to the next N body transfers
                                   (default: all of them)
    {"status": {"FILE": CODE}}     answer CODE for that file
    {"no_range": true}             ignore Range headers (answer 200)
  Hostile modes (a broken or malicious hub), per FILE, on every transfer:
    {"headers": {"FILE": {"NAME": "VALUE"}}}
                                   answers about FILE (HEAD, GET, its LFS
                                   redirect and /__lfs) carry these header
                                   values instead of the right ones (null:
                                   left out): bad X-Repo-Commit, ETag,
                                   X-Linked-Size, Content-Length ...
    {"redirect": {"FILE": "URL"}}  FILE answers 302 to URL (file://, another
                                   host, itself ...)
    {"oversize": {"FILE": BYTES}}  the body has no Content-Length and BYTES
                                   more than the file, then the connection
                                   closes
    {"undersize": {"FILE": BYTES}} the same, BYTES fewer than the file
    {"drip": {"FILE": [BYTES, SECONDS]}}
                                   BYTES of the body at once, then one byte
                                   every SECONDS
    {"drip_headers": {"FILE": SECONDS}}
                                   the status line, then the headers one byte
                                   every SECONDS
    {"garbage": {"FILE": "TEXT"}}  TEXT instead of an HTTP answer, then the
                                   connection closes
  GET  /__log     JSON list of requests: {"method", "path", "range", "auth",
                  "host"} (auth: the Authorization header or null; host: "hub"
                  or "trap")
  POST /__reset   clear the log and every fault
"""

import argparse
import hashlib
import http.server
import json
import os
import socketserver
import sys
import threading
import time
import urllib.parse

CHUNK = 64 * 1024
LFS_SUFFIXES = (".safetensors", ".bin")


class State:
    def __init__(self, repos):
        self.lock = threading.Lock()
        self.repos = repos  # repo id -> (dir, commit)
        self.sha = {}       # sha256 -> path, for /__lfs
        self.sha_of = {}    # path -> sha256
        for repo, (root, _) in repos.items():
            for name in os.listdir(root):
                path = os.path.join(root, name)
                if name.endswith(LFS_SUFFIXES) and os.path.isfile(path):
                    self.sha_of[path] = self.sha256(path)
                    self.sha[self.sha_of[path]] = path
        self.reset()

    def reset(self):
        with self.lock:
            self.log = []
            self.faults = {"truncate": {}, "stall": {}, "status": {},
                           "fault_count": -1, "no_range": False,
                           "headers": {}, "redirect": {}, "oversize": {},
                           "undersize": {}, "drip": {}, "drip_headers": {},
                           "garbage": {}}

    @staticmethod
    def sha256(path):
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    def take_fault(self, name):
        """The (kind, bytes) fault for this transfer of @name, or None."""
        with self.lock:
            for kind in ("truncate", "stall"):
                if name in self.faults[kind] and self.faults["fault_count"] != 0:
                    if self.faults["fault_count"] > 0:
                        self.faults["fault_count"] -= 1
                    return kind, int(self.faults[kind][name])
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hub-server/1"

    def log_message(self, fmt, *args):
        pass

    @property
    def state(self):
        return self.server.state

    def record(self):
        with self.state.lock:
            self.state.log.append({"method": self.command, "path": self.path,
                                   "range": self.headers.get("Range"),
                                   "auth": self.headers.get("Authorization"),
                                   "host": self.server.name})

    def hostile(self, kind, name):
        with self.state.lock:
            return self.state.faults[kind].get(name) if name else None

    def send_headers(self, code, headers, name):
        """Status line and @headers (Content-Length among them unless None),
        with the hostile header values set for @name. True when the body
        length differs from what Content-Length says (close afterwards)."""
        headers = dict(headers)
        override = self.hostile("headers", name) or {}
        for k, v in override.items():
            headers[k] = v
        headers = {k: v for k, v in headers.items() if v is not None}
        drip = self.hostile("drip_headers", name)
        if drip is None:
            self.send_response(code)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
        else:
            self.log_request(code)
            head = f"HTTP/1.1 {code} Hostile\r\n" + "".join(
                f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
            self.wfile.write(head[:12].encode("latin-1"))
            self.wfile.flush()
            for ch in head[12:].encode("latin-1"):
                time.sleep(float(drip))
                try:
                    self.wfile.write(bytes([ch]))
                    self.wfile.flush()
                except OSError:
                    self.close_connection = True
                    return True
        return "Content-Length" in override

    def reply(self, code, body=b"", headers=None, error_code=None, name=None):
        headers = dict(headers or {})
        if error_code:
            headers["X-Error-Code"] = error_code
        headers["Content-Length"] = str(len(body))
        if self.send_headers(code, headers, name):
            self.close_connection = True
        if self.command != "HEAD":
            self.wfile.write(body)

    # ---- control ----

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/__reset":
            self.state.reset()
        elif self.path == "/__control":
            update = json.loads(body or b"{}")
            with self.state.lock:
                for k, v in update.items():
                    if isinstance(v, dict):
                        self.state.faults[k].update(v)
                    else:
                        self.state.faults[k] = v
        else:
            return self.reply(404)
        self.reply(200, b"{}")

    # ---- the hub ----

    def do_HEAD(self):
        self.serve()

    def do_GET(self):
        if self.path == "/__log":
            with self.state.lock:
                body = json.dumps(self.state.log).encode()
            return self.reply(200, body, {"Content-Type": "application/json"})
        self.serve()

    def serve(self):
        self.record()
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if path.startswith("/__lfs/"):
            sha = path[len("/__lfs/"):]
            if sha not in self.state.sha:
                return self.reply(404)
            return self.send_file(self.state.sha[sha], os.path.basename(self.state.sha[sha]),
                                  {"ETag": f'"{sha}"'})
        if path == "/__hostile/secret":
            # What a hostile redirect would like to see copied into the cache
            return self.reply(200, b"not model weights")
        parts = path.strip("/").split("/")
        if "resolve" not in parts or parts.index("resolve") not in (1, 2):
            return self.reply(404, b"not found", error_code="EntryNotFound")
        i = parts.index("resolve")
        repo, rest = "/".join(parts[:i]), parts[i + 1:]
        if repo not in self.state.repos:
            return self.reply(401, b"Repository not found", error_code="RepositoryNotFound")
        root, commit = self.state.repos[repo]
        if len(rest) < 2:
            return self.reply(404, b"not found", error_code="EntryNotFound")
        revision, name = rest[0], "/".join(rest[1:])
        garbage = self.hostile("garbage", name)
        if garbage is not None:
            self.wfile.write(garbage.encode("latin-1"))
            self.close_connection = True
            return
        if revision not in ("main", commit):
            return self.reply(404, b"Revision not found", error_code="RevisionNotFound")
        file_path = os.path.join(root, name)
        status = self.state.faults["status"].get(name)
        if status:
            return self.reply(int(status), b"fault")
        if ".." in rest or not os.path.isfile(file_path):
            return self.reply(404, b"Entry not found", error_code="EntryNotFound",
                              headers={"X-Repo-Commit": commit})
        location = self.hostile("redirect", name)
        if location:
            return self.reply(302, headers={"Location": location, "X-Repo-Commit": commit},
                              name=name)
        size = os.path.getsize(file_path)
        if name.endswith(LFS_SUFFIXES):
            sha = self.state.sha_of.get(file_path) or State.sha256(file_path)
            return self.reply(302, headers={
                "Location": f"/__lfs/{sha}", "X-Repo-Commit": commit,
                "X-Linked-Size": str(size), "X-Linked-Etag": f'"{sha}"'}, name=name)
        with open(file_path, "rb") as f:
            git_sha = hashlib.sha1(b"blob %d\0" % size + f.read()).hexdigest()
        self.send_file(file_path, name, {"ETag": f'"{git_sha}"', "X-Repo-Commit": commit})

    def send_file(self, file_path, name, headers):
        size = os.path.getsize(file_path)
        start, end = 0, size - 1
        rng = self.headers.get("Range")
        partial = False
        if rng and not self.state.faults["no_range"] and rng.startswith("bytes="):
            a, _, b = rng[len("bytes="):].partition("-")
            try:
                start = int(a)
                end = int(b) if b else size - 1
            except ValueError:
                return self.reply(416, headers={"Content-Range": f"bytes */{size}"})
            if start >= size or end < start:
                return self.reply(416, headers={"Content-Range": f"bytes */{size}"})
            end = min(end, size - 1)
            partial = True
        headers = dict(headers)
        headers["Accept-Ranges"] = "bytes"
        if partial:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = end - start + 1
        oversize = self.hostile("oversize", name) if self.command == "GET" else None
        undersize = self.hostile("undersize", name) if self.command == "GET" else None
        # Hostile bodies without Content-Length: the end is where the
        # connection closes.
        close_delimited = oversize is not None or undersize is not None
        headers["Content-Length"] = None if close_delimited else str(length)
        if self.send_headers(206 if partial else 200, headers, name):
            close_delimited = True
        if self.command == "HEAD":
            return
        if close_delimited:
            self.close_connection = True
        fault = self.state.take_fault(name)
        limit = length if fault is None else min(fault[1], length)
        if undersize is not None:
            limit = max(limit - int(undersize), 0)
        drip = self.hostile("drip", name)
        if drip is not None:
            limit = min(limit, int(drip[0]))
        with open(file_path, "rb") as f:
            f.seek(start)
            sent = 0
            while sent < limit:
                block = f.read(min(CHUNK, limit - sent))
                if not block:
                    break
                try:
                    self.wfile.write(block)
                except OSError:
                    return
                sent += len(block)
            try:
                if oversize is not None:
                    self.wfile.write(b"\0" * int(oversize))
                self.wfile.flush()
                if drip is not None:
                    # The rest of the file one byte at a time: slow enough
                    # that no read times out, too slow to ever finish.
                    while sent < length:
                        time.sleep(float(drip[1]))
                        self.wfile.write(f.read(1))
                        self.wfile.flush()
                        sent += 1
            except OSError:
                self.close_connection = True
                return
        if fault and fault[0] == "stall":
            # Hold the connection open until the client goes away (or 60 s).
            self.connection.settimeout(0.2)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if not self.connection.recv(1):
                        break
                except TimeoutError:
                    continue
                except OSError:
                    break
        if fault:
            self.close_connection = True


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repo", action="append", required=True, metavar="ORG/NAME=DIR")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--commit", default="0123456789abcdef0123456789abcdef01234567")
    args = p.parse_args()
    repos = {}
    for spec in args.repo:
        repo, _, root = spec.partition("=")
        if not os.path.isdir(root):
            sys.exit(f"hub-server: {root}: not a directory")
        repos[repo] = (root, args.commit)
    server = Server(("127.0.0.1", args.port), Handler)
    server.state = State(repos)
    server.name = "hub"
    trap = Server(("127.0.0.1", 0), Handler)
    trap.state = server.state
    trap.name = "trap"
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    print(f"PORT {server.server_address[1]} TRAP {trap.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
