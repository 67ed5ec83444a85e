resource "adf_lambda_package" "api" {
  source_dir = "${path.module}/api"
  language   = "rust"
}

resource "adf_function" "api" {
  name        = "orders-api"
  package     = adf_lambda_package.api
  memory_size = 512
  timeout     = 30
  environment = { LOG_LEVEL = "info" }

  # AWS_IAM auth unless you write auth_type = "NONE".
  function_url = {
    cors = { allow_origins = ["https://example.com"], allow_methods = ["GET", "POST"] }
  }

  # Extra permissions for the managed role, next to writing its own logs.
  policy_statements = jsonencode([{
    Effect   = "Allow"
    Action   = ["sqs:SendMessage"]
    Resource = ["arn:aws:sqs:eu-west-1:123456789012:orders-jobs"]
  }])
}

output "url" {
  value = adf_function.api.function_url.url
}
