"""moto server, as `moto_server -H HOST -p PORT` runs it, with DynamoDB requests serialized.

moto's DynamoDB is not atomic under concurrent requests: TransactWriteItems snapshots the
tables and restores the snapshot on failure without a lock, so a failing transaction can undo
another one that succeeded meanwhile, and conditional writes check and write in separate steps.
DynamoDB itself makes each request atomic; serializing DynamoDB requests makes the emulator do
the same, so tests of conditional writes and transactions prove what they claim. Other services
keep moto's threaded server (SQS long polls must not block everything).
"""

import argparse
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

DYNAMODB_LOCK = threading.Lock()


class SerializeDynamoDB:
    """WSGI middleware: one DynamoDB request at a time."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with DYNAMODB_LOCK:
            # Consume the body inside the lock: the work happens while it is produced.
            return list(self.app(environ, start_response))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    run_simple(
        args.host,
        args.port,
        SerializeDynamoDB(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
