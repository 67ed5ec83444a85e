output "queue_url" {
  description = "URL of the job queue."
  value       = adf_workflow_tables.this.queue_url
}

output "queue_arn" {
  description = "ARN of the job queue."
  value       = adf_workflow_tables.this.queue_arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue, where jobs go after `max_receive_count` deliveries."
  value       = adf_workflow_tables.this.dlq_url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = adf_workflow_tables.this.dlq_arn
}

output "contexts_table_name" {
  description = "Name of the run contexts table."
  value       = adf_workflow_tables.this.contexts_table_name
}

output "contexts_table_arn" {
  description = "ARN of the run contexts table."
  value       = adf_workflow_tables.this.contexts_table_arn
}

output "statuses_table_name" {
  description = "Name of the run statuses table."
  value       = adf_workflow_tables.this.statuses_table_name
}

output "statuses_table_arn" {
  description = "ARN of the run statuses table."
  value       = adf_workflow_tables.this.statuses_table_arn
}

output "coordination_table_name" {
  description = "Name of the join coordination table."
  value       = adf_workflow_tables.this.coordination_table_name
}

output "coordination_table_arn" {
  description = "ARN of the join coordination table."
  value       = adf_workflow_tables.this.coordination_table_arn
}

output "worker_policy_json" {
  description = "Least-privilege IAM policy for a worker of your own (a poller, say) on these queue and tables."
  value       = adf_workflow_tables.this.worker_policy_json
}

output "function_name" {
  description = "Name of the worker's function, `adf-workflow-<name>`."
  value       = adf_workflow.this.function_name
}

output "function_arn" {
  description = "ARN of the worker's function."
  value       = adf_workflow.this.function_arn
}

output "role_arn" {
  description = "The worker's least-privilege execution role."
  value       = adf_workflow.this.role_arn
}

output "log_group_name" {
  description = "The worker's log group."
  value       = adf_workflow.this.log_group_name
}

output "event_source_mapping_uuid" {
  description = "Id of the event source mapping that feeds the job queue to the worker."
  value       = adf_workflow.this.event_source_mapping_uuid
}

output "blueprint_versions" {
  description = "Content-hash version of each blueprint: what runs started now pin."
  value       = adf_workflow.this.blueprint_versions
}

output "client_config" {
  description = "What a client that starts and watches runs needs: `queue_url`, `contexts_table`, `statuses_table` and `region`."
  value       = adf_workflow.this.client_config
}
