data "adf_lambda_package" "api" {
  source_dir = "${path.module}/api"
  language   = "rust"
}

output "zip" {
  value = data.adf_lambda_package.api.output_path
}
