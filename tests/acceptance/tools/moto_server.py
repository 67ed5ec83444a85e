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

moto 5.2's MSK keeps every cluster CREATING, writes creation times without an offset, answers a
missing cluster with a 500, and has no GetBootstrapBrokers or broker updates. `msk_lifecycle`
makes a cluster (or an update) report its transitional state once and then ACTIVE, as MSK does
after some minutes; writes RFC 3339 times; answers NotFound; reports the bootstrap brokers MSK
would name for the cluster's authentication; and applies UpdateBrokerCount, UpdateBrokerType,
UpdateBrokerStorage and UpdateClusterKafkaVersion, each checking and bumping the cluster's
current version.
"""

import argparse
import json
import threading
import uuid
from datetime import datetime, timezone
from urllib.parse import unquote

from moto.awslambda.models import LambdaFunction
from moto.kafka.exceptions import BadRequestException, NotFoundException
from moto.kafka.models import KafkaBackend
from moto.kafka.responses import KafkaResponse
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


def bootstrap_brokers(cluster):
    """The bootstrap broker strings MSK reports for `cluster`, by its authentication."""
    region = cluster.region_name
    if cluster.cluster_type == "SERVERLESS":
        host = f"boot-{cluster.cluster_id[:8]}.c1.kafka-serverless.{region}.amazonaws.com"
        return {"bootstrapBrokerStringSaslIam": f"{host}:9098"}
    hosts = [
        f"b-{i}.{cluster.cluster_name}.{cluster.cluster_id[:6]}.c2.kafka.{region}.amazonaws.com"
        for i in range(1, (cluster.number_of_broker_nodes or 1) + 1)
    ]
    joined = lambda port: ",".join(f"{h}:{port}" for h in hosts)
    auth = cluster.client_authentication or {}
    in_transit = ((cluster.encryption_info or {}).get("encryptionInTransit") or {}).get("clientBroker", "TLS")
    out = {}
    if ((auth.get("sasl") or {}).get("iam") or {}).get("enabled"):
        out["bootstrapBrokerStringSaslIam"] = joined(9098)
    if in_transit in ("TLS", "TLS_PLAINTEXT"):
        out["bootstrapBrokerStringTls"] = joined(9094)
    if in_transit in ("PLAINTEXT", "TLS_PLAINTEXT"):
        out["bootstrapBrokerString"] = joined(9092)
    return out


def msk_lifecycle():
    """Patches moto's MSK (see the module's doc)."""
    create_cluster_v2 = KafkaBackend.create_cluster_v2
    describe_cluster_v2 = KafkaBackend.describe_cluster_v2
    delete_cluster = KafkaBackend.delete_cluster
    describe_response = KafkaResponse.describe_cluster_v2

    def cluster(backend, arn):
        if arn not in backend.clusters:
            raise NotFoundException(f"Cluster {arn} does not exist.")
        return backend.clusters[arn]

    def patched_create(self, cluster_name, tags, provisioned, serverless):
        out = create_cluster_v2(self, cluster_name, tags, provisioned, serverless)
        made = self.clusters[out[0]]
        # RFC 3339, as MSK writes it (moto leaves out the offset, which SDKs refuse).
        made.creation_time = datetime.now(timezone.utc).isoformat()
        if provisioned:
            made.client_authentication = provisioned.get("clientAuthentication")
            made.encryption_info = provisioned.get("encryptionInfo")
        return out

    def patched_describe(self, cluster_arn):
        cluster(self, cluster_arn)
        return describe_cluster_v2(self, cluster_arn)

    def described(self):
        """DescribeClusterV2's answer; a cluster that was changing is ACTIVE from then on (a
        ListClustersV2 does not move it on)."""
        out = describe_response(self)
        c = self.kafka_backend.clusters.get(unquote(self.uri_match["clusterArn"]))
        if c is not None and c.state in ("CREATING", "UPDATING"):
            c.state = "ACTIVE"
        return out

    def patched_delete(self, cluster_arn, current_version):
        cluster(self, cluster_arn)
        return delete_cluster(self, cluster_arn, current_version)

    def operation(response, change):
        """Applies `change` to the cluster the request names, as one MSK operation."""
        backend = response.kafka_backend
        arn = unquote(response.uri_match["clusterArn"])
        c = cluster(backend, arn)
        body = json.loads(response.body or "{}")
        if body.get("currentVersion") != c.current_version:
            raise BadRequestException(
                f"The cluster's current version is {c.current_version}, not {body.get('currentVersion')}."
            )
        if c.state != "ACTIVE":
            raise BadRequestException(f"The cluster is {c.state}; one operation at a time.")
        change(c, body)
        c.current_version = uuid.uuid4().hex[:14].upper()
        c.state = "UPDATING"
        operation_arn = arn.replace(":cluster/", ":cluster-operation/", 1) + "/" + str(uuid.uuid4())
        return json.dumps({"clusterArn": arn, "clusterOperationArn": operation_arn})

    def broker_info(c):
        c.broker_node_group_info = dict(c.broker_node_group_info or {})
        return c.broker_node_group_info

    def set_count(c, body):
        c.number_of_broker_nodes = int(body["targetNumberOfBrokerNodes"])

    def set_type(c, body):
        broker_info(c)["instanceType"] = body["targetInstanceType"]

    def set_storage(c, body):
        size = body["targetBrokerEBSVolumeInfo"][0]["volumeSizeGB"]
        broker_info(c)["storageInfo"] = {"ebsStorageInfo": {"volumeSize": size}}

    def set_version(c, body):
        c.kafka_version = body["targetKafkaVersion"]

    def get_bootstrap_brokers(self):
        c = cluster(self.kafka_backend, unquote(self.uri_match["clusterArn"]))
        return json.dumps(bootstrap_brokers(c))

    KafkaBackend.create_cluster_v2 = patched_create
    KafkaBackend.describe_cluster_v2 = patched_describe
    KafkaBackend.delete_cluster = patched_delete
    KafkaResponse.describe_cluster_v2 = described
    KafkaResponse.get_bootstrap_brokers = get_bootstrap_brokers
    KafkaResponse.update_broker_count = lambda self: operation(self, set_count)
    KafkaResponse.update_broker_type = lambda self: operation(self, set_type)
    KafkaResponse.update_broker_storage = lambda self: operation(self, set_storage)
    KafkaResponse.update_cluster_kafka_version = lambda self: operation(self, set_version)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    keep_lambda_settings()
    msk_lifecycle()
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
