# The import id is `<function>:<alias>`.
terraform import adf_function_alias.live orders-api:live
