"""moto server, as `moto_server -H HOST -p PORT` runs it, with DynamoDB requests serialized and
the Lambda settings moto drops kept.

moto's DynamoDB is not atomic under concurrent requests: TransactWriteItems snapshots the
tables and restores the snapshot on failure without a lock, so a failing transaction can undo
another one that succeeded meanwhile, and conditional writes check and write in separate steps.
DynamoDB itself makes each request atomic; serializing DynamoDB requests makes the emulator do
the same, so tests of conditional writes and transactions prove what they claim. Other services
keep moto's threaded server (SQS long polls must not block everything).

moto 5.2's TransactWriteItems deep-copies a table once for each of the transaction's items
that names it, to restore on failure, and the copies stay in memory: a benchmark of 5,000
transactions grew the server past 10 GB, each transaction slower than the last.
`snapshot_items_not_tables` saves only the items a transaction names and puts them back when
it fails, which restores the same state.

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

moto 5.2's CloudFormation makes a stack in one step: a resource that fails aborts CreateStack
with that resource's error and leaves the stack CREATE_IN_PROGRESS, events name only the stack,
and drift detection is missing (a 500). `cloudformation_lifecycle` records each resource's
CREATE/UPDATE events with the failing one's reason and rolls a failed stack back
(ROLLBACK_COMPLETE, UPDATE_ROLLBACK_COMPLETE), as CloudFormation does; reports a stack
CREATE_IN_PROGRESS or UPDATE_IN_PROGRESS to the first DescribeStacks after a change; takes new
tags alone as an update; counts a resource already gone as deleted; and detects
drift: an SQS queue's, S3 bucket's or DynamoDB table's deletion, and a queue's attributes that
differ from the template (other types are NOT_CHECKED, as CloudFormation leaves unsupported
types).
"""

import argparse
import json
import threading
import uuid
from datetime import datetime, timezone
from urllib.parse import unquote

from moto.awslambda.models import LambdaFunction
from moto.cloudformation import parsing as cfn_parsing
from moto.cloudformation.models import CloudFormationBackend, Event, Stack
from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult
from moto.core.utils import camelcase_to_underscores
from moto.dynamodb.models import dynamodb_backends
from moto.kafka.exceptions import BadRequestException, NotFoundException
from moto.kafka.models import KafkaBackend
from moto.kafka.responses import KafkaResponse
from moto.s3.models import s3_backends
from moto.sqs.models import sqs_backends
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


def snapshot_items_not_tables():
    import copy

    import moto.dynamodb.models as models
    from moto.dynamodb.models import DynamoDBBackend

    class LiveTables:
        """`copy` as moto's transaction sees it: its "snapshot" is the live table."""

        @staticmethod
        def deepcopy(obj):
            return obj

    original = DynamoDBBackend.transact_write_items

    def before(backend, transact_items):
        """Each item the transaction names, as it is now (None: absent)."""
        saved = []
        for element in transact_items:
            try:
                op_type, op = next(iter(element.items()))
                table = backend.tables[op["TableName"]]
                given = op["Item"] if op_type == "Put" else op["Key"]
                key = {table.hash_key_attr: given[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = given[table.range_key_attr]
                current = backend.get_item(op["TableName"], key)
            except Exception:
                continue  # moto's own checks answer for a malformed element
            saved.append((op["TableName"], key, current.to_json()["Attributes"] if current else None))
        return saved

    def patched(self, transact_items):
        # DynamoDB requests are serialized (SerializeDynamoDB), so nothing else sees the swap
        # or the items between a failed element and their restoration.
        saved = before(self, transact_items)
        models.copy = LiveTables()
        try:
            return original(self, transact_items)
        except Exception:
            for table_name, key, old in reversed(saved):
                if old is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, old)
            raise
        finally:
            models.copy = copy

    DynamoDBBackend.transact_write_items = patched


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


def resource_event(stack, logical_id, resource_type, status, reason=None, physical=None):
    """Records a resource's event in `stack`'s events, as CloudFormation does."""
    stack.events.append(
        Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=physical,
            resource_type=resource_type,
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
    )


def handler_reason(error):
    """A resource failure's reason as CloudFormation words it."""
    code = getattr(error, "error_type", None) or getattr(error, "code", None)
    message = getattr(error, "message", None) or str(error)
    code = code if isinstance(code, str) else type(error).__name__
    return f'Resource handler returned message: "{message}" (HandlerErrorCode: {code})'


# The SQS queue properties drift detection compares, as the template names them.
QUEUE_PROPERTIES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
)


