# Plan-only checks of the module's inputs and defaults, with a mocked provider: no AWS.

mock_provider "adf" {}

variables {
  name       = "orders"
  blueprints = { order = jsonencode({ nodes = { a = { uses = "pass" } } }) }
}

run "defaults_are_secure_and_consistent" {
  command = plan

  assert {
    condition     = adf_workflow.this.enabled && adf_workflow.this.timeout == 300 && adf_workflow_tables.this.visibility_timeout_seconds == 1800
    error_message = "The worker should be on the queue, with a visibility timeout six times its own."
  }

  assert {
    condition     = length(adf_workflow.this.invoke_function_arns) == 0 && adf_workflow.this.reconcile_every_minutes == 5
    error_message = "The worker should invoke no function and reconcile every 5 minutes by default."
  }
}

run "visibility_timeout_follows_the_worker_timeout" {
  command = plan

  variables {
    timeout = 900
  }

  assert {
    condition     = adf_workflow_tables.this.visibility_timeout_seconds == 5400
    error_message = "Six times a 900 s timeout is 5400 s."
  }
}

run "rejects_a_long_name" {
  command = plan

  variables {
    name = "a-name-longer-than-forty-one-characters-xx"
  }

  expect_failures = [var.name]
}

run "rejects_bad_blueprint_names" {
  command = plan

  variables {
    blueprints = { "no spaces" = "{}" }
  }

  expect_failures = [var.blueprints]
}

run "rejects_out_of_range_numbers" {
  command = plan

  variables {
    batch_size              = 0
    maximum_concurrency     = 1
    reconcile_every_minutes = 1441
    timeout                 = 901
    log_retention_days      = 2
  }

  expect_failures = [var.batch_size, var.maximum_concurrency, var.reconcile_every_minutes, var.timeout, var.log_retention_days]
}

run "rejects_a_kms_alias_and_non_lambda_arns" {
  command = plan

  variables {
    kms_key_arn          = "alias/orders"
    invoke_function_arns = ["arn:aws:sqs:us-east-1:123456789012:queue"]
  }

  expect_failures = [var.kms_key_arn, var.invoke_function_arns]
}
