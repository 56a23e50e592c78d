#!/usr/bin/env python3
"""Start-up figures (make bench): each function's release binary started as Lambda starts it
(tests/bench/lambda_emulator.py), against a private moto with the stack made from template.yaml
and the demo business loaded, beside the floor (a hello-world lambda_runtime echo) in the same
run. Events are the samples of events/, made valid for now: webhooks signed with the local
secrets, a fresh conversation, text and booking per invocation, so every warm call does the
work of a new one.

Prints a table and writes .local/bench/startup.json. Needs: .venv (moto), the release binaries
(make bench builds them), target/debug/frontdesk-local (the build make test shares) and
.venv-bench (awslambdaric and boto3, for the Python peer; make bench installs it).
"""

import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WARM = int(os.environ.get("BENCH_WARM", "20"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
FUNCTIONS = ["post-call", "check-availability", "create-booking", "twilio-messaging"]
# Every batch of events is new (ids, numbers, booking slots): a repeat would take the cheaper
# already-seen path.
SEQ = [0]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto():
    port = free_port()
    proc = subprocess.Popen(
        [os.path.join(ROOT, ".venv/bin/python"), os.path.join(ROOT, "tests/moto_server.py"), "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    raise SystemExit("moto did not start")


def stack_env(endpoint):
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_REGION="eu-west-2", FRONTDESK_PROMPTS=os.path.join(ROOT, "prompts/demo"),
               FRONTDESK_TEMPLATE=os.path.join(ROOT, "template.yaml"))
    out = subprocess.run([os.path.join(ROOT, "target/debug/frontdesk-local"), "stack-env"], env=env,
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    values.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                  AWS_REGION="eu-west-2", AWS_DEFAULT_REGION="eu-west-2")
    return values


def apigw(sample, body, headers):
    event = json.load(open(os.path.join(ROOT, "events", sample)))
    event["body"] = body
    event["headers"] = {**event["headers"], **headers}
    event["requestContext"]["timeEpoch"] = int(time.time() * 1000)
    return json.dumps(event)


def post_call_events(env, n):
    raw = json.load(open(os.path.join(ROOT, "events/webhooks/post_call_transcription.json")))
    secret = env["ELEVENLABS_WEBHOOK_SECRET"].encode()
    events = []
    for i in range(n):
        raw["data"]["conversation_id"] = f"conv_bench{os.getpid():x}s{SEQ[0]:04d}n{i:06d}"
        raw["data"]["metadata"]["phone_call"]["external_number"] = f"+447400{SEQ[0] % 100:02d}{i:04d}"
        body = json.dumps(raw)
        t = str(int(time.time()))
        digest = hmac.new(secret, f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
        events.append(apigw("post-call/apigw-post-call-transcription.json", body,
                            {"elevenlabs-signature": f"t={t},v0={digest}"}))
    return events


def tool_events(env, sample, bodies):
    return [apigw(sample, json.dumps(b), {"x-frontdesk-tool-secret": env["TOOL_SECRET"]}) for b in bodies]


def next_weekdays(count):
    day = datetime.now(timezone.utc).date() + timedelta(days=2)
    out = []
    while len(out) < count:
        if day.weekday() < 5:
            out.append(day)
        day += timedelta(days=1)
    return out


BOOKING_BATCHES = [0]


def booking_bodies(n):
    # Distinct starts the demo's hours and two technicians can take: four a weekday, two hours
    # apart (08, 10, 13, 15 UTC: inside the London hours in winter and summer), each batch on
    # days of its own within the demo's 30 days ahead.
    per_day = ("08", "10", "13", "15")
    days_needed = -(-n // len(per_day))
    first = BOOKING_BATCHES[0] * days_needed
    BOOKING_BATCHES[0] += 1
    days = next_weekdays(first + days_needed)[first:]
    starts = [f"{d.isoformat()}T{h}:00:00Z" for d in days for h in per_day]
    return [{"service": "boiler service", "start": s, "customer_name": "Bench Caller",
             "caller_phone": f"+447401{SEQ[0] % 100:02d}{i:04d}", "conversation_id": f"conv_benchbk{SEQ[0]:04d}n{i:08d}"}
            for i, s in enumerate(starts[:n])]


def twilio_events(env, n):
    token = env["TWILIO_AUTH_TOKEN"].encode()
    base = env.get("FRONTDESK_PUBLIC_BASE_URL", "http://127.0.0.1:3000")
    path = "/webhooks/twilio/messaging"
    events = []
    for i in range(n):
        params = {"MessageSid": f"SM{os.getpid():08x}{SEQ[0]:08d}{i:016d}", "AccountSid": "AC" + "0" * 32,
                  "From": f"+447402{SEQ[0] % 100:02d}{i:04d}", "To": "+442079460000", "Body": "Hi, can someone look at my boiler?",
                  "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01"}
        signed = base + path + "".join(k + params[k] for k in sorted(params))
        signature = base64.b64encode(hmac.new(token, signed.encode(), hashlib.sha1).digest()).decode()
        body = urllib.parse.urlencode(params)
        events.append(apigw("twilio-messaging/apigw-inbound-sms.json", body,
                            {"x-twilio-signature": signature, "content-type": "application/x-www-form-urlencoded"}))
    return events


def events_for(name, env, n):
    SEQ[0] += 1
    if name == "post-call":
        return post_call_events(env, n)
    if name == "check-availability":
        days = next_weekdays(n)
        return tool_events(env, "check-availability/apigw-check-availability.json",
                           [{"service": "boiler service", "date": d.isoformat()} for d in days])
    if name == "create-booking":
        return tool_events(env, "create-booking/apigw-create-booking.json", booking_bodies(n))
    if name == "twilio-messaging":
        return twilio_events(env, n)
    if name == "bench-hello":
        return [json.dumps({"hello": i}) for i in range(n)]
    raise SystemExit(f"no events for {name}")


def calls(endpoint, reset=False):
    request = urllib.request.Request(f"{endpoint}/_frontdesk/calls", method="DELETE" if reset else "GET")
    with urllib.request.urlopen(request) as r:
        return json.load(r)


def measure(name, command, env, n, endpoint, extra_env=None, cwd=ROOT, reuse=False):
    # The Python peer gets the very events the Rust function just had (it keeps no state).
    path = os.path.join(ROOT, ".local/bench", f"{name}.jsonl")
    if not reuse:
        with open(path, "w") as f:
            f.write("\n".join(events_for(name, env, n)) + "\n")
    args = [sys.executable, os.path.join(ROOT, "tests/bench/lambda_emulator.py"), "--events", path,
            "--name", name, "--calls-url", f"{endpoint}/_frontdesk/calls"]
    for k, v in {**env, **(extra_env or {})}.items():
        args += ["--env", f"{k}={v}"]
    calls(endpoint, reset=True)
    out = subprocess.run(args + ["--"] + command, capture_output=True, text=True, cwd=cwd, check=True).stdout
    result = json.loads(out)
    # What the invocations asked of AWS, per invocation (the Python peer makes the same).
    result["aws_calls"] = calls(endpoint)
    return result


def profile(counts, invocations):
    per = {k: round(v / invocations) for k, v in counts.items()}
    return {k: v for k, v in per.items() if v > 0}


def median(values):
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def main():
    os.makedirs(os.path.join(ROOT, ".local/bench"), exist_ok=True)
    moto, endpoint = start_moto()
    try:
        env = stack_env(endpoint)
        release = os.path.join(ROOT, "target/release")
        python = os.path.join(ROOT, ".venv-bench/bin/python")
        peer_dir = os.path.join(ROOT, "tests/bench/python_peer")
        rows = {}
        profiles = {}
        for run in range(RUNS):
            # Floor, functions and their Python peers side by side in each run: the machine's
            # drift hits them all alike.
            for name in ["bench-hello"] + FUNCTIONS:
                result = measure(name, [os.path.join(release, name)], env, WARM + 1, endpoint)
                if result["errors"]:
                    raise SystemExit(f"{name}: {json.dumps(result)[:1500]}")
                rows.setdefault(name, []).append(result)
                if name == "bench-hello":
                    continue
                profiles[name] = profile(result["aws_calls"], WARM + 1)
                peer = measure(name, [python, "-m", "awslambdaric", "peer.handler"], env, WARM + 1, endpoint,
                               {"BENCH_PROFILE": json.dumps(profiles[name]), "PYTHONPATH": peer_dir}, cwd=peer_dir,
                               reuse=True)
                if peer["errors"] or json.loads(json.loads(peer["first_response"])["body"])["skipped"]:
                    raise SystemExit(f"python peer of {name}: {json.dumps(peer)[:1500]}")
                rows.setdefault(f"{name} (python)", []).append(peer)
        summary = {}
        for name, results in rows.items():
            summary[name] = {k: median([r.get(k) for r in results])
                             for k in ("init_ms", "cold_ms", "warm_p50_ms", "warm_p99_ms", "peak_rss_kb", "aws_calls_at_init")}
        floor = summary["bench-hello"]["init_ms"]
        print(f"Start-up, median of {RUNS} runs ({WARM} warm invocations each); release binaries; moto as AWS; "
              "the Python peer makes the same AWS calls per invocation:")
        print(f"{'function':<30}{'init ms':>9}{'x floor':>9}{'AWS@init':>9}{'cold ms':>9}{'warm p50':>10}"
              f"{'warm p99':>10}{'peak RSS MB':>13}")
        for name, s in summary.items():
            print(f"{name:<30}{s['init_ms']:>9.2f}{s['init_ms'] / floor:>9.2f}{s['aws_calls_at_init']:>9}"
                  f"{s['cold_ms']:>9.2f}{s['warm_p50_ms']:>10.2f}{s['warm_p99_ms']:>10.2f}{s['peak_rss_kb'] / 1024:>13.1f}")
        print("\nRust against its Python peer (same run):")
        for name in FUNCTIONS:
            rust, py = summary[name], summary[f"{name} (python)"]
            print(f"  {name:<20} init {py['init_ms'] / rust['init_ms']:6.1f}x faster, cold invocation "
                  f"{py['cold_ms'] / rust['cold_ms']:5.1f}x faster; AWS calls per invocation {profiles[name]}")
        with open(os.path.join(ROOT, ".local/bench/startup.json"), "w") as f:
            json.dump({"runs": RUNS, "warm": WARM, "summary": summary, "profiles": profiles, "raw": rows}, f, indent=1)
    finally:
        moto.terminate()


if __name__ == "__main__":
    main()
