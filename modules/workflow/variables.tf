variable "name" {
  description = "Name of the workflow and prefix of its queues and tables (`<name>-jobs`, `<name>-contexts`, ...); the worker is `adf-workflow-<name>`. 1 to 41 letters, digits, `-` and `_`."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,41}$", var.name))
    error_message = "The name must be 1 to 41 letters, digits, '-' and '_'."
  }
}

variable "blueprints" {
  description = "Blueprints by name (1 to 100 letters, digits, `-`, `_`, `.`), each JSON such as `jsonencode({ nodes = {...}, edges = [...] })` or `file(\"order.json\")`. The provider lints them at plan time."
  type        = map(string)

  validation {
    condition     = alltrue([for k in keys(var.blueprints) : can(regex("^[A-Za-z0-9._-]{1,100}$", k))])
    error_message = "Blueprint names must be 1 to 100 letters, digits, '-', '_' and '.'."
  }
}

variable "enabled" {
  description = "Whether the worker polls the job queue. `false` pauses the workflow: jobs wait in the queue."
  type        = bool
  default     = true
}

variable "fifo" {
  description = "Make the job queues FIFO (ordered per message group; `batch_size` is then at most 10)."
  type        = bool
  default     = false
}

variable "max_receive_count" {
  description = "Deliveries of a job before SQS moves it to the dead-letter queue, 1 to 1000."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be 1 to 1000."
  }
}

variable "visibility_timeout_seconds" {
  description = "Seconds a received job stays hidden, 0 to 43200; at least `timeout`. Null: six times `timeout`, as AWS suggests."
  type        = number
  default     = null

  validation {
    condition     = var.visibility_timeout_seconds == null ? true : var.visibility_timeout_seconds >= 0 && var.visibility_timeout_seconds <= 43200
    error_message = "visibility_timeout_seconds must be 0 to 43200."
  }
}

variable "message_retention_seconds" {
  description = "Seconds SQS keeps an unprocessed job, 60 to 1209600 (14 days). The dead-letter queue always keeps jobs 14 days."
  type        = number
  default     = 345600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "message_retention_seconds must be 60 to 1209600."
  }
}

variable "billing_mode" {
  description = "`PAY_PER_REQUEST` or `PROVISIONED` (with `read_capacity` and `write_capacity`) for the tables."
  type        = string
  default     = "PAY_PER_REQUEST"

  validation {
    condition     = contains(["PAY_PER_REQUEST", "PROVISIONED"], var.billing_mode)
    error_message = "billing_mode must be PAY_PER_REQUEST or PROVISIONED."
  }
}

variable "read_capacity" {
  description = "Read capacity units per table and index, 1 to 40000; only with `PROVISIONED`."
  type        = number
  default     = null

  validation {
    condition     = var.read_capacity == null ? true : var.read_capacity >= 1 && var.read_capacity <= 40000
    error_message = "read_capacity must be 1 to 40000."
  }
}

variable "write_capacity" {
  description = "Write capacity units per table and index, 1 to 40000; only with `PROVISIONED`."
  type        = number
  default     = null

  validation {
    condition     = var.write_capacity == null ? true : var.write_capacity >= 1 && var.write_capacity <= 40000
    error_message = "write_capacity must be 1 to 40000."
  }
}

variable "point_in_time_recovery" {
  description = "Enable DynamoDB point-in-time recovery on the tables."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key for the queues and tables. Null: SQS-managed and AWS owned keys encrypt at rest."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:[^:]+:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:region:account:key/id)."
  }
}

variable "batch_size" {
  description = "Jobs per worker invocation, 1 to 10000 (at most 10 on a FIFO queue)."
  type        = number
  default     = 10

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000
    error_message = "batch_size must be 1 to 10000."
  }
}

variable "maximum_concurrency" {
  description = "Concurrent worker invocations the queue may drive, 2 to 1000. Null: up to the account's concurrency."
  type        = number
  default     = null

  validation {
    condition     = var.maximum_concurrency == null ? true : var.maximum_concurrency >= 2 && var.maximum_concurrency <= 1000
    error_message = "maximum_concurrency must be 2 to 1000."
  }
}

variable "reconcile_every_minutes" {
  description = "Run the reconciler, which resumes stalled runs, every N minutes, 1 to 1440; 0 turns the schedule off."
  type        = number
  default     = 5
  nullable    = false

  validation {
    condition     = var.reconcile_every_minutes >= 0 && var.reconcile_every_minutes <= 1440
    error_message = "reconcile_every_minutes must be 0 (off) or 1 to 1440."
  }
}

variable "memory_size" {
  description = "Memory of the worker in MB, 128 to 10240."
  type        = number
  default     = 512

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be 128 to 10240."
  }
}

variable "timeout" {
  description = "Timeout of the worker in seconds, 1 to 900."
  type        = number
  default     = 300

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be 1 to 900."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the worker's logs: 0 (forever) or a CloudWatch value (1, 3, 5, 7, 14, 30, ...)."
  type        = number
  default     = 30

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be 0 or a CloudWatch retention: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "worker_zip" {
  description = "Path to a worker zip of your own (x86_64, built on `adf-workflow` with custom node types). Null: the worker released with the provider."
  type        = string
  default     = null
}

variable "invoke_function_arns" {
  description = "ARNs of the Lambda functions the blueprints' `lambda` nodes invoke; the worker may invoke exactly these."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.invoke_function_arns : can(regex("^arn:.*:lambda:.*:function:", a))])
    error_message = "invoke_function_arns must be Lambda function ARNs (arn:aws:lambda:region:account:function:name)."
  }
}

variable "tags" {
  description = "Tags for every AWS resource the module creates."
  type        = map(string)
  default     = {}
}
