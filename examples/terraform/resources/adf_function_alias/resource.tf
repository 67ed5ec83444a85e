resource "adf_lambda_package" "api" {
  source_dir = "${path.module}/api"
  language   = "rust"
}

# Every change publishes a numbered version.
resource "adf_function" "api" {
  name    = "orders-api"
  package = adf_lambda_package.api
  publish = true
}

# Callers, event sources and API routes use the alias ARN; it follows each new version.
resource "adf_function_alias" "live" {
  name             = "live"
  function         = adf_function.api
  function_version = adf_function.api.version
  description      = "What callers invoke"

  # A canary: keep 10% of invocations on version 3 while the new version takes the rest.
  # routing = { "3" = 0.1 }
}

output "live_arn" {
  value = adf_function_alias.live.arn
}
