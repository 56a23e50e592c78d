"""moto's server, with DynamoDB writes made serializable.

moto applies TransactWriteItems by snapshotting the tables and restoring the snapshot when a
condition fails, without a lock: under concurrent requests a cancelled transaction can undo
another's committed writes or leave its own behind. DynamoDB itself is serializable, and the
booking tests exercise exactly that, so DynamoDB requests here run one at a time. Everything
else (SQS long polls among them) stays concurrent.

It also counts the AWS calls it serves, by service and action, for the benchmarks: GET
/_frontdesk/calls answers the counts since the last DELETE /_frontdesk/calls.

Usage: python tests/moto_server.py HOST PORT
"""

import collections
import copy
import json
import sys
import threading
import urllib.parse

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

DYNAMODB = threading.Lock()


CALLS = collections.Counter()
CALLS_LOCK = threading.Lock()


def call_name(environ) -> str:
    """service:action of a request, as far as its headers and query say (S3: the method)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        service, _, action = target.partition(".")
        return f"{service.split('_')[0].lower()}:{action}"
    auth = environ.get("HTTP_AUTHORIZATION", "")
    service = auth.split("Credential=", 1)[-1].split("/")[3] if "Credential=" in auth else "?"
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    action = query.get("Action", [None])[0]
    if service == "s3":
        return f"s3:{environ.get('REQUEST_METHOD')}"
    if service == "scheduler":
        return f"scheduler:{environ.get('REQUEST_METHOD')}"
    return f"{service}:{action or environ.get('REQUEST_METHOD')}"


def serialize_dynamodb(app):
    def wrapped(environ, start_response):
        if environ.get("PATH_INFO") == "/_frontdesk/calls":
            with CALLS_LOCK:
                body = json.dumps(CALLS).encode()
                if environ.get("REQUEST_METHOD") == "DELETE":
                    CALLS.clear()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        with CALLS_LOCK:
            CALLS[call_name(environ)] += 1
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_"):
            with DYNAMODB:
                # Drain the body inside the lock: the app may read it lazily.
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wrapped


def cheap_transaction_rollback() -> None:
    """moto snapshots every table a transaction touches with a deep copy, once per item in the
    transaction, to roll back a cancelled one: a booking's transaction over a table of a few
    thousand items took most of a second. With DynamoDB requests serialized (above), saving
    just the items the transaction touches and putting them back on failure is the same
    rollback, at the cost of the items themselves."""
    import moto.dynamodb.models as models

    class NoTableCopies:
        # What moto's module calls as `copy.deepcopy` for its snapshots: no copy (the rollback
        # below restores the touched items instead). Anything else is still deep-copied.
        @staticmethod
        def deepcopy(value, memo=None):
            if isinstance(value, models.Table):
                return value
            return copy.deepcopy(value, memo)

    models.copy = NoTableCopies
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        saved = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            name = op.get("TableName")
            if name not in self.tables:
                continue
            table = self.tables[name]
            if "Item" in op:
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None and table.range_key_attr in attrs:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op.get("Key")
            if not key:
                continue
            try:
                current = self.get_item(name, key)
            except Exception:
                current = None
            before = copy.deepcopy(current.to_json()["Attributes"]) if current else None
            saved.append((name, key, before))
        try:
            return original(self, transact_items)
        except Exception:
            for name, key, before in reversed(saved):
                try:
                    if before is None:
                        self.delete_item(name, key)
                    else:
                        self.put_item(name, before)
                except Exception:
                    pass
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items


def queries_without_sorting_the_table() -> None:
    """moto's Query starts from every item of the table, sorted (then keeps the matching ones
    and sorts those again): a query of a table of a few thousand items took a tenth of a
    second. A key query only needs its partition, and an index query every item in any order;
    what is returned, and its order, is what moto computes from them."""
    from moto.dynamodb.models.table import Table

    original = Table.query

    def query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
              scan_index_forward, projection_expressions, index_name=None, *rest, **kwargs):
        if index_name is None and hash_key is not None:
            partition = self.items.get(hash_key)
            if partition is None:
                candidates = []
            elif self.range_key_attr:
                candidates = list(partition.values())
            else:
                candidates = [partition]
        else:
            candidates = []
            for partition in self.items.values():
                if self.range_key_attr:
                    candidates.extend(partition.values())
                else:
                    candidates.append(partition)
        self.all_items = lambda: candidates
        try:
            return original(self, hash_key, range_comparison, range_objs, limit,
                            exclusive_start_key, scan_index_forward, projection_expressions,
                            index_name, *rest, **kwargs)
        finally:
            del self.all_items

    Table.query = query


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    cheap_transaction_rollback()
    queries_without_sorting_the_table()
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    run_simple(host, port, serialize_dynamodb(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
