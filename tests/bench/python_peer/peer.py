"""The usual alternative, for the start-up comparison (make bench): a Python Lambda handler
under awslambdaric that builds the same boto3 clients at init as the Rust function builds its
SDK clients, checks the request as the function does (the webhook's HMAC, the tool secret), and
makes the same AWS calls per invocation: the kinds and counts make bench counted on moto while
the Rust function ran (BENCH_PROFILE, JSON {"dynamodb:PutItem": 3, ...}).

It is not Frontdesk in Python: the AWS work is the same in kind and number, the business logic
is not reproduced. Its figures are the floor of what a Python function doing this work costs.
"""

import base64
import hashlib
import hmac
import json
import os
import time
import urllib.parse
import uuid

import boto3

# Init: the clients, as a Python function would build them at module load.
SESSION = boto3.session.Session()
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL")
DYNAMODB = SESSION.client("dynamodb", endpoint_url=ENDPOINT)
S3 = SESSION.client("s3", endpoint_url=ENDPOINT)
SQS = SESSION.client("sqs", endpoint_url=ENDPOINT)
EVENTS = SESSION.client("events", endpoint_url=ENDPOINT)
SCHEDULER = SESSION.client("scheduler", endpoint_url=ENDPOINT)
TABLE = os.environ["FRONTDESK_TABLE"]
BUCKET = os.environ["FRONTDESK_BUCKET"]
QUEUE = os.environ["FRONTDESK_RETRY_QUEUE_URL"]
BUS = os.environ["FRONTDESK_EVENT_BUS"]
TENANT = os.environ["FRONTDESK_TENANT_ID"]
PROFILE = json.loads(os.environ.get("BENCH_PROFILE", "{}"))
WEBHOOK_SECRET = os.environ.get("ELEVENLABS_WEBHOOK_SECRET", "").encode()
TOOL_SECRET = os.environ.get("TOOL_SECRET", "")
TWILIO_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "").encode()
PUBLIC_BASE = os.environ.get("FRONTDESK_PUBLIC_BASE_URL", "")
SCHEDULE_GROUP = os.environ.get("FRONTDESK_SCHEDULE_GROUP", "default")
SCHEDULE_TARGET = os.environ.get("FRONTDESK_SCHEDULE_TARGET_ARN", "")
SCHEDULER_ROLE = os.environ.get("FRONTDESK_SCHEDULER_ROLE_ARN", "")


