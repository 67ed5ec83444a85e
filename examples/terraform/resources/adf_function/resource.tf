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

# Stores the code reaches through adf_storage::Storage::from_env(): each binding adds
# least-privilege IAM on exactly that store and its settings.
resource "adf_kv_namespace" "sessions" { name = "sessions" }
resource "adf_object_bucket" "uploads" { name = "uploads" }

resource "adf_function" "bot" {
  name    = "bot"
  package = adf_lambda_package.api
  bindings = {
    sessions = adf_kv_namespace.sessions.binding
    uploads  = merge(adf_object_bucket.uploads.binding, { access = "read" })
  }
}

output "url" {
  value = adf_function.api.function_url.url
}
