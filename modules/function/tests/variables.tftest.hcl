# Plan-only checks of the module's inputs and defaults, with a mocked provider: no AWS.

mock_provider "adf" {}

variables {
  name       = "api"
  source_dir = "examples/basic/hello"
  language   = "ruby"
}

run "defaults_are_least_privilege" {
  command = plan

  assert {
    condition     = adf_function.this.function_url.auth_type == "AWS_IAM" && adf_function.this.policy_statements == null
    error_message = "The Function URL should take AWS_IAM auth and the role get no extra statements."
  }
}

run "cors_and_a_public_url_are_opt_in" {
  command = plan

  variables {
    function_url_auth_type = "NONE"
    cors                   = { allow_origins = ["https://example.com"] }
  }

  assert {
    condition     = adf_function.this.function_url.auth_type == "NONE" && adf_function.this.function_url.cors.allow_origins == tolist(["https://example.com"])
    error_message = "auth_type or cors was not passed on."
  }
}

run "no_url_when_not_wanted" {
  command = plan

  variables {
    create_function_url = false
  }

  assert {
    condition     = adf_function.this.function_url == null
    error_message = "create_function_url = false still plans a Function URL."
  }
}

run "rejects_bad_names_and_languages" {
  command = plan

  variables {
    name         = "an invalid name"
    language     = "python"
    architecture = "arm"
  }

  expect_failures = [var.name, var.language, var.architecture]
}

run "rejects_out_of_range_values" {
  command = plan

  variables {
    memory_size            = 64
    timeout                = 901
    log_retention_days     = 2
    reserved_concurrency   = -1
    function_url_auth_type = "PUBLIC"
  }

  expect_failures = [var.memory_size, var.timeout, var.log_retention_days, var.reserved_concurrency, var.function_url_auth_type]
}

run "rejects_a_policy_that_is_not_a_statement_list" {
  command = plan

  variables {
    policy_statements = jsonencode({ Effect = "Allow" })
    role_arn          = "orders-role"
  }

  expect_failures = [var.policy_statements, var.role_arn]
}
