#!/usr/bin/env python3
"""read-metadata.py: run a florence2 pipeline from Python and print the
results from the `florence2-result` bus messages.

  read-metadata.py [--model DIR] [--task NICK] [--prompt TEXT]
                   [--input FILE] [--num-buffers N] [PROPERTY=VALUE ...]

The element posts one element message named "florence2-result" per result
(emit-messages=true); its structure carries the same result as the buffer's
GstFlorence2Meta. This script prints, per message, the scalar fields and the
objects of its JSON form; --raw adds the whole structure. PROPERTY=VALUE
arguments are set on the florence2 element (e.g. precision=fp32).

Needs PyGObject and GStreamer's introspection data (Debian: python3-gi,
gir1.2-gstreamer-1.0).
"""

import argparse
import json
import os
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import GLib, Gst  # noqa: E402


def field(structure, name):
    """A field of @structure, or None when it is absent or unreadable."""
    if not structure.has_field(name):
        return None
    try:
        return structure.get_value(name)
    except TypeError:
        return None


def print_result(structure, raw):
    """One result: time, task and text, then one line per object of the
    JSON form (the DL Streamer-like layout of gst_florence2_meta_to_json)."""
    ts = field(structure, "timestamp")
    line = "result"
    if isinstance(ts, int) and ts != Gst.CLOCK_TIME_NONE:
        line += f" pts {ts / Gst.SECOND:.3f} s"
    line += f" task {field(structure, 'task')}"
    if field(structure, "prompt"):
        line += f" prompt {field(structure, 'prompt')!r}"
    inference = field(structure, "inference-time")
    if isinstance(inference, int) and inference != Gst.CLOCK_TIME_NONE:
        line += f" inference {inference / 1e6:.1f} ms"
    print(line)
    if field(structure, "text"):
        print(f"  text {field(structure, 'text')!r}")
    doc = json.loads(field(structure, "json") or "{}")
    for obj in doc.get("objects", []):
        det = obj.get("detection", {})
        extra = ""
        if "polygons" in obj:
            extra += f" polygons {len(obj['polygons'])}"
        if "quad" in obj:
            extra += " quad " + ",".join(f"{v:.1f}" for v in obj["quad"])
        print(f"  object {det.get('label', '')!r} label_id {det.get('label_id')} "
              f"box {obj['x']} {obj['y']} {obj['w']} {obj['h']}{extra}")
    if raw:
        print("  " + structure.to_string())
    sys.stdout.flush()


def build_pipeline(args):
    if args.input:
        src = Gst.ElementFactory.make("filesrc", "src")
        src.set_property("location", args.input)
        decode = Gst.ElementFactory.make("decodebin", None)
    else:
        src = Gst.ElementFactory.make("videotestsrc", "src")
        src.set_property("num-buffers", args.num_buffers)
        decode = None
    convert = Gst.ElementFactory.make("videoconvert", None)
    f2 = Gst.ElementFactory.make("florence2", "f2")
    sink = Gst.ElementFactory.make("fakesink", None)
    if f2 is None:
        sys.exit("No florence2 element: is the plugin installed (or GST_PLUGIN_PATH set)?")

    f2.set_property("model", args.model)
    Gst.util_set_object_arg(f2, "task", args.task)
    if args.prompt:
        f2.set_property("prompt", args.prompt)
    f2.set_property("emit-messages", True)
    for assignment in args.properties:
        name, sep, value = assignment.partition("=")
        if not sep or f2.find_property(name) is None:
            sys.exit(f"'{assignment}' is not NAME=VALUE with NAME a florence2 property")
        Gst.util_set_object_arg(f2, name, value)

    pipeline = Gst.Pipeline.new("read-metadata")
    for e in (src, decode, convert, f2, sink):
        if e is not None:
            pipeline.add(e)
    if decode is not None:
        src.link(decode)
        decode.connect("pad-added", lambda _, pad: pad.link(convert.get_static_pad("sink")))
    else:
        src.link(convert)
    convert.link(f2)
    f2.link(sink)
    return pipeline


def main():
    p = argparse.ArgumentParser(description="Print florence2-result bus messages")
    p.add_argument("--model", default=os.environ.get("FLORENCE2_MODEL"),
                   help="Florence-2 model directory (default $FLORENCE2_MODEL)")
    p.add_argument("--task", default="od", help="task nick (default od)")
    p.add_argument("--prompt", help="text input of the task")
    p.add_argument("--input", help="video or image file (default videotestsrc)")
    p.add_argument("--num-buffers", type=int, default=10,
                   help="frames of videotestsrc (default 10)")
    p.add_argument("--raw", action="store_true", help="also print the whole structure")
    p.add_argument("properties", nargs="*", metavar="PROPERTY=VALUE")
    args = p.parse_args()
    if not args.model:
        p.error("no model: pass --model DIR or set FLORENCE2_MODEL")

    Gst.init(None)
    pipeline = build_pipeline(args)
    loop = GLib.MainLoop()
    status = 0

    def on_message(_bus, msg):
        nonlocal status
        if msg.type == Gst.MessageType.ELEMENT and msg.has_name("florence2-result"):
            print_result(msg.get_structure(), args.raw)
        elif msg.type == Gst.MessageType.ERROR:
            err, debug = msg.parse_error()
            print(f"error from {msg.src.get_name()}: {err.message}", file=sys.stderr)
            if debug:
                print(f"  ({debug})", file=sys.stderr)
            status = 1
            loop.quit()
        elif msg.type == Gst.MessageType.EOS:
            loop.quit()
        return True

    bus = pipeline.get_bus()
    bus.add_watch(GLib.PRIORITY_DEFAULT, on_message)
    if pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
        msg = bus.pop_filtered(Gst.MessageType.ERROR)
        if msg:
            on_message(bus, msg)
        status = 1
    else:
        loop.run()
    pipeline.set_state(Gst.State.NULL)
    bus.remove_watch()
    return status


if __name__ == "__main__":
    sys.exit(main())
