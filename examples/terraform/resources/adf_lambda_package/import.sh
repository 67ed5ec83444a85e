# adf_lambda_package is a local build: it cannot be imported. Apply builds it (or takes the
# build from the cache when the sources and toolchain are unchanged).
