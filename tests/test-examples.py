#!/usr/bin/env python3
"""Tests of the examples against the tiny golden model, on the default
device (auto: the first GPU, else the cpu backend), as a user runs them.

  test-examples.py SOURCE_ROOT READ_METADATA RTSP_SERVER|- [unittest args]

- read-metadata (C) on the golden images prints, per task, the regions the
  original implementation produced (tiny/cases/*.json, greedy, 40 tokens),
  and one ROI meta with a "detection" structure per region;
- read-metadata.py prints the caption of the golden case from the
  florence2-result bus messages;
- detect.sh, grounding.sh, segment.sh, ocr.sh write a playable video and
  JSON lines, caption.sh JSON lines at the inference interval;
- rtsp-server serves on loopback and an rtspsrc client decodes frames of the
  annotated stream while the server prints results and writes JSON lines;
  a second client session appends to those lines; rtsp-camera.sh records
  that stream to a file that Ctrl-C finishes. With three sources it
  serves three mounts on one model in batches, three clients at once each
  decoding frames of its mount and getting results. The server listens on
  127.0.0.1 only unless told otherwise, refuses clients without the
  password when --user is given, stops at once with the model's error for a
  bad model, and its idle size stays flat over client sessions
  (F2_RTSP_SESSIONS sessions, 8 by default; a longer soak with more).
GST_PLUGIN_PATH must reach the built plugin (meson sets it). Exits 77
(skipped) when the golden data is absent.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ROOT = READ_METADATA = RTSP_SERVER = GOLDEN = None
RUN_TIMEOUT = 300
# The reference's settings for the golden cases
GOLDEN_PROPS = ["precision=fp32", "num-beams=1", "max-new-tokens=40"]


def golden_case(stem):
    with open(os.path.join(GOLDEN, "tiny", "cases", stem + ".json")) as f:
        case = json.load(f)
    return case, case["greedy"]["post_process"]["ok"][case["task"]]


def image(name):
    return os.path.join(GOLDEN, "tiny", "images", name)


def gi_python():
    """A Python with PyGObject: this one, or the system's (python3-gi is
    installed for /usr/bin/python3 when another python3 comes first)."""
    for exe in (sys.executable, "/usr/bin/python3"):
        if subprocess.run([exe, "-c", "import gi"], capture_output=True).returncode == 0:
            return exe
    raise RuntimeError("no Python with PyGObject: install python3-gi")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_lines(path, proc, timeout=RUN_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return True
        time.sleep(0.2)
    return False


class ExamplesTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="f2-examples-")
        self.env = dict(os.environ)
        self.env["GST_REGISTRY"] = os.path.join(self.tmp.name, "registry.bin")
        self.env["FLORENCE2_MODEL"] = os.path.join(GOLDEN, "tiny", "model")
        self.env.pop("FLORENCE2_DEVICE", None)
        self.env["FLORENCE2_PRECISION"] = "fp32"
        icd = "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json"
        if "VK_ICD_FILENAMES" not in self.env and os.path.exists(icd):
            self.env["VK_ICD_FILENAMES"] = icd

    def tearDown(self):
        self.tmp.cleanup()

    def run_cmd(self, cmd, **kw):
        res = subprocess.run(cmd, env=kw.pop("env", self.env), capture_output=True,
                             text=True, timeout=RUN_TIMEOUT, **kw)
        self.assertEqual(res.returncode, 0,
                         f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
        return res

    def read_metadata_json(self, nick, png, prompt=None):
        cmd = [READ_METADATA, "--json", "--task", nick, "--input", image(png)]
        if prompt:
            cmd += ["--prompt", prompt]
        res = self.run_cmd(cmd + GOLDEN_PROPS)
        lines = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
        self.assertEqual(len(lines), 1, f"one result for one image:\n{res.stdout}")
        return lines[0]

    def assert_close(self, got, want, what, tol=0.01):
        self.assertEqual(len(got), len(want), what)
        for g, w in zip(got, want):
            self.assertAlmostEqual(g, w, delta=tol, msg=f"{what}: {got} != {want}")

    def assert_boxes(self, result, expected):
        """Objects of the JSON form against the reference's [x1,y1,x2,y2]."""
        width, height = result["resolution"]["width"], result["resolution"]["height"]
        objects = result["objects"]
        self.assertEqual([o["detection"]["label"] for o in objects], expected["labels"])
        for obj, box in zip(objects, expected["bboxes"]):
            bb = obj["detection"]["bounding_box"]
            self.assert_close([bb["x_min"] * width, bb["y_min"] * height,
                               bb["x_max"] * width, bb["y_max"] * height], box,
                              "box of " + obj["detection"]["label"])

    # ---- the C example ----

    def test_read_metadata_od(self):
        case, expected = golden_case("00_shapes_640x480_OD")
        result = self.read_metadata_json("od", "shapes_640x480.png")
        self.assertEqual(result["florence2"]["task"], case["task"])
        self.assertEqual(result["resolution"], {"width": 640, "height": 480})
        self.assertTrue(expected["labels"], "the golden case has regions")
        self.assert_boxes(result, expected)

    def test_read_metadata_grounding(self):
        case, expected = golden_case("03_shapes_640x480_CAPTION_TO_PHRASE_GROUNDING")
        result = self.read_metadata_json("caption-to-phrase-grounding",
                                         "shapes_640x480.png", case["text_input"])
        self.assertEqual(result["florence2"]["prompt"], case["text_input"])
        self.assert_boxes(result, expected)

    def test_read_metadata_segmentation(self):
        case, expected = golden_case("05_shapes_640x480_REFERRING_EXPRESSION_SEGMENTATION")
        result = self.read_metadata_json("referring-expression-segmentation",
                                         "shapes_640x480.png", case["text_input"])
        polygons = [p for o in result["objects"] for p in o.get("polygons", [])]
        want = [p for region in expected["polygons"] for p in region]
        self.assertEqual(len(polygons), len(want))
        for got, ref in zip(polygons, want):
            self.assert_close(got, ref, "polygon")

    def test_read_metadata_roi_metas(self):
        """The text output: every region and one ROI meta per region, with
        the DL Streamer "detection" parameters."""
        _, expected = golden_case("00_shapes_640x480_OD")
        res = self.run_cmd([READ_METADATA, "--task", "od", "--input",
                            image("shapes_640x480.png")] + GOLDEN_PROPS)
        regions = re.findall(r'^  region \d+ label "(.*)" label-id \d+ box '
                             r'([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+)$',
                             res.stdout, re.M)
        self.assertEqual([r[0] for r in regions], expected["labels"], res.stdout)
        for r, (x1, y1, x2, y2) in zip(regions, expected["bboxes"]):
            self.assert_close([float(v) for v in r[1:]], [x1, y1, x2 - x1, y2 - y1], "region")
        rois = re.findall(r'^  roi \d+ type "(.*)" id -?\d+ box (\d+) (\d+) (\d+) (\d+)$',
                          res.stdout, re.M)
        self.assertEqual([r[0] for r in rois], expected["labels"], res.stdout)
        for r, (x1, y1, x2, y2) in zip(rois, expected["bboxes"]):
            x, y, w, h = (int(v) for v in r[1:])
            # whole pixels around the box
            self.assertTrue(x <= x1 < x + 1 and y <= y1 < y + 1, r)
            self.assertTrue(x + w - 1 < x2 <= x + w and y + h - 1 < y2 <= y + h, r)
        self.assertEqual(len(re.findall(r"^    detection, ", res.stdout, re.M)), len(rois))

    # ---- the Python example ----

    def test_read_metadata_py_caption(self):
        _, expected = golden_case("01_shapes_640x480_CAPTION")
        res = self.run_cmd([gi_python(), os.path.join(ROOT, "examples", "read-metadata.py"),
                            "--task", "caption", "--input", image("shapes_640x480.png")]
                           + GOLDEN_PROPS)
        self.assertIn("task <CAPTION>", res.stdout)
        texts = re.findall(r"^  text (.*)$", res.stdout, re.M)
        self.assertEqual(len(texts), 1, res.stdout)
        self.assertEqual(eval(texts[0]).strip(), expected.strip())  # a repr() of str

    def test_read_metadata_py_od(self):
        _, expected = golden_case("00_shapes_640x480_OD")
        res = self.run_cmd([gi_python(), os.path.join(ROOT, "examples", "read-metadata.py"),
                            "--input", image("shapes_640x480.png")] + GOLDEN_PROPS)
        labels = re.findall(r"^  object '(.*)' label_id", res.stdout, re.M)
        self.assertEqual(labels, expected["labels"], res.stdout)

    # ---- launch scripts ----

    def run_script(self, name, *args, frames=2, **extra_env):
        # Short answers: these check the plumbing, the golden tests the numbers
        env = dict(self.env, NUM_BUFFERS=str(frames),
                   FLORENCE2_PROPS="num-beams=1 max-new-tokens=8", **extra_env)
        return self.run_cmd(["bash", os.path.join(ROOT, "examples", name), *args],
                            env=env, cwd=self.tmp.name)

    def assert_video(self, path, frames):
        """A file GStreamer decodes back to @frames frames of 640x480."""
        res = self.run_cmd(["gst-launch-1.0", "-v", "filesrc", f"location={path}", "!",
                            "decodebin", "!", "videoconvert", "!",
                            "video/x-raw,format=RGB", "!", "fakesink", "silent=false"])
        self.assertIn("width=(int)640, height=(int)480", res.stdout)
        self.assertEqual(len(re.findall(r"last-message = chain", res.stdout)), frames,
                         res.stdout[-2000:])

    def jsonl(self, path):
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def test_detect_script(self):
        self.run_script("detect.sh", "test", "out.mp4")
        self.assert_video(os.path.join(self.tmp.name, "out.mp4"), 2)
        lines = self.jsonl(os.path.join(self.tmp.name, "out.jsonl"))
        self.assertEqual(len(lines), 2)
        self.assertTrue(all(line["florence2"]["task"] == "<OD>" for line in lines))

    def test_grounding_script(self):
        phrase = "a red rectangle and a green circle"
        # 2 frames: openh264dec decodes nothing from a one-frame stream
        self.run_script("grounding.sh", phrase, "test", "g.mp4", frames=2)
        self.assert_video(os.path.join(self.tmp.name, "g.mp4"), 2)
        lines = self.jsonl(os.path.join(self.tmp.name, "g.jsonl"))
        self.assertEqual(len(lines), 2)
        self.assertEqual(lines[0]["florence2"]["prompt"], phrase)

    def test_segment_and_ocr_scripts(self):
        self.run_script("segment.sh", "the yellow square", "test", "s.mp4")
        self.assert_video(os.path.join(self.tmp.name, "s.mp4"), 2)
        lines = self.jsonl(os.path.join(self.tmp.name, "s.jsonl"))
        self.assertEqual([x["florence2"]["task"] for x in lines],
                         ["<REFERRING_EXPRESSION_SEGMENTATION>"] * 2)
        self.run_script("ocr.sh", "test", "o.mkv")
        self.assert_video(os.path.join(self.tmp.name, "o.mkv"), 2)
        lines = self.jsonl(os.path.join(self.tmp.name, "o.jsonl"))
        self.assertEqual([x["florence2"]["task"] for x in lines], ["<OCR_WITH_REGION>"] * 2)

    def test_caption_script(self):
        self.run_script("caption.sh", "test", "c.jsonl", frames=2, INTERVAL="2")
        lines = self.jsonl(os.path.join(self.tmp.name, "c.jsonl"))
        self.assertEqual(len(lines), 1, "inference-interval=2: one caption for 2 frames")
        self.assertTrue(all(line["florence2"]["text"] for line in lines))

    # ---- RTSP ----

    def start_server(self, *args, env=None, mount="/cam"):
        """rtsp-server on a free loopback port: (process, URL, port) once it
        prints the URL it serves. Threads collect its output (server.out,
        server.err: lists of lines)."""
        port = free_port()
        server = subprocess.Popen(
            [RTSP_SERVER, "--port", str(port), "--source", "test", "--mount", mount,
             *args] + GOLDEN_PROPS, env=env or self.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        server.out, server.err, server.readers = [], [], []
        for pipe, lines in ((server.stdout, server.out), (server.stderr, server.err)):
            t = threading.Thread(target=lambda p=pipe, l=lines: l.extend(iter(p.readline, "")),
                                 daemon=True)
            t.start()
            server.readers.append(t)
        url = f"rtsp://127.0.0.1:{port}{mount}"
        if not self.wait_for_output(server, url):
            server.kill()
            out, err = self.stop_server(server, check=False)
            self.fail(f"no URL from the server: {out}\n{err[-3000:]}")
        return server, url, port

    def wait_for_output(self, server, text, count=1, timeout=RUN_TIMEOUT):
        """Whether the server printed @text on @count lines in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(text in line for line in list(server.out)) >= count:
                return True
            if server.poll() is not None:
                time.sleep(0.5)         # the readers catch up
                return sum(text in line for line in server.out) >= count
            time.sleep(0.2)
        return False

    def stop_server(self, server, check=True):
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        for t in server.readers:
            t.join(timeout=10)
        out, err = "".join(server.out), "".join(server.err)
        if check:
            self.assertEqual(server.returncode, 0, err[-3000:])
        return out, err

    def rtsp_client(self, url, results, min_lines=0, frames=10, user=None, password=None):
        """A client session: decodes @frames frames and stays until the
        results file holds more than @min_lines lines (-1: does not wait)."""
        args = [gi_python(), "-c", RTSP_CLIENT, url, str(frames), results, str(min_lines)]
        if user is not None:
            args += [user, password]
        return subprocess.run(args, env=self.env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT)

    def test_rtsp_server_loopback(self):
        results = os.path.join(self.tmp.name, "rtsp.jsonl")
        # results of an earlier run stay: the server appends
        with open(results, "w") as f:
            f.write('{"earlier": true}\n')
        server, url, port = self.start_server("--results", results)
        try:
            self.assertEqual(listening_addresses(port), {"127.0.0.1"},
                             "the server listens on loopback only by default")
            client = self.rtsp_client(url, results, min_lines=1)
            self.assertEqual(client.returncode, 0, client.stdout + client.stderr)
            m = re.search(r"frames (\d+) size 640x480", client.stdout)
            self.assertTrue(m, client.stdout)
            self.assertGreaterEqual(int(m.group(1)), 10)
            # a second session, after the first left and its pipeline went:
            # its results follow the first session's, which stay
            self.assertTrue(self.wait_for_output(server, "media unprepared", timeout=60),
                            "".join(server.out))
            first = self.lines_of(results)
            client = self.rtsp_client(url, results, min_lines=len(first))
            self.assertEqual(client.returncode, 0, client.stdout + client.stderr)
            second = self.lines_of(results)
            self.assertGreater(len(second), len(first))
            self.assertEqual(second[:len(first)], first,
                             "a new client session must not empty the results file")
            self.check_rtsp_camera_script(url)
        finally:
            out, err = self.stop_server(server)
        # a pipeline per client session (the camera script's may find the
        # second session's still there)
        self.assertGreaterEqual(out.count("media configured"), 2, out)
        printed = [json.loads(line.split(" ", 1)[1]) for line in out.splitlines()
                   if line.startswith("florence2-result ")]
        self.assertGreater(len(printed), 0, out)
        self.assertEqual(printed[0]["florence2"]["task"], "<OD>")
        lines = self.jsonl(results)
        self.assertGreater(len(lines), 2)
        self.assertEqual(lines[0], {"earlier": True})
        self.assertEqual(lines[1]["florence2"]["task"], "<OD>")

    def test_rtsp_server_batched_sources(self):
        """Three sources, a mount each (the first named, the others by
        default), one model in batches of 3: three clients watch at once,
        each mount's results go to a file of its own and are printed under
        its mount."""
        results = os.path.join(self.tmp.name, "multi.jsonl")
        # start_server gives the first --source test and --mount /cam
        server, url, port = self.start_server(
            "--source", "test", "--source", "test", "--results", results,
            "--batch-timeout-ms", "200")
        mounts = ["/cam", "/florence2-2", "/florence2-3"]
        files = [os.path.join(self.tmp.name, f"multi-{m[1:]}.jsonl") for m in mounts]
        try:
            self.assertTrue(self.wait_for_output(server, "in batches of up to 3 frames",
                                                 timeout=10), "".join(server.out))
            for m in mounts:
                self.assertTrue(self.wait_for_output(
                    server, f"stream ready at rtsp://127.0.0.1:{port}{m}", timeout=10),
                    "".join(server.out))
            clients = [subprocess.Popen(
                [gi_python(), "-c", RTSP_CLIENT, f"rtsp://127.0.0.1:{port}{m}", "10", f, "0"],
                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for m, f in zip(mounts, files)]
            for m, client in zip(mounts, clients):
                try:
                    out, err = client.communicate(timeout=RUN_TIMEOUT)
                except subprocess.TimeoutExpired:
                    client.kill()
                    out, err = client.communicate()
                self.assertEqual(client.returncode, 0, f"{m}: {out}{err[-3000:]}")
                got = re.search(r"frames (\d+) size 640x480", out)
                self.assertTrue(got and int(got.group(1)) >= 10, f"{m}: {out}")
        finally:
            out, err = self.stop_server(server)
        self.assertFalse(os.path.exists(results), "several sources: a file per mount")
        for m, f in zip(mounts, files):
            lines = self.jsonl(f)
            self.assertGreater(len(lines), 0, f)
            self.assertTrue(all(line["florence2"]["task"] == "<OD>" for line in lines), f)
            self.assertIn(f"media configured: a client is watching {m}\n", out)
            printed = [json.loads(line.split(" ", 2)[2]) for line in out.splitlines()
                       if line.startswith(f"florence2-result {m} ")]
            self.assertGreater(len(printed), 0, f"no result printed for {m}:\n{out}")
        self.assertNotIn("Error from", err, err[-3000:])

    def lines_of(self, path):
        with open(path) as f:
            text = f.read()
        self.assertTrue(text.endswith("\n"), "the results file ends with a whole line")
        return text.splitlines()

    def test_rtsp_server_bad_model(self):
        """A bad model stops the server before it serves, with the model's
        error on stderr and a non-zero exit."""
        empty = os.path.join(self.tmp.name, "not-a-model")
        os.mkdir(empty)
        for model, why in (("/nonexistent/florence2", "does not exist"),
                           (empty, "config.json")):
            res = subprocess.run([RTSP_SERVER, "--port", str(free_port()), "--model", model],
                                 env=self.env, capture_output=True, text=True,
                                 timeout=RUN_TIMEOUT)
            self.assertEqual(res.returncode, 1, res.stdout + res.stderr)
            self.assertIn(why, res.stderr)
            self.assertNotIn("stream ready", res.stdout)

    def test_rtsp_server_authentication(self):
        """--user: clients need the name and the password (from a file or
        the environment, never the command line)."""
        results = os.path.join(self.tmp.name, "auth.jsonl")
        env = dict(self.env, FLORENCE2_RTSP_PASSWORD="s3cret word")
        server, url, _ = self.start_server("--user", "viewer", "--results", results,
                                           env=env)
        try:
            self.assertNotIn("s3cret", " ".join(server.args))
            for user, password in ((None, None), ("viewer", "wrong")):
                client = self.rtsp_client(url, results, -1, frames=1, user=user,
                                          password=password)
                self.assertNotEqual(client.returncode, 0, client.stdout)
                self.assertIn("frames 0 ", client.stdout)
                self.assertRegex(client.stdout, r"(?i)unauthori[sz]ed|401|not authori", client.stdout)
            client = self.rtsp_client(url, results, -1, frames=3, user="viewer",
                                      password="s3cret word")
            self.assertEqual(client.returncode, 0, client.stdout + client.stderr)
        finally:
            self.stop_server(server)
        # the password can come from a file too; a missing one is an error
        pwfile = os.path.join(self.tmp.name, "password")
        with open(pwfile, "w") as f:
            f.write("from a file\n")
        res = subprocess.run([RTSP_SERVER, "--user", "viewer"], env=self.env,
                             capture_output=True, text=True, timeout=RUN_TIMEOUT)
        self.assertEqual(res.returncode, 2)
        self.assertIn("--password-file", res.stderr)
        server, url, _ = self.start_server("--user", "viewer", "--password-file", pwfile)
        try:
            client = self.rtsp_client(url, results, -1, frames=3, user="viewer",
                                      password="from a file")
            self.assertEqual(client.returncode, 0, client.stdout + client.stderr)
        finally:
            self.stop_server(server)

    def test_rtsp_server_sessions_rss(self):
        """Clients come and go: the model stays loaded and the server's idle
        size stays flat. F2_RTSP_SESSIONS sets the number of sessions (a
        longer soak); the growth allowed is generous, a leak of a model or a
        pipeline per session exceeds it."""
        sessions = int(os.environ.get("F2_RTSP_SESSIONS", "8"))
        server, url, _ = self.start_server()
        try:
            res = subprocess.run([gi_python(), "-c", RTSP_SESSIONS, url, str(sessions),
                                  str(server.pid)], env=self.env, capture_output=True,
                                 text=True, timeout=RUN_TIMEOUT + 30 * sessions)
            print(res.stdout, file=sys.stderr)
            self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        finally:
            out, _ = self.stop_server(server)
        self.assertEqual(out.count("media configured"), sessions, out)
        rss = [int(v) for v in re.findall(r"^session \d+ .* idle rss (\d+) MiB$",
                                          res.stdout, re.M)]
        self.assertEqual(len(rss), sessions, res.stdout)
        # after the first session (the driver's caches fill): flat
        growth = rss[-1] - rss[0]
        self.assertLessEqual(growth, 64 + 4 * sessions,
                             f"idle RSS grew {growth} MiB over {sessions} sessions: {rss}")

    def check_rtsp_camera_script(self, url):
        """rtsp-camera.sh records the stream; Ctrl-C finishes the file."""
        out = os.path.join(self.tmp.name, "cam.mp4")
        results = os.path.join(self.tmp.name, "cam.jsonl")
        env = dict(self.env, RESULTS=results, FLORENCE2_PROPS="num-beams=1 max-new-tokens=8")
        proc = subprocess.Popen(["bash", os.path.join(ROOT, "examples", "rtsp-camera.sh"),
                                 url, "od", out], env=env, cwd=self.tmp.name,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        got = wait_for_lines(results, proc)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
        self.assertTrue(got, f"no result from rtsp-camera.sh:\n{err[-3000:]}")
        self.assertEqual(proc.returncode, 0, err[-3000:])
        res = self.run_cmd(["gst-launch-1.0", "-v", "filesrc", f"location={out}", "!",
                            "decodebin", "!", "fakesink", "silent=false"])
        self.assertIn("last-message = chain", res.stdout)


def listening_addresses(port):
    """Local addresses of the TCP sockets listening on @port (from
    /proc/net/tcp and tcp6: no connection needed)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            addr, p = local.split(":")
            if state != "0A" or int(p, 16) != port:
                continue
            raw = bytes.fromhex(addr)
            # the kernel prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(socket.inet_ntop(socket.AF_INET if width == 8 else socket.AF_INET6, raw))
    return found


# The client: decodes the stream and counts frames until it has N of them
# and the server's results file holds more than MIN_LINES lines (a separate
# process, so that a hung client is bounded by the subprocess timeout).
#   RTSP_CLIENT URL N RESULTS MIN_LINES [USER PASSWORD]
RTSP_CLIENT = r"""
import sys
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst, GLib
Gst.init(None)
import os
url, want, results, min_lines = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
p = Gst.parse_launch("rtspsrc name=src protocols=tcp latency=100 ! rtph264depay "
                     "! h264parse ! decodebin ! videoconvert ! video/x-raw,format=RGB "
                     "! appsink name=sink emit-signals=true sync=false")
p.get_by_name("src").set_property("location", url)
if len(sys.argv) > 6:
    p.get_by_name("src").set_property("user-id", sys.argv[5])
    p.get_by_name("src").set_property("user-pw", sys.argv[6])
def lines(path):
    try:
        with open(path) as f:
            return f.read().count("\n")
    except OSError:
        return 0
loop = GLib.MainLoop()
state = {"n": 0, "size": None, "rc": 1}
def on_sample(sink):
    s = sink.emit("pull-sample")
    caps = s.get_caps().get_structure(0)
    state["size"] = (caps.get_value("width"), caps.get_value("height"))
    state["n"] += 1
    # Stay until the server has written a result (the model is slower than
    # the stream: low-latency mode sends frames on meanwhile)
    if state["rc"] and state["n"] >= want and lines(results) > min_lines:
        state["rc"] = 0
        GLib.idle_add(loop.quit)
    return Gst.FlowReturn.OK
p.get_by_name("sink").connect("new-sample", on_sample)
def on_msg(bus, m):
    if m.type in (Gst.MessageType.ERROR, Gst.MessageType.EOS):
        print(m.parse_error() if m.type == Gst.MessageType.ERROR else "eos")
        loop.quit()
    return True
p.get_bus().add_watch(GLib.PRIORITY_DEFAULT, on_msg)
GLib.timeout_add_seconds(240, loop.quit)
p.set_state(Gst.State.PLAYING)
loop.run()
p.set_state(Gst.State.NULL)
print("frames %d size %dx%d" % (state["n"], *(state["size"] or (0, 0))))
sys.exit(state["rc"])
"""


# Client sessions one after the other; after each, once the server is idle
# again, the server's resident size.
#   RTSP_SESSIONS URL SESSIONS SERVER_PID
RTSP_SESSIONS = r"""
import sys, time
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst, GLib
Gst.init(None)
url, sessions, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def rss():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
rc = 0
for i in range(sessions):
    p = Gst.parse_launch("rtspsrc name=src protocols=tcp latency=100 ! rtph264depay "
                         "! h264parse ! decodebin ! fakesink name=sink signal-handoffs=true "
                         "sync=false")
    p.get_by_name("src").set_property("location", url)
    loop = GLib.MainLoop()
    n = [0]
    def on_handoff(*args):
        n[0] += 1
        if n[0] == 15:
            GLib.idle_add(loop.quit)
    def on_msg(bus, m):
        if m.type in (Gst.MessageType.ERROR, Gst.MessageType.EOS):
            print(m.parse_error() if m.type == Gst.MessageType.ERROR else "eos")
            loop.quit()
        return True
    p.get_by_name("sink").connect("handoff", on_handoff)
    bus = p.get_bus()
    bus.add_watch(GLib.PRIORITY_DEFAULT, on_msg)
    timeout = GLib.timeout_add_seconds(120, loop.quit)
    p.set_state(Gst.State.PLAYING)
    loop.run()
    GLib.source_remove(timeout)
    p.set_state(Gst.State.NULL)
    bus.remove_watch()
    if n[0] < 15:
        rc = 1
    time.sleep(3)                       # the server tears the pipeline down
    print("session %d frames %d idle rss %d MiB" % (i + 1, n[0], rss()), flush=True)
sys.exit(rc)
"""


def main():
    global ROOT, READ_METADATA, RTSP_SERVER, GOLDEN
    if len(sys.argv) < 4:
        sys.exit("usage: test-examples.py SOURCE_ROOT READ_METADATA RTSP_SERVER|- [args]")
    ROOT, READ_METADATA, RTSP_SERVER = sys.argv[1:4]
    GOLDEN = os.environ.get("F2_GOLDEN_DIR", "")
    if not os.path.isfile(os.path.join(GOLDEN, "tiny", "model", "config.json")):
        print("golden data not found (F2_GOLDEN_DIR): skipped")
        sys.exit(77)
    if RTSP_SERVER == "-":
        # Not built: meson registers no RTSP test then, so leave it out
        # rather than report it skipped.
        for name in [n for n in dir(ExamplesTest) if n.startswith("test_rtsp")]:
            delattr(ExamplesTest, name)
    prog = unittest.main(argv=[sys.argv[0]] + sys.argv[4:], exit=False, verbosity=2)
    sys.exit(0 if prog.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
