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

# A member of a Cargo workspace: its path dependencies, the workspace's Cargo.lock, the
# toolchain file and .cargo/config.toml are inputs too; other members are not. The build runs
# in a staging copy with --locked, so nothing is written into the workspace. (At the
# workspace root instead, set `package`, and `binary` when the member has several.)
resource "adf_lambda_package" "orders" {
  source_dir = "${path.module}/services/orders"
  language   = "rust"
}

# A small Ruby handler written inline (runtime ruby3.3, handler function.handler).
resource "adf_lambda_package" "hook" {
  language = "ruby"
  files = {
    "function.rb" = <<-RUBY
      def handler(event:, context:)
        { statusCode: 204 }
      end
    RUBY
  }
}
