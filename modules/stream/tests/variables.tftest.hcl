# Plan-only checks of the module's inputs and defaults, with a mocked provider: no AWS.

mock_provider "adf" {}

variables {
  name = "clicks"
}

run "defaults_are_secure" {
  command = plan

  assert {
    condition     = adf_stream_topic.this.auth_type == "AWS_IAM" && !adf_stream_topic.this.force_destroy && adf_stream_topic.this.bucket == null
    error_message = "Defaults should be an AWS_IAM URL, a managed bucket and no force_destroy."
  }
}

run "accepts_a_prefix_in_a_bucket_of_yours" {
  command = plan

  variables {
    bucket = "my-data-lake"
    prefix = "streams/"
  }

  assert {
    condition     = adf_stream_topic.this.prefix == "streams/"
    error_message = "The prefix was not passed on."
  }
}

run "rejects_names_that_cannot_name_a_bucket" {
  command = plan

  variables {
    name = "Clicks-"
  }

  expect_failures = [var.name]
}

run "rejects_out_of_range_values" {
  command = plan

  variables {
    partitions     = 1025
    retention_days = 0
    memory_size    = 64
    prefix         = "/streams/"
    bucket         = "ab"
    auth_type      = "PUBLIC"
  }

  expect_failures = [var.partitions, var.retention_days, var.memory_size, var.prefix, var.bucket, var.auth_type]
}
