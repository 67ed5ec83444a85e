resource "adf_lambda_package" "api" {
  source_dir = "${path.module}/api"
  language   = "go"
}

resource "adf_function" "api" {
  name    = "orders-api"
  package = adf_lambda_package.api
}

resource "adf_http_api" "orders" {
  name = "orders"
  routes = {
    "POST /orders"          = { function = adf_function.api }
    "GET /orders/{orderId}" = { function = adf_function.api, authorization = "AWS_IAM" }
  }
  cors = { allow_origins = ["https://example.com"], allow_methods = ["GET", "POST"] }

  # Per-stage throttling (requests per second, burst) and access log retention.
  throttling_rate_limit  = 50
  throttling_burst_limit = 100
  log_retention_days     = 30

  tags = { team = "orders" }
}

# JWT routes need the authorizer: tokens from the Authorization header.
#   jwt = {
#     issuer   = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_EXAMPLE"
#     audience = ["6example0client0id"]
#   }

output "orders_endpoint" {
  value = adf_http_api.orders.api_endpoint
}
