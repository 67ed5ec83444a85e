# The queue and tables the workflow runs on. Lambda wants the queue's visibility timeout to be
# at least the worker's timeout; the defaults fit (1800 s, six times the worker's 300 s, as AWS
# suggests).
resource "adf_workflow_tables" "flow" {
  name = "orders"
}

# The worker released with the provider, fed by the job queue, with two blueprints. Each
# blueprint is linted at plan time: a cycle, an unknown node type or an edge to a missing node
# is an error on blueprints["<name>"] that names the node.
resource "adf_workflow" "orders" {
  name   = "orders"
  tables = adf_workflow_tables.flow

  blueprints = {
    order = jsonencode({
      nodes = {
        validate = { uses = "pass" }
        charge = {
          uses        = "lambda"
          params      = { function = "charge-card" }
          max_retries = 2
          retry_delay = "2s"
          fallback    = "refund"
        }
        reserve = { uses = "pass" }
        ship    = { uses = "sleep", params = { duration = "1s" } }
        refund  = { uses = "pass" }
      }
      edges = [
        { from = "validate", to = "charge" },
        { from = "validate", to = "reserve" },
        { from = "charge", to = "ship" },
        { from = "reserve", to = "ship" },
      ]
    })
    refund = jsonencode({
      nodes = { refund = { uses = "pass" } }
    })
  }

  # The worker's role may invoke exactly these functions (the lambda nodes').
  invoke_function_arns = ["arn:aws:lambda:eu-west-1:123456789012:function:charge-card"]

  batch_size              = 10
  maximum_concurrency     = 5
  reconcile_every_minutes = 5
}

# What a client (adf_workflow::client, or your own code) needs to start and watch runs.
output "orders_client" {
  value = adf_workflow.orders.client_config
}

output "order_version" {
  value = adf_workflow.orders.blueprint_versions["order"]
}
