variable "name" {
  description = "Topic name: 1 to 39 lowercase letters, digits and `-`, starting with a letter and not ending with `-`. It names the function and table `adf-stream-<name>` and the managed bucket `adf-stream-<name>-<account id>`."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,37}[a-z0-9])?$", var.name))
    error_message = "The name must be 1 to 39 lowercase letters, digits and '-', starting with a letter and not ending with '-'."
  }
}

variable "partitions" {
  description = "Partitions, 1 to 1024. Records with the same key keep their order. It can grow but never shrink."
  type        = number
  default     = 1

  validation {
    condition     = var.partitions >= 1 && var.partitions <= 1024
    error_message = "partitions must be 1 to 1024."
  }
}

variable "retention_days" {
  description = "Days records are kept, 1 to 36500."
  type        = number
  default     = 7

  validation {
    condition     = var.retention_days >= 1 && var.retention_days <= 36500
    error_message = "retention_days must be 1 to 36500."
  }
}

variable "compression" {
  description = "Compress segments with zstd."
  type        = bool
  default     = true
}

variable "bucket" {
  description = "An existing bucket to store segments in, under `prefix`; its policy and encryption are yours. Null: the provider creates a private, encrypted, TLS-only bucket."
  type        = string
  default     = null

  validation {
    condition     = var.bucket == null ? true : length(var.bucket) >= 3 && length(var.bucket) <= 63
    error_message = "S3 bucket names have 3 to 63 characters."
  }
}

variable "prefix" {
  description = "Key prefix of the segments, empty or ending in `/` (and not starting with one). Null: `adf-streams/` in a bucket of yours, empty in the managed bucket."
  type        = string
  default     = null

  validation {
    condition     = var.prefix == null || can(regex("^([^/].*/)?$", var.prefix))
    error_message = "prefix must be empty or end in '/' (and not start with one)."
  }
}

variable "kms_key_arn" {
  description = "ARN of a customer managed KMS key for the managed bucket and the table. Null: SSE-S3 and the AWS owned DynamoDB key."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:[^:]+:kms:", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:region:account:key/id)."
  }
}

variable "force_destroy" {
  description = "Delete the stored segments on destroy. Without it, destroying a topic whose managed bucket holds segments fails and deletes nothing."
  type        = bool
  default     = false
}

variable "auth_type" {
  description = "Function URL auth: `AWS_IAM` (requests are SigV4-signed; grant `client_policy_json`) or `NONE` (public: anyone with the URL can produce and consume)."
  type        = string
  default     = "AWS_IAM"

  validation {
    condition     = contains(["AWS_IAM", "NONE"], var.auth_type)
    error_message = "auth_type must be AWS_IAM or NONE."
  }
}

variable "memory_size" {
  description = "Memory of the stream Lambda in MB, 128 to 10240."
  type        = number
  default     = 512

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be 128 to 10240."
  }
}

variable "timeout" {
  description = "Timeout of the stream Lambda in seconds, 1 to 900."
  type        = number
  default     = 30

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be 1 to 900."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the stream Lambda's logs: 0 (forever) or a CloudWatch value (1, 3, 5, 7, 14, 30, ...)."
  type        = number
  default     = 30

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be 0 or a CloudWatch retention: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "lambda_zip" {
  description = "Path to a stream Lambda zip of your own (x86_64, built on `adf-stream`). Null: the one released with the provider."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every AWS resource the module creates."
  type        = map(string)
  default     = {}
}
