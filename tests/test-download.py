#!/usr/bin/env python3
"""Tests of tools/florence2-download against tests/hub-server.py on loopback.

  test-download.py TOOL HUB_SERVER

The server serves the tiny golden model (F2_GOLDEN_DIR/tiny/model) as
test/tiny and its pytorch_model.bin twin (tiny/model-bin) as test/tiny-bin.
Every check compares the downloaded files with the served ones by sha256.
HostileHubTest drives the server's hostile modes (a broken or malicious hub)
and checks that the tool fails with a one-line message, writes nothing
outside the cache and sends nothing where it should not. Exits 77 (skipped)
when the golden data is absent.
"""

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

TOOL = SERVER = GOLDEN = None
REPO = "test/tiny"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
WEIGHTS = "model.safetensors"
SERVED = ["config.json", "preprocessor_config.json", "tokenizer.json",
          "tokenizer_config.json", "vocab.json", WEIGHTS]
RUN_TIMEOUT = 60


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Hub:
    """The hub-server subprocess and its control endpoints."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, SERVER,
             "--repo", f"{REPO}={os.path.join(GOLDEN, 'tiny', 'model')}",
             "--repo", f"test/tiny-bin={os.path.join(GOLDEN, 'tiny', 'model-bin')}",
             "--commit", COMMIT],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"hub-server did not start: {line!r}")
        words = line.split()
        self.url = f"http://127.0.0.1:{int(words[1])}"
        # the same hub on another port: another host as far as URLs go
        self.trap_url = f"http://127.0.0.1:{int(words[3])}"

    def post(self, path, data=None):
        req = urllib.request.Request(self.url + path, method="POST",
                                     data=json.dumps(data or {}).encode())
        urllib.request.urlopen(req, timeout=10).read()

    def control(self, **faults):
        self.post("/__control", faults)

    def reset(self):
        self.post("/__reset")

    def log(self):
        with urllib.request.urlopen(self.url + "/__log", timeout=10) as resp:
            return json.load(resp)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class HubCase(unittest.TestCase):
    """A hub-server for the class, a fresh HF_HOME for each test."""
    hub = None

    @classmethod
    def setUpClass(cls):
        cls.hub = Hub()

    @classmethod
    def tearDownClass(cls):
        cls.hub.stop()

    def setUp(self):
        self.hub.reset()
        self.tmp = tempfile.TemporaryDirectory(prefix="f2-download-")
        self.home = os.path.join(self.tmp.name, "hf")
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("HF_", "HUGGINGFACE_", "FLORENCE2_", "XDG_CACHE"))}
        self.env["HF_HOME"] = self.home
        # Loopback only: a proxy from the environment must not see these requests
        for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            self.env.pop(k, None)

    def tearDown(self):
        self.tmp.cleanup()

    # ---- helpers ----

    def run_tool(self, *args, env=None, endpoint=True):
        cmd = [sys.executable, TOOL, *args]
        if endpoint:
            cmd += ["--endpoint", self.hub.url]
        return subprocess.run(cmd, env=env or self.env, capture_output=True,
                              text=True, timeout=RUN_TIMEOUT)

    def start_tool(self, *args):
        return subprocess.Popen([sys.executable, TOOL, *args, "--endpoint", self.hub.url],
                                env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def snapshot(self, repo=REPO, home=None):
        return os.path.join(home or self.home, "hub", "models--" + repo.replace("/", "--"),
                            "snapshots", COMMIT)

    def blob(self, name, repo=REPO):
        src = os.path.join(GOLDEN, "tiny", "model-bin" if repo.endswith("-bin") else "model")
        return os.path.join(self.home, "hub", "models--" + repo.replace("/", "--"),
                            "blobs", sha256(os.path.join(src, name)))

    def assert_ok(self, res):
        self.assertEqual(res.returncode, 0, f"stderr:\n{res.stderr}")

    def assert_model(self, res, repo=REPO, home=None):
        """The tool succeeded, printed the snapshot last and every file matches."""
        self.assert_ok(res)
        path = res.stdout.strip().splitlines()[-1]
        self.assertEqual(path, self.snapshot(repo, home))
        src = os.path.join(GOLDEN, "tiny", "model-bin" if repo.endswith("-bin") else "model")
        for name in os.listdir(src):
            self.assertEqual(sha256(os.path.join(path, name)), sha256(os.path.join(src, name)),
                             f"{name} differs from the served file")
        return path

    def wait_for_size(self, path, size, proc, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(path) and os.path.getsize(path) >= size:
                return
            if proc.poll() is not None:
                self.fail(f"the tool exited early: {proc.communicate()[1]}")
            time.sleep(0.02)
        self.fail(f"{path} did not reach {size} bytes")

    def ranges(self):
        return [e["range"] for e in self.hub.log() if e["method"] == "GET" and e["range"]]


class DownloadTest(HubCase):
    def test_full_download(self):
        path = self.assert_model(self.run_tool(REPO))
        with open(os.path.join(os.path.dirname(os.path.dirname(path)), "refs", "main")) as f:
            self.assertEqual(f.read().strip(), COMMIT)
        self.assertTrue(os.path.islink(os.path.join(path, WEIGHTS)))
        self.assertEqual(self.ranges(), [])

    def test_second_run_uses_cache(self):
        first = self.assert_model(self.run_tool(REPO))
        self.hub.reset()
        second = self.assert_model(self.run_tool(REPO))
        self.assertEqual(first, second)
        self.assertEqual(self.hub.log(), [], "a complete cached model needs no request")

    def test_truncated_transfer_resumes_next_run(self):
        cut = 10 << 20
        self.hub.control(truncate={WEIGHTS: cut}, fault_count=1)
        res = self.run_tool(REPO, "--retries", "0")
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn("ended early", res.stderr)
        self.assertEqual(res.stdout, "", "nothing printed when the download failed")
        partial = self.blob(WEIGHTS) + ".incomplete"
        self.assertEqual(os.path.getsize(partial), cut)
        self.assertFalse(os.path.exists(os.path.join(self.snapshot(), WEIGHTS)))
        self.hub.reset()
        self.assert_model(self.run_tool(REPO))
        self.assertEqual(self.ranges(), [f"bytes={cut}-"])
        self.assertFalse(os.path.exists(partial))

    def test_truncated_transfer_retried_in_run(self):
        self.hub.control(truncate={WEIGHTS: 4 << 20}, fault_count=2)
        res = self.run_tool(REPO, "--retries", "3")
        self.assert_model(res)
        self.assertEqual(self.ranges(), [f"bytes={4 << 20}-", f"bytes={8 << 20}-"])
        self.assertIn("retrying", res.stderr)

    def test_killed_transfer_resumes_with_range(self):
        cut = 8 << 20
        self.hub.control(stall={WEIGHTS: cut}, fault_count=1)
        proc = self.start_tool(REPO)
        self.wait_for_size(self.blob(WEIGHTS) + ".incomplete", cut, proc)
        proc.kill()
        proc.communicate()
        self.hub.reset()
        self.assert_model(self.run_tool(REPO))
        self.assertEqual(self.ranges(), [f"bytes={cut}-"])

    def test_interrupt_keeps_partial_file(self):
        cut = 3 << 20
        self.hub.control(stall={WEIGHTS: cut}, fault_count=1)
        proc = self.start_tool(REPO)
        self.wait_for_size(self.blob(WEIGHTS) + ".incomplete", cut, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(proc.returncode, 130, err)
        self.assertIn("run the same command again to resume", err)
        self.assertEqual(out, "")
        self.assertEqual(os.path.getsize(self.blob(WEIGHTS) + ".incomplete"), cut)

    def test_stalled_transfer_times_out_and_resumes(self):
        cut = 2 << 20
        self.hub.control(stall={WEIGHTS: cut}, fault_count=1)
        res = self.run_tool(REPO, "--timeout", "1", "--retries", "1")
        self.assert_model(res)
        self.assertIn("stalled", res.stderr)
        self.assertEqual(self.ranges(), [f"bytes={cut}-"])

    def test_server_without_ranges_restarts(self):
        self.hub.control(truncate={WEIGHTS: 5 << 20}, fault_count=1)
        self.assertEqual(self.run_tool(REPO, "--retries", "0").returncode, 1)
        self.hub.control(no_range=True)
        self.assert_model(self.run_tool(REPO))

    def test_offline_with_cache(self):
        self.assert_model(self.run_tool(REPO))
        self.hub.reset()
        self.assert_model(self.run_tool(REPO, "--offline"))
        env = dict(self.env, HF_HUB_OFFLINE="1")
        self.assert_model(self.run_tool(REPO, env=env, endpoint=False))
        self.assertEqual(self.hub.log(), [])

    def test_offline_without_cache(self):
        for args, env in (((REPO, "--offline"), None),
                          ((REPO,), dict(self.env, HF_HUB_OFFLINE="1"))):
            res = self.run_tool(*args, env=env)
            self.assertEqual(res.returncode, 1)
            self.assertEqual(res.stdout, "")
            self.assertIn("offline", res.stderr)
            self.assertIn("FLORENCE2_MODEL=/path", res.stderr)
            self.assertIn("--model /path", res.stderr)
        self.assertEqual(self.hub.log(), [])

    def test_local_directory_passthrough(self):
        model = os.path.join(GOLDEN, "tiny", "model")
        res = self.run_tool(model)
        self.assert_ok(res)
        self.assertEqual(res.stdout.strip(), os.path.abspath(model))
        env = dict(self.env, FLORENCE2_MODEL=model)
        res = self.run_tool(env=env)
        self.assert_ok(res)
        self.assertEqual(res.stdout.strip(), os.path.abspath(model))
        self.assertEqual(self.hub.log(), [])
        res = self.run_tool(self.tmp.name)
        self.assertEqual(res.returncode, 1)
        self.assertIn("not a Florence-2 model directory", res.stderr)

    def test_hf_endpoint_honoured(self):
        env = dict(self.env, HF_ENDPOINT=self.hub.url)
        self.assert_model(self.run_tool(REPO, env=env, endpoint=False))
        self.assertTrue(any(e["path"].startswith(f"/{REPO}/resolve/main/")
                            for e in self.hub.log()))

    def test_cache_locations(self):
        env = {k: v for k, v in self.env.items() if k != "HF_HOME"}
        env["XDG_CACHE_HOME"] = os.path.join(self.tmp.name, "xdg")
        self.assert_model(self.run_tool(REPO, env=env),
                          home=os.path.join(self.tmp.name, "xdg", "huggingface"))
        cache = os.path.join(self.tmp.name, "explicit")
        res = self.run_tool(REPO, "--cache-dir", cache)
        self.assert_ok(res)
        self.assertTrue(res.stdout.strip().startswith(cache + os.sep))

    def test_pytorch_bin_fallback(self):
        self.assert_model(self.run_tool("test/tiny-bin"), repo="test/tiny-bin")
        heads = [e["path"] for e in self.hub.log() if e["method"] == "HEAD"]
        self.assertIn("/test/tiny-bin/resolve/main/model.safetensors", heads)
        self.assertIn("/test/tiny-bin/resolve/main/pytorch_model.bin", heads)

    def test_errors(self):
        res = self.run_tool("test/absent")
        self.assertEqual(res.returncode, 1)
        self.assertIn("repository not found", res.stderr)
        self.assertIn("HF_TOKEN", res.stderr)

        self.hub.control(status={"tokenizer.json": 404})
        res = self.run_tool(REPO)
        self.assertEqual(res.returncode, 1)
        self.assertIn("tokenizer.json not found", res.stderr)
        self.hub.reset()

        res = self.run_tool(REPO, "--revision", "v9")
        self.assertEqual(res.returncode, 1)
        self.assertIn("revision 'v9' not found", res.stderr)

        # A port nothing listens on: the server's own port once it is gone
        # would race with other tests, so ask the kernel for a free one.
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        res = self.run_tool(REPO, "--endpoint", f"http://127.0.0.1:{port}", endpoint=False)
        self.assertEqual(res.returncode, 1)
        self.assertIn("cannot reach", res.stderr)
        self.assertIn("no internet access", res.stderr)
        self.assertIn("FLORENCE2_MODEL=/path", res.stderr)

        res = self.run_tool("not a repo!")
        self.assertEqual(res.returncode, 1)
        self.assertIn("neither a model directory nor a hub repository id", res.stderr)


def load_tool():
    """The tool as a module, for its checks that need no server."""
    sys.dont_write_bytecode = True  # no __pycache__ next to the tool
    loader = importlib.machinery.SourceFileLoader("florence2_download", TOOL)
    spec = importlib.util.spec_from_loader("florence2_download", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


class HostileHubTest(HubCase):
    """A hub that lies, redirects where it should not, sends too much, too
    little or too slowly: the tool stops with one clear line and exit 1,
    nothing lands outside the cache."""

    def setUp(self):
        super().setUp()
        self.cache = os.path.join(self.home, "hub")
        self.t0 = time.monotonic()

    def hostile(self, **faults):
        self.hub.control(**faults)

    def every_file(self, value):
        return {name: value for name in SERVED}

    def assert_contained(self, allowed=()):
        """Nothing but the cache (and @allowed fixtures) under the test's
        folder; every link in the cache points inside it."""
        root = self.tmp.name
        keep = {os.path.join(root, a) for a in allowed}
        for dirpath, dirnames, filenames in os.walk(root):
            for entry in dirnames + filenames:
                path = os.path.join(dirpath, entry)
                if path in (self.home, self.cache) or path in keep:
                    continue
                self.assertTrue(path.startswith(self.cache + os.sep),
                                f"{path} was written outside the cache {self.cache}")
                if os.path.islink(path):
                    target = os.path.realpath(path)
                    self.assertTrue(target.startswith(os.path.realpath(self.cache) + os.sep),
                                    f"{path} links outside the cache, to {target}")

    def assert_fails(self, res, *words, allowed=()):
        """Exit 1, nothing on stdout, no traceback, the last line of stderr
        names the problem (@words), nothing outside the cache."""
        self.assertEqual(res.returncode, 1, f"stdout:\n{res.stdout}\nstderr:\n{res.stderr}")
        self.assertEqual(res.stdout, "", "nothing printed when the download failed")
        self.assertNotIn("Traceback", res.stderr)
        last = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else ""
        self.assertTrue(last.startswith("florence2-download: "), res.stderr)
        for word in words:
            self.assertIn(word, last, f"stderr:\n{res.stderr}")
        self.assert_contained(allowed)
        return last

    def assert_no_snapshot(self):
        snaps = os.path.join(self.cache, "models--test--tiny", "snapshots")
        self.assertEqual(os.listdir(snaps) if os.path.isdir(snaps) else [], [])

    def gets(self, name):
        return [e for e in self.hub.log() if e["method"] == "GET" and e["path"].endswith(name)]

    # ---- values that become paths ----

    def test_hostile_commit_ids(self):
        for commit in ("../../../escaped", os.path.join(self.tmp.name, "escaped-abs"),
                       "../blobs", "not-hex-not-hex-not-hex-not-hex-not-hex!",
                       "0123456789abcdef", COMMIT + "/../../x", "0" * 39 + "g"):
            with self.subTest(commit=commit):
                self.hub.reset()
                self.hostile(headers=self.every_file({"X-Repo-Commit": commit}))
                res = self.run_tool(REPO)
                self.assert_fails(res, "commit id", "40 lowercase hex digits",
                                  "X-Repo-Commit", self.hub.url)
                self.assert_no_snapshot()
                self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "escaped-abs")))

    def test_hostile_etags(self):
        for name, header, etag in (
                ("config.json", "ETag", '".."'),
                ("config.json", "ETag", '"../../../escaped"'),
                ("config.json", "ETag", 'W/"/tmp/abs"'),
                ("config.json", "ETag", '"a\\b"'),
                ("config.json", "ETag", '"' + "a" * 300 + '"'),
                (WEIGHTS, "X-Linked-Etag", '"../../escaped"')):
            with self.subTest(etag=etag):
                self.hub.reset()
                self.hostile(headers={name: {header: etag}})
                res = self.run_tool(REPO)
                self.assert_fails(res, name, "ETag", "not a plain token")
                self.assert_no_snapshot()
        # W/ and quotes around a plain token are fine
        self.hub.reset()
        self.hostile(headers={"config.json": {"ETag": 'W/"abc-123.x_y"'}})
        self.assert_model(self.run_tool(REPO))
        self.assertTrue(os.path.isfile(os.path.join(
            self.cache, "models--test--tiny", "blobs", "abc-123.x_y")))
        self.assert_contained()

    def test_hostile_revision(self):
        for rev in ("../../../escaped", "/abs", "a\\b", "main/../../x"):
            with self.subTest(revision=rev):
                res = self.run_tool(REPO, "--revision", rev)
                self.assert_fails(res, "--revision", "not a branch, tag or commit name")
        self.assertEqual(self.hub.log(), [], "a bad revision needs no request")

    def test_hostile_file_names(self):
        # The tool asks for a fixed set of file names (it reads no listing
        # from the hub); every name is still checked where it becomes a path.
        tool = load_tool()
        for name in ("../x", "/abs", "a/../../b", "a\\b", "a\0b", "", ".", "..",
                     ".hidden", "a//b", "x" * 300, "ok/" + "y" * 200 + "/z" * 30):
            self.assertFalse(tool.safe_relpath(name), name)
        for name in ("config.json", "model.safetensors", "sub/vocab.json", "a+b_c-d.bin"):
            self.assertTrue(tool.safe_relpath(name), name)
        snap = os.path.join(self.cache, "snap")
        os.makedirs(snap)
        with self.assertRaises(tool.DownloadError):
            tool.link_into_snapshot(os.path.join(snap, "blob"), snap, "../../escaped")
        with self.assertRaises(tool.DownloadError) as err:
            hub = tool.Hub(self.hub.url, REPO, 5)
            hub.metadata("main", "../../escaped")
        self.assertIn("not a safe relative path", str(err.exception))
        self.assertEqual(self.hub.log(), [])
        self.assert_contained()

    # ---- redirects ----

    def test_redirect_to_file_url(self):
        secret = os.path.join(self.tmp.name, "secret.bin")
        with open(secret, "wb") as f:
            f.write(b"a local file, not model weights")
        self.hostile(redirect={WEIGHTS: "file://" + secret})
        res = self.run_tool(REPO)
        self.assert_fails(res, WEIGHTS, "file://", "not an http(s) URL", allowed=["secret.bin"])
        for dirpath, _, filenames in os.walk(self.cache):
            for name in filenames:
                with open(os.path.join(dirpath, name), "rb") as f:
                    self.assertNotIn(b"a local file", f.read())
        self.assert_no_snapshot()

    def test_redirect_to_other_http_host(self):
        sha = sha256(os.path.join(GOLDEN, "tiny", "model", WEIGHTS))
        self.hostile(redirect={WEIGHTS: f"{self.hub.trap_url}/__lfs/{sha}"})
        env = dict(self.env, HF_TOKEN="hf_secret_token")
        for args in ((), ("--allow-http-token",)):
            with self.subTest(args=args):
                res = self.run_tool(REPO, *args, env=env)
                self.assert_fails(res, WEIGHTS, "another host over plain http",
                                  self.hub.trap_url)
                self.assertEqual([e for e in self.hub.log() if e["host"] == "trap"], [],
                                 "nothing may reach the other host")
        self.assert_no_snapshot()

    def test_redirect_loop_is_bounded(self):
        self.hostile(redirect={"config.json": f"/{REPO}/resolve/main/config.json"})
        res = self.run_tool(REPO)
        self.assert_fails(res, "config.json", "more than 5 redirects")
        heads = [e for e in self.hub.log() if e["path"].endswith("/config.json")]
        self.assertEqual(len(heads), 6)

    def test_redirect_policy(self):
        # https and foreign hosts cannot be served on loopback: the policy
        # itself, without any request
        tool = load_tool()
        ok = tool.redirect_target
        self.assertEqual(ok("http://127.0.0.1:1/a/b", "/c", "f"), "http://127.0.0.1:1/c")
        self.assertEqual(ok("http://127.0.0.1:1/a", "https://cdn.example/x", "f"),
                         "https://cdn.example/x")
        self.assertEqual(ok("https://hub.example/a", "https://cdn.example/x", "f"),
                         "https://cdn.example/x")
        for src, loc in (("https://hub.example/a", "http://hub.example/b"),
                         ("https://hub.example/a", "http://cdn.example/b"),
                         ("http://127.0.0.1:1/a", "http://127.0.0.1:2/b"),
                         ("http://127.0.0.1:1/a", "file:///etc/passwd"),
                         ("http://127.0.0.1:1/a", "ftp://127.0.0.1:1/a"),
                         ("http://127.0.0.1:1/a", "data:,weights"),
                         ("http://127.0.0.1:1/a", "https:///nohost"),
                         ("http://127.0.0.1:1/a", "/x\x1b[2J"),
                         ("http://127.0.0.1:1/a", "/a\r\nSet-Cookie: x")):
            with self.subTest(location=loc), self.assertRaises(tool.DownloadError):
                ok(src, loc, "f")

    # ---- sizes ----

    def test_body_longer_than_announced(self):
        for name, extra in (("config.json", 5000), (WEIGHTS, 1 << 20)):
            with self.subTest(name=name):
                self.hub.reset()
                self.hostile(oversize={name: extra})
                size = os.path.getsize(os.path.join(GOLDEN, "tiny", "model", name))
                res = self.run_tool(REPO, "--retries", "0")
                self.assert_fails(res, name, f"more than the {size} bytes"
                                  if size < 10000 else f"({size} bytes) announced", "discarded")
                for dirpath, _, filenames in os.walk(self.cache):
                    for f in filenames:
                        self.assertLessEqual(os.path.getsize(os.path.join(dirpath, f)),
                                             max(size, 2 << 20), f)
                self.assertFalse(os.path.exists(os.path.join(self.snapshot(), name)))

    def test_body_shorter_than_announced(self):
        size = os.path.getsize(os.path.join(GOLDEN, "tiny", "model", "config.json"))
        self.hostile(undersize={"config.json": 100})
        res = self.run_tool(REPO, "--retries", "0")
        self.assert_fails(res, "config.json", "ended early",
                          f"{size - 100} bytes of {size} bytes")
        self.assertFalse(os.path.exists(os.path.join(self.snapshot(), "config.json")))
        self.hub.reset()
        self.assert_model(self.run_tool(REPO))

    def test_size_caps(self):
        # announced: refused before the transfer
        self.hostile(headers={"config.json": {"Content-Length": str(200 << 20)}})
        res = self.run_tool(REPO)
        self.assert_fails(res, "config.json", "announces", "JSON/text", "--max-json-size")
        self.assertEqual(self.gets("config.json"), [])
        self.hub.reset()
        res = self.run_tool(REPO, "--max-weights-size", "1M")
        self.assert_fails(res, WEIGHTS, "announces", "weights", "--max-weights-size")
        self.assertEqual(self.gets(WEIGHTS), [])
        # not announced anywhere: the cap ends the transfer
        self.hub.reset()
        self.hostile(headers={"config.json": {"Content-Length": None}},
                     oversize={"config.json": 2 << 20})
        res = self.run_tool(REPO, "--max-json-size", "1400k")
        self.assert_fails(res, "config.json", "sent more than", "(1433600 bytes)",
                          "--max-json-size")
        self.hub.reset()
        res = self.run_tool(REPO, "--max-json-size", "lots")
        self.assertEqual(res.returncode, 2)
        self.assertIn("--max-json-size 'lots' is not a size", res.stderr)

    def test_malformed_size_headers(self):
        for name, header, value in ((WEIGHTS, "X-Linked-Size", "abc"),
                                    (WEIGHTS, "X-Linked-Size", "-5"),
                                    (WEIGHTS, "X-Linked-Size", "1e9"),
                                    ("config.json", "Content-Length", "12x")):
            with self.subTest(header=header, value=value):
                self.hub.reset()
                self.hostile(headers={name: {header: value}})
                res = self.run_tool(REPO)
                self.assert_fails(res, name, f"malformed {header} header '{value}'",
                                  self.hub.url, "try again later")

    def test_broken_http_answers(self):
        for garbage in ("HELLO\r\n\r\n", "HTTP/1.1 200 OK\r\nX-Long: " + "a" * 70000 + "\r\n\r\n",
                        "HTTP/1.1 99999 Weird\r\n\r\n"):
            with self.subTest(garbage=garbage[:20]):
                self.hub.reset()
                self.hostile(garbage={"config.json": garbage})
                res = self.run_tool(REPO)
                self.assert_fails(res, "config.json", "broken HTTP answer", self.hub.url)

    # ---- slow servers ----

    def test_stall_reports_bytes_received(self):
        self.hostile(stall={WEIGHTS: 1000}, fault_count=1)
        res = self.run_tool(REPO, "--timeout", "1", "--retries", "0")
        self.assert_fails(res, WEIGHTS, "stalled", "after 1000 bytes")
        self.assertEqual(os.path.getsize(self.blob(WEIGHTS) + ".incomplete"), 1000)

    def test_drip_feed_trips_min_rate(self):
        self.hostile(drip={WEIGHTS: [3000, 0.05]})
        res = self.run_tool(REPO, "--min-rate", "1000", "--rate-window", "1",
                            "--retries", "0")
        self.assert_fails(res, WEIGHTS, "too slow", "--min-rate")
        self.assertLess(time.monotonic() - self.t0, 15)
        self.assertGreaterEqual(os.path.getsize(self.blob(WEIGHTS) + ".incomplete"), 3000)

    def test_drip_feed_trips_deadline(self):
        self.hostile(drip={WEIGHTS: [3000, 0.05]})
        res = self.run_tool(REPO, "--min-rate", "0", "--deadline", "2")
        last = self.assert_fails(res, "--deadline of 2 s", f"downloading {WEIGHTS}",
                                 "bytes received", "run again to resume")
        self.assertLess(time.monotonic() - self.t0, 15)
        # dripped headers: no byte count, still the deadline
        self.hub.reset()
        self.t0 = time.monotonic()
        self.hostile(drip_headers={"config.json": 0.05})
        res = self.run_tool(REPO, "--deadline", "2")
        last = self.assert_fails(res, "--deadline of 2 s", "config.json")
        self.assertLess(time.monotonic() - self.t0, 15)
        self.assertNotIn("bytes received", last)

    # ---- the token ----

    def test_token_not_sent_over_http(self):
        env = dict(self.env, HF_TOKEN="hf_secret_token")
        res = self.run_tool(REPO, env=env)
        self.assert_model(res)
        self.assertIn("not sending HF_TOKEN", res.stderr)
        self.assertIn("--allow-http-token", res.stderr)
        self.assertEqual([e for e in self.hub.log() if e["auth"]], [])
        # and a refusal says the token was withheld
        self.hub.reset()
        self.hostile(status={"config.json": 401})
        res = self.run_tool(REPO, "--refresh", env=env)
        self.assert_fails(res, "HF_TOKEN was not sent")

    def test_token_over_loopback_http_when_allowed(self):
        env = dict(self.env, HF_TOKEN="hf_secret_token")
        res = self.run_tool(REPO, "--allow-http-token", env=env)
        self.assert_model(res)
        self.assertNotIn("not sending", res.stderr)
        self.assertTrue(self.hub.log())
        for e in self.hub.log():
            self.assertEqual(e["auth"], "Bearer hf_secret_token", e)

    def test_token_scope(self):
        # no request: which URLs would get the token
        tool = load_tool()
        os.environ["HF_TOKEN"] = "hf_secret_token"
        try:
            hub = tool.Hub("https://hub.example", REPO, 5)
            self.assertTrue(hub.auth_headers("https://hub.example/x"))
            self.assertFalse(hub.auth_headers("https://cdn.example/x"))
            self.assertFalse(hub.auth_headers("http://hub.example/x"))
            self.assertFalse(hub.auth_headers("https://hub.example:444/x"))
            with self.assertRaises(tool.DownloadError) as err:
                tool.Hub("http://hub.example", REPO, 5, allow_http_token=True)
            self.assertIn("only for a hub on this machine", str(err.exception))
        finally:
            del os.environ["HF_TOKEN"]


def main():
    global TOOL, SERVER, GOLDEN
    if len(sys.argv) < 3:
        sys.exit("usage: test-download.py TOOL HUB_SERVER [unittest args]")
    TOOL, SERVER = sys.argv[1], sys.argv[2]
    GOLDEN = os.environ.get("F2_GOLDEN_DIR", "")
    if not os.path.isfile(os.path.join(GOLDEN, "tiny", "model", "config.json")):
        print("golden data not found (F2_GOLDEN_DIR): skipped")
        sys.exit(77)
    prog = unittest.main(argv=[sys.argv[0]] + sys.argv[3:], exit=False, verbosity=2)
    sys.exit(0 if prog.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
