# A Ruby function from ./hello behind an AWS_IAM Function URL, and the policy a caller needs.

terraform {
  required_providers {
    adf = {
      source = "activedataflow/adf"
    }
  }
}

provider "adf" {}

module "hello" {
  source = "../.."

  name        = "hello-basic"
  source_dir  = "${path.module}/hello"
  language    = "ruby"
  environment = { GREETING = "hello" }
}

output "url" {
  value = module.hello.function_url
}

output "caller_policy_json" {
  value = module.hello.invoke_policy_json
}
