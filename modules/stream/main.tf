# A Kafka-like topic: segments in S3, offsets and consumer groups in DynamoDB, served by the
# stream Lambda released with the provider behind a Function URL.

resource "adf_stream_topic" "this" {
  name           = var.name
  partitions     = var.partitions
  retention_days = var.retention_days
  compression    = var.compression
  bucket         = var.bucket
  prefix         = var.prefix
  kms_key_arn    = var.kms_key_arn
  force_destroy  = var.force_destroy
  auth_type      = var.auth_type

  memory_size        = var.memory_size
  timeout            = var.timeout
  log_retention_days = var.log_retention_days
  lambda_zip         = var.lambda_zip
  tags               = var.tags
}

locals {
  # All a producer's or consumer's role needs: calling this topic's Function URL, signed.
  client_policy = {
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = ["lambda:InvokeFunctionUrl"]
      Resource  = [adf_stream_topic.this.function_arn]
      Condition = { StringEquals = { "lambda:FunctionUrlAuthType" = "AWS_IAM" } }
    }]
  }
}
