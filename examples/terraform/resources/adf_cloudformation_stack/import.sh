# The import id is the stack name.
terraform import adf_cloudformation_stack.alerts alerts
