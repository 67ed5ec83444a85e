# Quickstart: the queue and tables a workflow worker runs on, and a Rust Lambda.
#
#   cargo xtask demo     # builds the provider, starts moto, applies this, shows the outputs
#
# Against AWS, drop the endpoints (or AWS_ENDPOINT_URL) and use your usual credentials.

terraform {
  required_providers {
    adf = {
      source = "activedataflow/adf"
    }
  }
}

variable "worker_on_queue" {
  description = "Map the job queue to the worker. The demo sets false on moto, which cannot run Lambda code and would push every job to the dead-letter queue; it runs the deployed worker itself."
  type        = bool
  default     = true
}

variable "name" {
  description = "Prefix of every queue and table."
  type        = string
  default     = "quickstart"
}

provider "adf" {
  default_tags {
    tags = {
      project = "adf-quickstart"
    }
  }
}

resource "adf_workflow_tables" "flow" {
  name              = var.name
  max_receive_count = 3

  # At least the worker's timeout (Lambda's rule for an SQS event source).
  visibility_timeout_seconds = 180

  tags = {
    stage = "demo"
  }
}

output "queue_url" {
  value = adf_workflow_tables.flow.queue_url
}

output "tables" {
  value = {
    contexts     = adf_workflow_tables.flow.contexts_table_name
    statuses     = adf_workflow_tables.flow.statuses_table_name
    coordination = adf_workflow_tables.flow.coordination_table_name
  }
}

output "worker_policy_json" {
  value = adf_workflow_tables.flow.worker_policy_json
}

# A Rust Lambda built from ./hello, reproducibly, and deployed with a Function URL
# (AWS_IAM auth by default) and a least-privilege role.
resource "adf_lambda_package" "hello" {
  source_dir = "${path.module}/hello"
  language   = "rust"
}

resource "adf_function" "hello" {
  name         = "${var.name}-hello"
  package      = adf_lambda_package.hello
  memory_size  = 256
  environment  = { GREETING = "hello" }
  function_url = {}
}

output "hello_url" {
  value = adf_function.hello.function_url.url
}

output "hello_zip" {
  value = adf_lambda_package.hello.output_path
}

# A Kafka-like topic: segments in a private encrypted bucket, offsets in DynamoDB, served by
# the stream Lambda released with the provider behind an AWS_IAM Function URL.
resource "adf_stream_topic" "orders" {
  name           = "${var.name}-orders"
  partitions     = 4
  retention_days = 7
  force_destroy  = true
}

output "orders_endpoint" {
  value = adf_stream_topic.orders.endpoint
}

output "orders_function" {
  value = adf_stream_topic.orders.function_name
}

# The workflow worker released with the provider, on the queue above, with the order blueprint
# (validate -> [charge, reserve] -> ship), linted at plan time. The reconciler runs every 5
# minutes and resumes stalled runs.
resource "adf_workflow" "orders" {
  name    = var.name
  tables  = adf_workflow_tables.flow
  timeout = 60
  enabled = var.worker_on_queue

  blueprints = {
    order = file("${path.module}/order.json")
  }

  reconcile_every_minutes = 5
}

output "workflow_function" {
  value = adf_workflow.orders.function_name
}

output "workflow_client" {
  value = adf_workflow.orders.client_config
}
