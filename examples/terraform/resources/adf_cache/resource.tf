# DynamoDB with TTL: nothing to run.
resource "adf_cache" "api" {
  name = "api"
}

# Redis (an existing ElastiCache / Valkey cluster) in front of DynamoDB.
variable "redis_token" {
  type      = string
  sensitive = true
}

resource "adf_cache" "hot" {
  name             = "hot"
  redis_endpoint   = "master.hot.abc123.use1.cache.amazonaws.com:6379"
  redis_auth_token = var.redis_token
  dynamodb         = true
}
