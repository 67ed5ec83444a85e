# Builds the Ruby function of examples/basic and applies the module for real (against moto in
# the acceptance tests: set AWS_ENDPOINT_URL), then drops the Function URL in place.

variables {
  name        = "tftest-function"
  source_dir  = "examples/basic/hello"
  language    = "ruby"
  environment = { GREETING = "hello" }
}

run "builds_and_deploys_behind_an_aws_iam_url" {
  command = apply

  assert {
    condition     = output.function_name == var.name && output.runtime == "ruby3.3" && output.version == "$LATEST"
    error_message = "The function is not the Ruby function named var.name."
  }

  assert {
    condition     = startswith(output.function_url, "http") && adf_function.this.function_url.auth_type == "AWS_IAM"
    error_message = "The function has no AWS_IAM Function URL."
  }

  assert {
    condition     = jsondecode(output.invoke_policy_json).Statement[0].Resource == [output.function_arn]
    error_message = "invoke_policy_json does not name exactly this function."
  }

  assert {
    condition     = output.source_code_hash == adf_function.this.source_code_hash && fileexists(output.package_path)
    error_message = "The deployed code is not the package built."
  }
}

run "drops_the_url_and_resizes_in_place" {
  command = apply

  variables {
    create_function_url = false
    memory_size         = 256
  }

  assert {
    condition     = output.function_url == null && adf_function.this.memory_size == 256 && output.function_name == var.name
    error_message = "The Function URL is still there, or memory_size did not change."
  }
}
