#!/usr/bin/env python3
"""A small Lambda Runtime API emulator for start-up measurements (test tooling, not a product part).

It starts a function the way Lambda does (AWS_LAMBDA_RUNTIME_API and the usual variables), serves
the Runtime API (GET .../invocation/next, POST .../response, .../error, .../init/error) on
loopback, hands it events, and measures:

  init_ms      process start until its first GET /next (Lambda's "Init Duration")
  cold_ms      the first invocation: the event handed over until its response was posted
  warm_ms      each later invocation (p50, p99 reported)
  peak_rss_kb  VmHWM of the process after the last invocation

Usage (one JSON object per run on stdout):
  lambda_emulator.py --events FILE.jsonl [--env K=V ...] [--handler H] -- COMMAND [ARGS...]
Each line of FILE.jsonl is one event (the first is the cold one).
"""

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


class Runtime:
    def __init__(self):
        self.events = queue.Queue()
        self.first_next = threading.Event()
        self.first_next_at = None
        self.done = {}  # request id -> (status, body, at)
        self.handed = {}  # request id -> at
        self.finished = threading.Condition()
        self.init_error = None


def make_handler(rt):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as they are written: no 40 ms Nagle/delayed-ACK stalls that
        # would be the emulator's, not the function's.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def reply(self, status, body=b"", headers=None):
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path != PREFIX + "/invocation/next":
                return self.reply(404)
            if not rt.first_next.is_set():
                rt.first_next_at = time.perf_counter()
                rt.first_next.set()
            request_id, body = rt.events.get()
            if request_id is None:
                # The run is over: the process is about to be stopped.
                time.sleep(3600)
            rt.handed[request_id] = time.perf_counter()
            deadline = int((time.time() + 30) * 1000)
            self.reply(
                200,
                body,
                {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline),
                    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:eu-west-2:123456789012:function:bench",
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                },
            )

        def do_POST(self):
            # Timed when the request arrives: a client that sends its body in a second segment
            # may wait for our ACK (a TCP artefact, not the function's time).
            at = time.perf_counter()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path == PREFIX + "/init/error":
                rt.init_error = body.decode(errors="replace")
                rt.first_next.set()
                return self.reply(202)
            parts = self.path[len(PREFIX):].strip("/").split("/")
            if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                with rt.finished:
                    rt.done[parts[1]] = (parts[2], body, at)
                    rt.finished.notify_all()
                return self.reply(202)
            self.reply(404)

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # The function is stopped while its last GET /next waits: that reset is expected.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return None
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def peak_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", required=True)
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--handler", default="bootstrap")
    parser.add_argument("--name", default="bench")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--logs", help="keep the function's stdout and stderr (its logs) in this file")
    parser.add_argument("--calls-url", help="moto's call counter: read once init is over (network round trips at init)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    with open(args.events) as f:
        events = [line.strip().encode() for line in f if line.strip()]

    rt = Runtime()
    server = Server(("127.0.0.1", 0), make_handler(rt))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_LAMBDA_")}
    env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
            "AWS_LAMBDA_FUNCTION_NAME": args.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{args.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
            "_HANDLER": args.handler,
            "LAMBDA_TASK_ROOT": os.getcwd(),
        }
    )
    for pair in args.env:
        k, _, v = pair.partition("=")
        env[k] = v

    started = time.perf_counter()
    # stderr to a file: a chatty function must never block on a full pipe.
    errors_file = open(args.logs, "w+b") if args.logs else tempfile.TemporaryFile()
    proc = subprocess.Popen(command, env=env, stdout=errors_file if args.logs else subprocess.DEVNULL,
                            stderr=errors_file)
    result = {"command": os.path.basename(command[0]), "errors": []}
    try:
        if not rt.first_next.wait(args.timeout) or rt.init_error:
            result["errors"].append(rt.init_error or "no GET /next within the timeout")
            return result
        result["init_ms"] = (rt.first_next_at - started) * 1000
        if args.calls_url:
            with urllib.request.urlopen(args.calls_url) as r:
                result["aws_calls_at_init"] = sum(json.load(r).values())
        durations = []
        for i, event in enumerate(events):
            request_id = str(uuid.uuid4())
            rt.events.put((request_id, event))
            with rt.finished:
                if not rt.finished.wait_for(lambda: request_id in rt.done, args.timeout):
                    result["errors"].append(f"invocation {i} timed out")
                    break
            kind, body, at = rt.done[request_id]
            if kind == "error":
                result["errors"].append(body.decode(errors="replace")[:300])
            if i == 0:
                result["first_response"] = body.decode(errors="replace")[:300]
            durations.append((at - rt.handed[request_id]) * 1000)
        if durations:
            result["cold_ms"] = durations[0]
            warm = durations[1:]
            if warm:
                result["warm_p50_ms"] = statistics.median(warm)
                result["warm_p99_ms"] = percentile(warm, 99)
                result["warm_count"] = len(warm)
        result["peak_rss_kb"] = peak_rss_kb(proc.pid)
        return result
    finally:
        rt.events.put((None, None))
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if result["errors"]:
            errors_file.seek(0)
            result["stderr_tail"] = errors_file.read().decode(errors="replace")[-500:]
        server.shutdown()


if __name__ == "__main__":
    print(json.dumps(main()))
