variable "name" {
  description = "Function name: 1 to 64 letters, digits, `-` and `_`. The managed role is `<name>-role`."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.name))
    error_message = "The name must be 1 to 64 letters, digits, '-' and '_'."
  }
}

variable "source_dir" {
  description = "The project to build: a Cargo package (`rust`), a Go module (`go`) or Ruby sources (`ruby`). Relative paths start from the working directory, so build them on `path.module`."
  type        = string
}

variable "language" {
  description = "`rust`, `go` or `ruby`."
  type        = string
  default     = "rust"

  validation {
    condition     = contains(["rust", "go", "ruby"], var.language)
    error_message = "language must be rust, go or ruby."
  }
}

variable "architecture" {
  description = "`x86_64` or `arm64` (an arm64 Rust build needs the aarch64 target and cargo-zigbuild)."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "binary" {
  description = "Rust: the binary to ship as `bootstrap`, when the package has more than one."
  type        = string
  default     = null
}

variable "handler" {
  description = "Ruby: the handler as `file.method`. Null: `function.handler`."
  type        = string
  default     = null
}

variable "excludes" {
  description = "`.gitignore`-style patterns left out of the build's hash and archive."
  type        = list(string)
  default     = []
}

variable "memory_size" {
  description = "Memory in MB, 128 to 10240."
  type        = number
  default     = 128

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be 128 to 10240."
  }
}

variable "timeout" {
  description = "Timeout in seconds, 1 to 900."
  type        = number
  default     = 3

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be 1 to 900."
  }
}

variable "environment" {
  description = "Environment variables."
  type        = map(string)
  default     = {}
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions, 0 to 100000. Null: unreserved."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrency == null ? true : var.reserved_concurrency >= 0 && var.reserved_concurrency <= 100000
    error_message = "reserved_concurrency must be 0 to 100000."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the function's logs: 0 (forever) or a CloudWatch value (1, 3, 5, 7, 14, 30, ...)."
  type        = number
  default     = 14

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be 0 or a CloudWatch retention: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "role_arn" {
  description = "An execution role of your own. Null: the provider manages `<name>-role`, which may write this function's logs and do what `policy_statements` grants, nothing more."
  type        = string
  default     = null

  validation {
    condition     = var.role_arn == null || can(regex("^arn:[^:]+:iam::[0-9]*:role/", var.role_arn))
    error_message = "role_arn must be an IAM role ARN (arn:aws:iam::account:role/name)."
  }
}

variable "policy_statements" {
  description = "A JSON array of IAM statements added to the managed role, such as `jsonencode([{ Effect = \"Allow\", Action = [\"sqs:SendMessage\"], Resource = [aws_sqs_queue.q.arn] }])`."
  type        = string
  default     = null

  validation {
    condition     = var.policy_statements == null || can(regex("^\\s*\\[", var.policy_statements)) && can(jsondecode(var.policy_statements))
    error_message = "policy_statements must be a JSON array of IAM statements."
  }
}

variable "bindings" {
  description = "Stores the function uses, by the name its code asks for: `{ sessions = adf_kv_namespace.s.binding }`. Each adds least-privilege IAM on exactly that store and its settings (read-only with `merge(x.binding, { access = \"read\" })`)."
  type = map(object({
    kind             = string
    access           = string
    name             = string
    table            = string
    table_arn        = string
    bucket           = string
    bucket_arn       = string
    kms_key_arn      = string
    redis_url        = string
    redis_auth_token = string
  }))
  default = null
}

variable "publish" {
  description = "Publish a numbered version on every change."
  type        = bool
  default     = false
}

variable "create_function_url" {
  description = "Give the function a Function URL."
  type        = bool
  default     = true
}

variable "function_url_auth_type" {
  description = "Function URL auth: `AWS_IAM` (callers sign requests with SigV4; grant `invoke_policy_json`) or `NONE` (public)."
  type        = string
  default     = "AWS_IAM"

  validation {
    condition     = contains(["AWS_IAM", "NONE"], var.function_url_auth_type)
    error_message = "function_url_auth_type must be AWS_IAM or NONE."
  }
}

variable "cors" {
  description = "CORS of the Function URL for browsers: `allow_origins`, `allow_methods`, `allow_headers` (lists) and `max_age` (seconds). Null: none."
  type = object({
    allow_origins = optional(list(string))
    allow_methods = optional(list(string))
    allow_headers = optional(list(string))
    max_age       = optional(number)
  })
  default = null
}

variable "tags" {
  description = "Tags for every AWS resource the module creates."
  type        = map(string)
  default     = {}
}
