#!/usr/bin/env python3
"""Tests of tools/florence2-download against tests/hub-server.py on loopback.

  test-download.py TOOL HUB_SERVER

The server serves the tiny golden model (F2_GOLDEN_DIR/tiny/model) as
test/tiny and its pytorch_model.bin twin (tiny/model-bin) as test/tiny-bin.
Every check compares the downloaded files with the served ones by sha256.
Exits 77 (skipped) when the golden data is absent.
"""

import hashlib
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
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

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


class DownloadTest(unittest.TestCase):
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

    # ---- tests ----

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
