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

# What Lambda users of aws_lambda_function set: layers, X-Ray, a larger /tmp and a VPC.
# Active tracing and a VPC add their permissions to the managed role.
resource "adf_function" "worker" {
  name              = "orders-worker"
  package           = adf_lambda_package.api
  layers            = ["arn:aws:lambda:eu-west-1:123456789012:layer:shared-deps:4"]
  tracing           = "Active"
  ephemeral_storage = 2048
  vpc_config = {
    subnet_ids         = ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]
    security_group_ids = ["sg-0123abcd"]
  }
}

output "url" {
  value = adf_function.api.function_url.url
}