def queue_drift(stack, resource, expected):
    """None when the queue is gone; else its actual values of the expected properties."""
    queue = sqs_backends[stack.account_id][stack.region_name].queues.get(resource.name)
    if queue is None:
        return None
    return {
        key: str(getattr(queue, camelcase_to_underscores(key)))
        for key in QUEUE_PROPERTIES
        if key in expected
    }


def bucket_drift(stack, resource, expected):
    buckets = s3_backends[stack.account_id]["aws"].buckets
    return {} if resource.name in buckets else None


def table_drift(stack, resource, expected):
    tables = dynamodb_backends[stack.account_id][stack.region_name].tables
    return {} if resource.name in tables else None


DRIFT_CHECKS = {
    "AWS::SQS::Queue": queue_drift,
    "AWS::S3::Bucket": bucket_drift,
    "AWS::DynamoDB::Table": table_drift,
}


def resource_drift(stack, logical_id, resource):
    """One StackResourceDrift of `stack`'s resource `logical_id`."""
    resource_json = stack.resource_map._resource_json_map[logical_id]
    resource_type = resource_json["Type"]
    drift = {
        "StackId": stack.stack_id,
        "LogicalResourceId": logical_id,
        "PhysicalResourceId": resource.physical_resource_id,
        "ResourceType": resource_type,
        "Timestamp": datetime.now(timezone.utc),
        "PropertyDifferences": [],
    }
    check = DRIFT_CHECKS.get(resource_type)
    if check is None:
        drift["StackResourceDriftStatus"] = "NOT_CHECKED"
        return drift
    expected = cfn_parsing.clean_json(resource_json.get("Properties", {}), stack.resource_map)
    actual = check(stack, resource, expected)
    if actual is None:
        drift["StackResourceDriftStatus"] = "DELETED"
        return drift
    differences = [
        {
            "PropertyPath": f"/{key}",
            "ExpectedValue": str(expected[key]),
            "ActualValue": value,
            "DifferenceType": "NOT_EQUAL",
        }
        for key, value in sorted(actual.items())
        if str(expected[key]) != value
    ]
    drift["ExpectedProperties"] = json.dumps({k: str(expected[k]) for k in actual})
    drift["ActualProperties"] = json.dumps(actual)
    drift["PropertyDifferences"] = differences
    drift["StackResourceDriftStatus"] = "MODIFIED" if differences else "IN_SYNC"
    return drift


class NoOutputs(dict):
    """The outputs of a stack that has none."""

    exports = []


