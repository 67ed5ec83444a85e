# A Lambda function built from source, reproducibly, with a managed least-privilege role, its
# log group and a Function URL (AWS_IAM auth unless you choose otherwise).

resource "adf_lambda_package" "this" {
  source_dir   = var.source_dir
  language     = var.language
  architecture = var.architecture
  binary       = var.binary
  handler      = var.handler
  excludes     = var.excludes
}

resource "adf_function" "this" {
  name    = var.name
  package = adf_lambda_package.this

  memory_size          = var.memory_size
  timeout              = var.timeout
  environment          = var.environment
  reserved_concurrency = var.reserved_concurrency
  log_retention_days   = var.log_retention_days
  role_arn             = var.role_arn
  policy_statements    = var.policy_statements
  bindings             = var.bindings
  publish              = var.publish
  tags                 = var.tags

  function_url = var.create_function_url ? {
    auth_type = var.function_url_auth_type
    cors      = var.cors
  } : null
}

locals {
  # All a caller's role needs to call the Function URL, signed.
  invoke_policy = {
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = ["lambda:InvokeFunctionUrl"]
      Resource  = [adf_function.this.arn]
      Condition = { StringEquals = { "lambda:FunctionUrlAuthType" = "AWS_IAM" } }
    }]
  }
}
