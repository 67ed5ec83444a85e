# The import id is the repository name.
terraform import adf_ecr_repository.api team/api