def check_request(event):
    """What the Rust function checks before any AWS call; 401/403 as it answers."""
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    body = event.get("body") or ""
    path = event.get("rawPath", "")
    if path.endswith("/post-call"):
        parts = dict(p.split("=", 1) for p in headers.get("elevenlabs-signature", "").split(",") if "=" in p)
        expected = hmac.new(WEBHOOK_SECRET, f"{parts.get('t')}.{body}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts.get("v0", "")) or abs(time.time() - int(parts.get("t", 0))) > 1800:
            return 401
        json.loads(body)
    elif path.startswith("/tools/"):
        if not hmac.compare_digest(headers.get("x-frontdesk-tool-secret", ""), TOOL_SECRET):
            return 401
        json.loads(body)
    elif path.endswith("/twilio/messaging"):
        params = dict(urllib.parse.parse_qsl(body))
        signed = PUBLIC_BASE + path + "".join(k + params[k] for k in sorted(params))
        expected = base64.b64encode(hmac.new(TWILIO_TOKEN, signed.encode(), hashlib.sha1).digest()).decode()
        if not hmac.compare_digest(expected, headers.get("x-twilio-signature", "")):
            return 403
    return None


def key(kind):
    return {"PK": {"S": f"T#{TENANT}#BENCH#{kind}#{uuid.uuid4().hex}"}, "SK": {"S": "BENCH"}}


def aws_call(name, body, state):
    """One call of the kind the profile names, with a body of the request's size."""
    payload = body[:4000]
    if name == "dynamodb:GetItem":
        DYNAMODB.get_item(TableName=TABLE, Key={"PK": {"S": f"T#{TENANT}#CONFIG"}, "SK": {"S": "CONFIG"}})
    elif name == "dynamodb:PutItem":
        item = key("put")
        item["payload"] = {"S": payload or "-"}
        DYNAMODB.put_item(TableName=TABLE, Item=item, ConditionExpression="attribute_not_exists(PK)")
    elif name == "dynamodb:UpdateItem":
        DYNAMODB.update_item(TableName=TABLE, Key=key("update"), UpdateExpression="SET payload = :p, n = if_not_exists(n, :z) + :one",
                             ExpressionAttributeValues={":p": {"S": payload or "-"}, ":z": {"N": "0"}, ":one": {"N": "1"}})
    elif name == "dynamodb:Query":
        DYNAMODB.query(TableName=TABLE, IndexName="GSI1", KeyConditionExpression="GSI1PK = :p",
                       ExpressionAttributeValues={":p": {"S": f"T#{TENANT}#CALLS"}}, Limit=25)
    elif name == "dynamodb:TransactWriteItems":
        DYNAMODB.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {**key("tx"), "payload": {"S": "-"}}, "ConditionExpression": "attribute_not_exists(PK)"}}
            for _ in range(4)])
    elif name == "dynamodb:BatchGetItem":
        DYNAMODB.batch_get_item(RequestItems={TABLE: {"Keys": [{"PK": {"S": f"T#{TENANT}#CONFIG"}, "SK": {"S": "CONFIG"}}]}})
    elif name == "s3:PUT":
        state["object"] = f"bench/{uuid.uuid4().hex}.json"
        S3.put_object(Bucket=BUCKET, Key=state["object"], Body=body.encode(), ContentType="application/json")
    elif name in ("s3:GET", "s3:HEAD"):
        if "object" not in state:
            aws_call("s3:PUT", body, state)
        (S3.get_object if name == "s3:GET" else S3.head_object)(Bucket=BUCKET, Key=state["object"])
    elif name == "amazonsqs:SendMessage":
        SQS.send_message(QueueUrl=QUEUE, MessageBody=json.dumps({"job": "bench"}), DelaySeconds=0)
    elif name == "awsevents:PutEvents":
        EVENTS.put_events(Entries=[{"Source": "frontdesk", "DetailType": "bench", "Detail": json.dumps({"n": 1}), "EventBusName": BUS}])
    elif name in ("scheduler:POST", "scheduler:PUT"):
        schedule = {
            "Name": f"bench-{uuid.uuid4().hex[:20]}", "GroupName": SCHEDULE_GROUP,
            "ScheduleExpression": "at(2030-01-01T10:00:00)", "ScheduleExpressionTimezone": "Europe/London",
            "FlexibleTimeWindow": {"Mode": "OFF"}, "ActionAfterCompletion": "DELETE",
            "Target": {"Arn": SCHEDULE_TARGET, "RoleArn": SCHEDULER_ROLE, "Input": json.dumps({"job": "bench"})},
        }
        SCHEDULER.create_schedule(**schedule)
        state.setdefault("schedules", []).append(schedule["Name"])
    elif name == "scheduler:DELETE":
        if not state.get("schedules"):
            aws_call("scheduler:POST", body, state)
        SCHEDULER.delete_schedule(Name=state["schedules"].pop(), GroupName=SCHEDULE_GROUP)
    else:
        # Kinds the peer does not know are left out (counted by make bench, never silently).
        state.setdefault("skipped", []).append(name)


def handler(event, context):
    status = check_request(event)
    if status:
        return {"statusCode": status, "body": "{}"}
    state = {}
    body = event.get("body") or ""
    for name, count in PROFILE.items():
        for _ in range(count):
            aws_call(name, body, state)
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"ok": True, "skipped": state.get("skipped", [])})}
