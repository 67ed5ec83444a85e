resource "adf_workflow_tables" "example" {
  name                       = "orders"
  max_receive_count          = 5
  visibility_timeout_seconds = 120

  tags = {
    team = "data"
  }
}
