# The queue, tables and worker of a two-step workflow, and what a client needs to start runs.

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

  name = "orders"
  blueprints = {
    order = jsonencode({
      nodes = {
        validate = { uses = "pass" }
        ship     = { uses = "sleep", params = { duration = "1s" } }
      }
      edges = [{ from = "validate", to = "ship" }]
    })
  }
}

output "client_config" {
  value = module.orders.client_config
}
