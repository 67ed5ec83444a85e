# A topic with four partitions, kept 30 days, in a bucket the provider creates.
resource "adf_stream_topic" "orders" {
  name           = "orders"
  partitions     = 4
  retention_days = 30
}

# The Function URL: producers and consumers sign their requests (AWS_IAM auth),
# so grant them lambda:InvokeFunctionUrl on orders_function_arn.
output "orders_endpoint" {
  value = adf_stream_topic.orders.endpoint
}

output "orders_function_arn" {
  value = adf_stream_topic.orders.function_arn
}

# A topic stored under a prefix of an existing bucket, deleted with its records on destroy.
resource "adf_stream_topic" "clicks" {
  name          = "clicks"
  bucket        = "my-data-lake"
  prefix        = "streams/"
  force_destroy = true
}
