# A stack from a template written in HCL. Create and update wait for it to settle; a failure
# names the resource that failed and CloudFormation's reason.
resource "adf_cloudformation_stack" "alerts" {
  name = "alerts"
  template_body = jsonencode({
    Parameters = {
      RetentionSeconds = { Type = "Number", Default = "345600" }
    }
    Resources = {
      Queue = {
        Type = "AWS::SQS::Queue"
        Properties = {
          MessageRetentionPeriod = { Ref = "RetentionSeconds" }
          SqsManagedSseEnabled   = true
        }
      }
    }
    Outputs = {
      QueueUrl = { Value = { Ref = "Queue" } }
    }
  })
  parameters = {
    RetentionSeconds = "86400"
  }
  tags = { team = "orders" }
}

# Its outputs, by name.
output "alerts_queue_url" {
  value = adf_cloudformation_stack.alerts.outputs["QueueUrl"]
}

# A template over 51,200 bytes lives in S3; IAM resources need their capability.
resource "adf_cloudformation_stack" "network" {
  name         = "network"
  template_url = "https://my-templates.s3.amazonaws.com/network.yaml"
  capabilities = ["CAPABILITY_NAMED_IAM"]
  # Drift detection on each refresh can be turned off for large stacks.
  detect_drift = false

  timeouts {
    create = "60m"
  }
}
