resource "adf_ecr_repository" "api" {
  name = "team/api"

  # Tags are immutable and images are scanned on push by default.
  keep_tagged_images         = 20
  expire_untagged_after_days = 7

  tags = { team = "api" }
}

# Build and push with the usual tools, then deploy the image:
#   aws ecr get-login-password | docker login --username AWS --password-stdin <registry>
#   docker build -t <repository_url>:v1 . && docker push <repository_url>:v1
resource "adf_function" "api" {
  name      = "api"
  image_uri = "${adf_ecr_repository.api.repository_url}:v1"

  # Override the image's CMD; entry_point and working_directory work the same way.
  image_config = {
    command = ["orders.handler"]
  }
}

output "api_repository_url" {
  value = adf_ecr_repository.api.repository_url
}
