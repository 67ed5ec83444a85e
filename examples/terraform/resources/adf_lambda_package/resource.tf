# Build a Rust Lambda (a Cargo package with one binary) for provided.al2023.
resource "adf_lambda_package" "api" {
  source_dir   = "${path.module}/api"
  language     = "rust"
  architecture = "x86_64"
}

# Go builds for arm64 as well, with no extra toolchain.
resource "adf_lambda_package" "worker" {
  source_dir   = "${path.module}/worker"
  language     = "go"
  architecture = "arm64"
  excludes     = ["testdata/"]
}
