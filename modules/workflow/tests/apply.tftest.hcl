# Applies the module for real (against moto in the acceptance tests: set AWS_ENDPOINT_URL),
# then updates it in place. moto stores Lambda functions but cannot run them, so the worker is
# kept off the queue.

variables {
  name    = "tftest-workflow"
  enabled = false
  blueprints = {
    hello = jsonencode({ nodes = { hello = { uses = "pass" } } })
  }
}

run "creates_tables_worker_and_schedule" {
  command = apply

  assert {
    condition     = output.contexts_table_name == "${var.name}-contexts" && output.statuses_table_name == "${var.name}-statuses" && output.coordination_table_name == "${var.name}-coordination"
    error_message = "The tables are not named after var.name."
  }

  assert {
    condition     = output.function_name == "adf-workflow-${var.name}"
    error_message = "The worker is not adf-workflow-<name>."
  }

  assert {
    condition     = output.client_config["queue_url"] == output.queue_url && output.client_config["contexts_table"] == output.contexts_table_name
    error_message = "client_config does not point at the module's queue and tables."
  }

  assert {
    condition     = length(output.blueprint_versions["hello"]) > 0 && output.event_source_mapping_uuid != ""
    error_message = "The blueprint has no version, or the queue no event source mapping."
  }

  assert {
    condition     = adf_workflow_tables.this.visibility_timeout_seconds == 6 * adf_workflow.this.timeout
    error_message = "The queue's visibility timeout is not six times the worker's timeout."
  }

  assert {
    condition     = adf_workflow.this.reconcile_every_minutes == 5 && !adf_workflow.this.enabled
    error_message = "The reconciler is not scheduled every 5 minutes, or the worker is on the queue."
  }

  assert {
    condition     = contains(jsondecode(output.worker_policy_json).Statement[*].Effect, "Allow")
    error_message = "worker_policy_json is not an IAM policy."
  }
}

run "adds_a_blueprint_and_drops_the_schedule_in_place" {
  command = apply

  variables {
    blueprints = {
      hello = jsonencode({ nodes = { hello = { uses = "pass" } } })
      twice = jsonencode({ nodes = { a = { uses = "pass" }, b = { uses = "pass" } }, edges = [{ from = "a", to = "b" }] })
    }
    reconcile_every_minutes = 0
    batch_size              = 5
  }

  assert {
    condition     = length(output.blueprint_versions) == 2 && output.function_name == "adf-workflow-${var.name}"
    error_message = "The second blueprint is missing, or the worker was renamed."
  }

  assert {
    condition     = adf_workflow.this.batch_size == 5 && adf_workflow.this.reconcile_every_minutes == 0
    error_message = "batch_size or the schedule was not updated."
  }
}