def cloudformation_lifecycle():
    """Patches moto's CloudFormation (see the module's doc)."""
    stacks = {}
    detections = {}
    stack_init = Stack.__init__
    create_resources = Stack.create_resources
    update = Stack.update
    create_resource = cfn_parsing.parse_and_create_resource
    update_resource = cfn_parsing.parse_and_update_resource
    delete_resource = cfn_parsing.ResourceMap._delete_resource
    create_stack = CloudFormationBackend.create_stack
    update_stack = CloudFormationBackend.update_stack
    describe_stacks = CloudFormationResponse.describe_stacks
    validate_different_update = CloudFormationResponse._validate_different_update

    def patched_init(self, stack_id, *args, **kwargs):
        stacks[stack_id] = self
        stack_init(self, stack_id, *args, **kwargs)

    def with_events(make, verb):
        def patched(logical_id, resource_json, resources_map, *args, **kwargs):
            stack = stacks.get(resources_map.stack_id)
            resource_type = resource_json.get("Type")
            if stack is not None:
                resource_event(stack, logical_id, resource_type, f"{verb}_IN_PROGRESS")
            try:
                made = make(logical_id, resource_json, resources_map, *args, **kwargs)
            except Exception as e:
                if stack is not None:
                    resource_event(stack, logical_id, resource_type, f"{verb}_FAILED", handler_reason(e))
                raise
            if stack is not None and made is not None:
                physical = getattr(made, "physical_resource_id", None)
                resource_event(stack, logical_id, resource_type, f"{verb}_COMPLETE", physical=physical)
            return made

        return patched

    def failed_resources(stack):
        return sorted({e.logical_resource_id for e in stack.events if e.resource_status.endswith("_FAILED")})

    def patched_create_resources(self):
        try:
            create_resources(self)
        except Exception:
            failed = ", ".join(failed_resources(self))
            self._add_stack_event(
                "ROLLBACK_IN_PROGRESS",
                f"The following resource(s) failed to create: [{failed}]. Rollback requested by user.",
            )
            self.resource_map.delete()
            # A rolled back stack has no outputs (moto's would make their resources again).
            self.output_map = NoOutputs()
            self._add_stack_event("ROLLBACK_COMPLETE")
            self.status = "ROLLBACK_COMPLETE"

    def patched_update(self, template, role_arn=None, parameters=None, tags=None):
        before = (self.template, dict(self.parameters), dict(self.tags))
        try:
            update(self, template, role_arn, parameters, tags)
        except Exception:
            failed = ", ".join(failed_resources(self))
            self._add_stack_event(
                "UPDATE_ROLLBACK_IN_PROGRESS",
                f"The following resource(s) failed to update: [{failed}].",
            )
            self.template, self.parameters, self.tags = before
            self._parse_template()
            self._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
            self.status = "UPDATE_ROLLBACK_COMPLETE"

    def patched_delete_resource(self, resource, resource_json):
        # What is gone already counts as deleted, as CloudFormation's handlers count it.
        try:
            delete_resource(self, resource, resource_json)
        except Exception as e:
            code = str(getattr(e, "error_type", None) or getattr(e, "code", ""))
            if not any(gone in code for gone in ("NonExistent", "NotFound", "NoSuch")):
                raise

    def in_progress(stack, status):
        """Shows `stack` in `status` until a DescribeStacks has seen it so."""
        stack.adf_settles_to = stack.status
        stack.adf_seen = False
        stack.status = status

    def patched_create_stack(self, *args, **kwargs):
        stack = create_stack(self, *args, **kwargs)
        in_progress(stack, "CREATE_IN_PROGRESS")
        return stack

    def patched_update_stack(self, *args, **kwargs):
        stack = update_stack(self, *args, **kwargs)
        in_progress(stack, "UPDATE_IN_PROGRESS")
        return stack

    def patched_validate_different_update(self, incoming_params, stack_body, old_stack):
        # New tags alone are an update too (moto compares only the template and parameters).
        tags = {t["Key"]: t["Value"] for t in self._get_param("Tags", [])}
        if tags and tags != old_stack.tags:
            return
        validate_different_update(self, incoming_params, stack_body, old_stack)

    def patched_describe_stacks(self):
        # A stack seen changing once has settled by the next look.
        for stack in list(stacks.values()):
            if getattr(stack, "adf_seen", False):
                stack.status = stack.adf_settles_to
                del stack.adf_settles_to, stack.adf_seen
        out = describe_stacks(self)
        for stack in stacks.values():
            if hasattr(stack, "adf_settles_to"):
                stack.adf_seen = True
        return out

    def detect_stack_drift(self):
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        resources = stack.resource_map._parsed_resources
        drifts = [
            resource_drift(stack, logical_id, resource)
            for logical_id, resource in resources.items()
            if getattr(resource, "logical_resource_id", None) == logical_id
        ]
        detection_id = str(uuid.uuid4())
        detections[detection_id] = (stack, drifts, datetime.now(timezone.utc))
        stack.adf_drifts = drifts
        return ActionResult({"StackDriftDetectionId": detection_id})

    def describe_stack_drift_detection_status(self):
        detection_id = self._get_param("StackDriftDetectionId")
        stack, drifts, at = detections[detection_id]
        drifted = [d for d in drifts if d["StackResourceDriftStatus"] in ("MODIFIED", "DELETED")]
        return ActionResult(
            {
                "StackId": stack.stack_id,
                "StackDriftDetectionId": detection_id,
                "StackDriftStatus": "DRIFTED" if drifted else "IN_SYNC",
                "DetectionStatus": "DETECTION_COMPLETE",
                "DriftedStackResourceCount": len(drifted),
                "Timestamp": at,
            }
        )

    def describe_stack_resource_drifts(self):
        stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
        wanted = self._get_param("StackResourceDriftStatusFilters", [])
        drifts = [
            d for d in getattr(stack, "adf_drifts", []) if not wanted or d["StackResourceDriftStatus"] in wanted
        ]
        return ActionResult({"StackResourceDrifts": drifts})

    cfn_parsing.ResourceMap._delete_resource = patched_delete_resource
    Stack.__init__ = patched_init
    Stack.create_resources = patched_create_resources
    Stack.update = patched_update
    cfn_parsing.parse_and_create_resource = with_events(create_resource, "CREATE")
    cfn_parsing.parse_and_update_resource = with_events(update_resource, "UPDATE")
    CloudFormationBackend.create_stack = patched_create_stack
    CloudFormationBackend.update_stack = patched_update_stack
    CloudFormationResponse.describe_stacks = patched_describe_stacks
    CloudFormationResponse._validate_different_update = patched_validate_different_update
    CloudFormationResponse.detect_stack_drift = detect_stack_drift
    CloudFormationResponse.describe_stack_drift_detection_status = describe_stack_drift_detection_status
    CloudFormationResponse.describe_stack_resource_drifts = describe_stack_resource_drifts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    snapshot_items_not_tables()
    keep_lambda_settings()
    msk_lifecycle()
    cloudformation_lifecycle()
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
