# The import id is the cluster name.
terraform import adf_kafka_cluster.orders orders
