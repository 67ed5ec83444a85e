output "endpoint" {
  description = "The Function URL serving the topic's HTTP API (ends in `/`): what producers and consumers call."
  value       = adf_stream_topic.this.endpoint
}

output "client_policy_json" {
  description = "Least-privilege IAM policy for a producer or consumer: `lambda:InvokeFunctionUrl` on the stream Lambda, AWS_IAM auth only."
  value       = jsonencode(local.client_policy)
}

output "function_name" {
  description = "Name of the stream Lambda, `adf-stream-<name>` (the `adf stream` CLI and the demo name it)."
  value       = adf_stream_topic.this.function_name
}

output "function_arn" {
  description = "ARN of the stream Lambda."
  value       = adf_stream_topic.this.function_arn
}

output "role_arn" {
  description = "The stream Lambda's least-privilege execution role."
  value       = adf_stream_topic.this.role_arn
}

output "log_group_name" {
  description = "The stream Lambda's log group."
  value       = adf_stream_topic.this.log_group_name
}

output "bucket_name" {
  description = "The bucket holding the segments."
  value       = adf_stream_topic.this.bucket_name
}

output "table_name" {
  description = "Name of the DynamoDB table of offsets, the segment index and consumer groups."
  value       = adf_stream_topic.this.table_name
}

output "table_arn" {
  description = "ARN of the DynamoDB table of offsets, the segment index and consumer groups."
  value       = adf_stream_topic.this.table_arn
}
