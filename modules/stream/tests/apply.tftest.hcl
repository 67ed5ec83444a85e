# Applies the module for real (against moto in the acceptance tests: set AWS_ENDPOINT_URL),
# then grows the topic in place.

variables {
  name          = "tftest-stream"
  force_destroy = true
}

run "creates_the_topic" {
  command = apply

  assert {
    condition     = output.function_name == "adf-stream-${var.name}" && output.table_name == "adf-stream-${var.name}"
    error_message = "The stream Lambda and table are not named adf-stream-<name>."
  }

  assert {
    condition     = startswith(output.bucket_name, "adf-stream-${var.name}-") && startswith(output.endpoint, "https://")
    error_message = "The managed bucket or the endpoint is not what the provider documents."
  }

  assert {
    condition     = jsondecode(output.client_policy_json).Statement[0].Resource == [output.function_arn]
    error_message = "client_policy_json does not name exactly the stream Lambda."
  }

  assert {
    condition     = adf_stream_topic.this.auth_type == "AWS_IAM" && adf_stream_topic.this.partitions == 1
    error_message = "The topic should default to one partition behind an AWS_IAM Function URL."
  }
}

run "grows_partitions_in_place" {
  command = apply

  variables {
    partitions = 4
  }

  assert {
    condition     = adf_stream_topic.this.partitions == 4 && output.function_name == "adf-stream-${var.name}"
    error_message = "The topic did not grow to 4 partitions in place."
  }
}
