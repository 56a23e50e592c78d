#!/usr/bin/env python3
"""Backend cost per 1,000 calls, from what `make bench` measured (test tooling).

Reads .local/bench/startup.json (tests/bench/startup.py: each function's warm and cold
durations, its initialisation, and the AWS calls one invocation makes, counted on moto) and
template.yaml (each function's memory), prices one call's work at AWS list prices and prints it
beside the voice platform's per-minute price, so the backend's share is plain.

What one call is made of (the SPEC's flow; the functions startup.py does not run are priced with
the profile of the measured function nearest to them, named below) is CALL_MIX. Durations are
measured against moto, which answers far slower than DynamoDB (its DynamoDB requests are
serialised), so Lambda compute here is an upper bound; requests, item writes and API calls are
counted, not estimated.
"""

import json
import math
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# AWS list prices, USD, us-east-1 (eu-west-2 is within ~10% of these), as published on
# 2026-12-03; check aws.amazon.com/<service>/pricing before quoting them.
PRICES = {
    "lambda_request": 0.20 / 1e6,  # per invocation
    "lambda_arm_gb_s": 0.0000133334,  # per GB-second, arm64, first 7.5 billion GB-s a month
    "http_api_request": 1.00 / 1e6,  # API Gateway HTTP API, first 300 million a month
    "dynamodb_wru": 0.625 / 1e6,  # on-demand write request unit (1 KB; transactions 2 per KB)
    "dynamodb_rru": 0.125 / 1e6,  # on-demand read request unit (4 KB, eventually consistent)
    "s3_put": 0.005 / 1000,  # PUT, COPY, POST, LIST
    "s3_get": 0.0004 / 1000,
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB chunk
    "eventbridge_event": 1.00 / 1e6,  # custom events put on a bus
    "scheduler_invocation": 1.00 / 1e6,  # EventBridge Scheduler, per scheduled invocation
}

# The voice platform, per minute of call, list prices of 2026-12-03: ElevenLabs Agents
# 400 credits a minute on Creator at $0.30 per 1,000 credits (= $0.12), 800 credits on Business
# at its lower credit price (about $0.08 a minute); the LLM is passed through on top. Twilio
# inbound voice to a local number: about $0.0085 a minute (US), more for UK numbers.
VOICE_PER_MINUTE = {"ElevenLabs Agents (Business, ~$0.08)": 0.08, "ElevenLabs Agents (Creator, $0.12)": 0.12}
TWILIO_VOICE_PER_MINUTE = 0.0085
AVERAGE_CALL_MINUTES = 3.0

# Item sizes: the call record and the stored webhook are the large writes (a few KB); the rest
# are small. Write units per write: 1 below 1 KB; we count the large ones as 4 KB.
LARGE_WRITES_PER_POST_CALL = 2
LARGE_WRITE_KB = 4

# One call: (function, invocations per call, measured profile it is priced with, via HTTP API).
CALL_MIX = [
    ("conversation-init", 1.0, "check-availability", True),  # one contact read, like a slot query
    ("check-availability", 2.0, "check-availability", True),
    ("create-booking", 0.5, "create-booking", True),  # half the calls book
    ("upsert-contact / capture-lead / log-call", 1.0, "create-booking", True),  # upper bound
    ("post-call (transcription)", 1.0, "post-call", True),
    ("post-call (audio)", 1.0, "check-availability", True),  # one S3 put, one update
    ("retry-worker (texts sent)", 1.3, "twilio-messaging", False),  # caller text + 30% owner alerts
    ("twilio-status (2 callbacks a text)", 2.6, "check-availability", True),
    ("twilio-messaging (caller replies)", 0.5, "twilio-messaging", True),
]
# Of every 100 invocations, how many start a new execution environment (init is billed).
COLD_SHARE = 0.05


def memory_mb(template):
    """MemorySize per binary from template.yaml (the Globals' value when a function sets none)."""
    text = open(template).read()
    default = int(re.search(r"Globals:.*?MemorySize:\s*(\d+)", text, re.S).group(1))
    sizes = {}
    for block in re.split(r"\n  [A-Za-z]+Function:\n", text)[1:]:
        binary = re.search(r"Binary:\s*(\S+)", block)
        if binary:
            own = re.search(r"\n      MemorySize:\s*(\d+)", block.split("\n  [A-Za-z]", 1)[0])
            sizes[binary.group(1)] = int(own.group(1)) if own else default
    return sizes


