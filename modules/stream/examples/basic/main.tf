# A topic with four partitions kept 7 days, and what a producer or consumer needs.

terraform {
  required_providers {
    adf = {
      source = "activedataflow/adf"
    }
  }
}

provider "adf" {}

module "orders" {
  source = "../.."

  name       = "orders"
  partitions = 4
}

output "endpoint" {
  value = module.orders.endpoint
}

output "client_policy_json" {
  value = module.orders.client_policy_json
}
