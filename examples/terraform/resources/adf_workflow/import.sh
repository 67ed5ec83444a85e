# A workflow is imported by its name. Its blueprints come back as the text last applied; a
# worker_zip of your own cannot be known: set it again, and the next apply redeploys it.
terraform import adf_workflow.orders orders
