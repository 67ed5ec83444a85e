# The import id is the name of a cache with a DynamoDB table (adf-cache-<name>).
terraform import adf_cache.api api
