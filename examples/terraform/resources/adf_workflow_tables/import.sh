# The import id is the name: the prefix of every queue and table.
terraform import adf_workflow_tables.example orders
