# The import id is the name (the bucket is adf-objects-<name>-<account>).
terraform import adf_object_bucket.uploads uploads
