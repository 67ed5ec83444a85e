output "function_name" {
  description = "Name of the function."
  value       = adf_function.this.name
}

output "function_arn" {
  description = "ARN of the function."
  value       = adf_function.this.arn
}

output "invoke_arn" {
  description = "ARN for API Gateway integrations."
  value       = adf_function.this.invoke_arn
}

output "version" {
  description = "`$LATEST`, or the last published version with `publish`."
  value       = adf_function.this.version
}

output "log_group_name" {
  description = "The function's CloudWatch log group, `/aws/lambda/<name>`."
  value       = adf_function.this.log_group_name
}

output "function_url" {
  description = "The Function URL, or null without one."
  value       = try(adf_function.this.function_url.url, null)
}

output "invoke_policy_json" {
  description = "Least-privilege IAM policy for a caller of the AWS_IAM Function URL: `lambda:InvokeFunctionUrl` on this function only."
  value       = jsonencode(local.invoke_policy)
}

output "package_path" {
  description = "Path of the built zip, in the package cache."
  value       = adf_lambda_package.this.output_path
}

output "source_code_hash" {
  description = "Base64 SHA-256 of the zip: exactly Lambda's `CodeSha256`."
  value       = adf_lambda_package.this.source_code_hash
}

output "runtime" {
  description = "Lambda runtime of the package: `provided.al2023` or `ruby3.3`."
  value       = adf_lambda_package.this.runtime
}
