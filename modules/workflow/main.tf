# The queue and tables a workflow runs on, the worker released with the provider on that
# queue, and the reconciler's schedule.

locals {
  # Lambda requires the queue to hide a job at least as long as the worker may run; AWS
  # suggests six times the function timeout.
  visibility_timeout_seconds = coalesce(var.visibility_timeout_seconds, 6 * var.timeout)
}

resource "adf_workflow_tables" "this" {
  name                       = var.name
  fifo                       = var.fifo
  max_receive_count          = var.max_receive_count
  visibility_timeout_seconds = local.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  billing_mode               = var.billing_mode
  read_capacity              = var.read_capacity
  write_capacity             = var.write_capacity
  point_in_time_recovery     = var.point_in_time_recovery
  kms_key_arn                = var.kms_key_arn
  tags                       = var.tags
}

resource "adf_workflow" "this" {
  name       = var.name
  tables     = adf_workflow_tables.this
  blueprints = var.blueprints
  enabled    = var.enabled

  batch_size              = var.batch_size
  maximum_concurrency     = var.maximum_concurrency
  reconcile_every_minutes = var.reconcile_every_minutes

  memory_size          = var.memory_size
  timeout              = var.timeout
  log_retention_days   = var.log_retention_days
  worker_zip           = var.worker_zip
  invoke_function_arns = var.invoke_function_arns
  tags                 = var.tags
}
