resource "adf_object_bucket" "uploads" {
  name = "uploads"

  # Browsers upload straight to S3 through presigned URLs.
  cors = { allow_origins = ["https://example.com"] }

  versioning                   = true
  expire_after_days            = 365
  abort_incomplete_upload_days = 2

  tags = { team = "web" }
}

output "uploads_bucket" {
  value = adf_object_bucket.uploads.bucket_name
}
