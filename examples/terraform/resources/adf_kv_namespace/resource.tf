resource "adf_kv_namespace" "sessions" {
  name = "sessions"

  # Values over 380 KiB (up to 25 MiB) go to a private, encrypted bucket.
  large_values           = true
  point_in_time_recovery = true

  tags = { team = "web" }
}

# Bound to a function: IAM on exactly this table (and its bucket prefix), and the settings.
# adf_function "bot" { bindings = { sessions = adf_kv_namespace.sessions.binding } }

output "sessions_table" {
  value = adf_kv_namespace.sessions.table_name
}
