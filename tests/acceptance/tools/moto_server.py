"""moto server, as `moto_server -H HOST -p PORT` runs it, with DynamoDB requests serialized and
the Lambda settings moto drops kept.

moto's DynamoDB is not atomic under concurrent requests: TransactWriteItems snapshots the
tables and restores the snapshot on failure without a lock, so a failing transaction can undo
another one that succeeded meanwhile, and conditional writes check and write in separate steps.
DynamoDB itself makes each request atomic; serializing DynamoDB requests makes the emulator do
the same, so tests of conditional writes and transactions prove what they claim. Other services
keep moto's threaded server (SQS long polls must not block everything).

moto 5.2 drops a function's LoggingConfig and DeadLetterConfig, and UpdateFunctionConfiguration
ignores TracingConfig and EphemeralStorage. `keep_lambda_settings` stores them and reports them
as Lambda's GetFunction does, so a plan after an apply can show what AWS would.
"""

import argparse
import threading

from moto.awslambda.models import LambdaFunction
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


def logging_config(fn, given):
    """LoggingConfig as Lambda reports it: the function's own log group unless another is named,
    and with JSON the levels Lambda defaults to INFO."""
    given = given or {}
    config = {
        "LogFormat": given.get("LogFormat", "Text"),
        "LogGroup": given.get("LogGroup") or f"/aws/lambda/{fn.function_name}",
    }
    if config["LogFormat"] == "JSON":
        config["ApplicationLogLevel"] = given.get("ApplicationLogLevel", "INFO")
        config["SystemLogLevel"] = given.get("SystemLogLevel", "INFO")
    return config


def keep_lambda_settings():
    """Patches moto's LambdaFunction to keep the settings it drops (see the module's doc)."""
    init = LambdaFunction.__init__
    get_configuration = LambdaFunction.get_configuration
    update_configuration = LambdaFunction.update_configuration

    def patched_init(self, account_id, spec, region, version=1):
        init(self, account_id, spec, region, version)
        self.adf_logging = logging_config(self, spec.get("LoggingConfig"))
        self.adf_dead_letter = spec.get("DeadLetterConfig") or {}

    def patched_get_configuration(self, on_create=False):
        config = get_configuration(self, on_create)
        config["LoggingConfig"] = getattr(self, "adf_logging", None) or logging_config(self, None)
        # Lambda reports a dead-letter target only while there is one.
        if getattr(self, "adf_dead_letter", {}).get("TargetArn"):
            config["DeadLetterConfig"] = dict(self.adf_dead_letter)
        return config

    def patched_update_configuration(self, updates):
        if "LoggingConfig" in updates:
            self.adf_logging = logging_config(self, updates["LoggingConfig"])
        if "DeadLetterConfig" in updates:
            self.adf_dead_letter = updates["DeadLetterConfig"] or {}
        if "TracingConfig" in updates:
            self.tracing_config = updates["TracingConfig"]
        if "EphemeralStorage" in updates:
            self.ephemeral_storage = updates["EphemeralStorage"]["Size"]
        return update_configuration(self, updates)

    LambdaFunction.__init__ = patched_init
    LambdaFunction.get_configuration = patched_get_configuration
    LambdaFunction.update_configuration = patched_update_configuration


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    keep_lambda_settings()
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
