# Quickstart: a workflow (queue, tables, worker), a Kafka-like topic, a Rust Lambda, and a
# Rust Lambda bound to a KV namespace, an object bucket and a cache, built on the modules in
# modules/.
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

# The queue and tables a workflow worker runs on, and the worker released with the provider on
# that queue with the order blueprint (validate -> [charge, reserve] -> ship), linted at plan
# time. The reconciler runs every 5 minutes and resumes stalled runs.
module "workflow" {
  source = "../../../modules/workflow"

  name              = var.name
  enabled           = var.worker_on_queue
  max_receive_count = 3
  timeout           = 60

  # At least the worker's timeout (Lambda's rule for an SQS event source).
  visibility_timeout_seconds = 180

  blueprints = {
    order = file("${path.module}/order.json")
  }

  reconcile_every_minutes = 5

  tags = {
    stage = "demo"
  }
}

output "queue_url" {
  value = module.workflow.queue_url
}

output "tables" {
  value = {
    contexts     = module.workflow.contexts_table_name
    statuses     = module.workflow.statuses_table_name
    coordination = module.workflow.coordination_table_name
  }
}

output "worker_policy_json" {
  value = module.workflow.worker_policy_json
}

output "workflow_function" {
  value = module.workflow.function_name
}

output "workflow_client" {
  value = module.workflow.client_config
}

# A Rust Lambda built from ./hello, reproducibly, and deployed with a Function URL (AWS_IAM
# auth) and a least-privilege role.
module "hello" {
  source = "../../../modules/function"

  name        = "${var.name}-hello"
  source_dir  = "${path.module}/hello"
  language    = "rust"
  memory_size = 256
  environment = { GREETING = "hello" }
}

output "hello_url" {
  value = module.hello.function_url
}

output "hello_zip" {
  value = module.hello.package_path
}

# A Kafka-like topic: segments in a private encrypted bucket, offsets in DynamoDB, served by
# the stream Lambda released with the provider behind an AWS_IAM Function URL.
module "orders" {
  source = "../../../modules/stream"

  name           = "${var.name}-orders"
  partitions     = 4
  retention_days = 7
  force_destroy  = true
}

output "orders_endpoint" {
  value = module.orders.endpoint
}

output "orders_function" {
  value = module.orders.function_name
}

# Stores for the bot below: a KV namespace (large values in its own bucket), an object bucket
# for browser uploads through presigned URLs, and a cache on DynamoDB with TTL.
resource "adf_kv_namespace" "sessions" {
  name          = "${var.name}-sessions"
  large_values  = true
  force_destroy = true
}

resource "adf_object_bucket" "uploads" {
  name          = "${var.name}-uploads"
  cors          = { allow_origins = ["https://example.com"] }
  force_destroy = true
}

resource "adf_cache" "cache" {
  name = "${var.name}-cache"
}

# A Rust Lambda built from ./bot that reaches the stores by name through
# adf_storage::Storage::from_env(): each binding grants least-privilege IAM on exactly that
# store and passes its settings. No policy or environment written by hand.
module "bot" {
  source = "../../../modules/function"

  name                = "${var.name}-bot"
  source_dir          = "${path.module}/bot"
  language            = "rust"
  memory_size         = 512
  timeout             = 60
  create_function_url = false

  bindings = {
    sessions = adf_kv_namespace.sessions.binding
    uploads  = adf_object_bucket.uploads.binding
    cache    = adf_cache.cache.binding
  }
}

output "bot_function" {
  value = module.bot.function_name
}

output "bot_zip" {
  value = module.bot.package_path
}

output "uploads_bucket" {
  value = adf_object_bucket.uploads.bucket_name
}
