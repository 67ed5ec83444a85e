terraform {
  required_providers {
    adf = {
      source = "activedataflow/adf"
    }
  }
}

# On AWS: credentials and region come from the usual places (AWS_* variables, a profile,
# or an instance role), exactly as with hashicorp/aws.
provider "adf" {
  region = "eu-west-1"

  default_tags {
    tags = {
      managed-by = "terraform"
    }
  }
}

# On LocalStack or moto: point the services at the emulator (or set AWS_ENDPOINT_URL).
#
# provider "adf" {
#   region     = "us-east-1"
#   access_key = "test"
#   secret_key = "test"
#   endpoints {
#     dynamodb = "http://localhost:4566"
#     sqs      = "http://localhost:4566"
#     sts      = "http://localhost:4566"
#   }
# }
