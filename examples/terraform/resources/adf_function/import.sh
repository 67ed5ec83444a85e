# The import id is the function name.
terraform import adf_function.api orders-api