def per_invocation_cost(profile, warm_ms, init_ms, memory):
    gb = memory / 1024
    billed_ms = math.ceil(warm_ms) + COLD_SHARE * math.ceil(init_ms)
    costs = {
        "lambda": PRICES["lambda_request"] + gb * billed_ms / 1000 * PRICES["lambda_arm_gb_s"],
        "dynamodb": 0.0,
        "s3": 0.0,
        "sqs": 0.0,
        "events": 0.0,
    }
    for call, n in profile.items():
        service, _, action = call.partition(":")
        if service == "dynamodb":
            if action in ("GetItem", "Query"):
                costs["dynamodb"] += n * PRICES["dynamodb_rru"]
            elif action == "TransactWriteItems":
                # Two items a transaction (a booking's cells, a message and its outbox row).
                costs["dynamodb"] += n * 2 * 2 * PRICES["dynamodb_wru"]
            else:
                costs["dynamodb"] += n * PRICES["dynamodb_wru"]
        elif service == "s3":
            costs["s3"] += n * (PRICES["s3_get"] if action == "GET" else PRICES["s3_put"])
        elif service == "amazonsqs":
            costs["sqs"] += n * PRICES["sqs_request"]
        elif service == "awsevents":
            costs["events"] += n * PRICES["eventbridge_event"]
        elif service == "scheduler":
            # Creating a schedule is an API call (free); each schedule fires once later.
            costs["events"] += n * PRICES["scheduler_invocation"]
    return costs


def main():
    path = os.path.join(ROOT, ".local/bench/startup.json")
    if not os.path.exists(path):
        sys.exit("no .local/bench/startup.json: run tests/bench/startup.py (make bench) first")
    bench = json.load(open(path))
    summary, profiles = bench["summary"], bench["profiles"]
    memory = memory_mb(os.path.join(ROOT, "template.yaml"))
    total = {}
    rows = []
    for name, per_call, measured, http in CALL_MIX:
        s = summary[measured]
        binary = name.split(" ")[0]
        mem = memory.get(binary, memory.get(measured, 128))
        costs = per_invocation_cost(profiles[measured], s["warm_p50_ms"], s["init_ms"], mem)
        if http:
            costs["api gateway"] = PRICES["http_api_request"]
        if name.startswith("post-call (transcription)"):
            costs["dynamodb"] += LARGE_WRITES_PER_POST_CALL * (LARGE_WRITE_KB - 1) * PRICES["dynamodb_wru"]
        for k, v in costs.items():
            total[k] = total.get(k, 0.0) + v * per_call * 1000
        rows.append((name, per_call, measured, mem, s["warm_p50_ms"], sum(costs.values()) * per_call * 1000))
    backend = sum(total.values())
    print("Backend cost per 1,000 calls (AWS list prices, us-east-1; durations measured against moto,")
    print(f"so compute is an upper bound; {COLD_SHARE:.0%} of invocations cold, init billed):")
    print(f"{'work in a call':<42}{'per call':>9}{'priced as':>20}{'MB':>6}{'ms':>8}{'$ / 1,000 calls':>17}")
    for name, per_call, measured, mem, ms, usd in rows:
        print(f"{name:<42}{per_call:>9.1f}{measured:>20}{mem:>6}{ms:>8.1f}{usd:>17.4f}")
    print("by service: " + ", ".join(f"{k} ${v:.4f}" for k, v in sorted(total.items(), key=lambda kv: -kv[1])))
    print(f"backend total: ${backend:.4f} per 1,000 calls (${backend / 1000:.6f} a call)")
    minutes = 1000 * AVERAGE_CALL_MINUTES
    for label, price in VOICE_PER_MINUTE.items():
        voice = minutes * (price + TWILIO_VOICE_PER_MINUTE)
        print(f"voice platform, {label} + Twilio ${TWILIO_VOICE_PER_MINUTE}/min, {AVERAGE_CALL_MINUTES:.0f}-minute calls: "
              f"${voice:.2f} per 1,000 calls; the backend is {100 * backend / (backend + voice):.3f}% of the total")
    out = {"per_1000_calls_usd": backend, "by_service": total, "rows": rows, "prices": PRICES,
           "call_mix": CALL_MIX, "cold_share": COLD_SHARE, "average_call_minutes": AVERAGE_CALL_MINUTES}
    with open(os.path.join(ROOT, ".local/bench/cost.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
