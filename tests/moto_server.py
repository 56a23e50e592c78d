"""moto's server, with DynamoDB writes made serializable.

moto applies TransactWriteItems by snapshotting the tables and restoring the snapshot when a
condition fails, without a lock: under concurrent requests a cancelled transaction can undo
another's committed writes or leave its own behind. DynamoDB itself is serializable, and the
booking tests exercise exactly that, so DynamoDB requests here run one at a time. Everything
else (SQS long polls among them) stays concurrent.

Usage: python tests/moto_server.py HOST PORT
"""

import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

DYNAMODB = threading.Lock()


def serialize_dynamodb(app):
    def wrapped(environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_"):
            with DYNAMODB:
                # Drain the body inside the lock: the app may read it lazily.
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wrapped


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    run_simple(host, port, serialize_dynamodb(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
