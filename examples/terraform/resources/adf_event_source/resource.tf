resource "adf_lambda_package" "worker" {
  source_dir = "${path.module}/worker"
  language   = "rust"
}

resource "adf_function" "worker" {
  name    = "orders-worker"
  package = adf_lambda_package.worker
  timeout = 30
}

# A queue: up to 50 messages a batch, gathered for up to 5 seconds, at most 5 concurrent
# invocations. The function answers batchItemFailures, so only the failed messages come back.
resource "adf_event_source" "jobs" {
  function                = adf_function.worker
  source_arn              = "arn:aws:sqs:eu-west-1:123456789012:orders-jobs"
  batch_size              = 50
  batching_window_seconds = 5
  maximum_concurrency     = 5
  enabled                 = true
}

# A DynamoDB table's stream (such as aws_dynamodb_table.orders.stream_arn), from the oldest
# record it keeps (24 hours).
resource "adf_event_source" "orders" {
  function          = adf_function.worker
  source_arn        = "arn:aws:dynamodb:eu-west-1:123456789012:table/orders/stream/2026-12-01T00:00:00.000"
  starting_position = "TRIM_HORIZON"
}

# A Kinesis data stream, from new records on, 100 a batch.
resource "adf_event_source" "clicks" {
  function   = adf_function.worker
  source_arn = "arn:aws:kinesis:eu-west-1:123456789012:stream/clicks"
}
