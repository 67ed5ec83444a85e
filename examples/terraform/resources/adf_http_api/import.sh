# An HTTP API is imported by its name (which must be unique in the region).
terraform import adf_http_api.orders orders
