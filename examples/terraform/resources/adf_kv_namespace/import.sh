# The import id is the namespace name (its table is adf-kv-<name>).
terraform import adf_kv_namespace.sessions sessions
