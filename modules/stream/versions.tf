terraform {
  required_version = ">= 1.6.0"

  required_providers {
    adf = {
      source  = "activedataflow/adf"
      version = ">= 0.1.0"
    }
  }
}
