# A serverless MSK cluster (the default): MSK sizes it, clients use IAM over TLS.
resource "adf_kafka_cluster" "events" {
  name               = "events"
  subnet_ids         = var.private_subnet_ids # 2 to 5, each in its own availability zone
  security_group_ids = [var.kafka_clients_security_group_id]
}

# A provisioned cluster: three brokers, one per subnet. The version, the instance type, the
# storage and the broker count change in place; the count and storage only grow.
resource "adf_kafka_cluster" "orders" {
  name               = "orders"
  subnet_ids         = var.private_subnet_ids # 2 or 3
  security_group_ids = [var.kafka_clients_security_group_id]

  provisioned = {
    kafka_version = "3.6.0"
    instance_type = "kafka.m7g.large"
    broker_count  = 3
    volume_size   = 100 # GiB per broker
  }

  tags = { team = "orders" }
}

# Topics on it, through the Kafka admin protocol with the provider's own IAM credentials.
resource "adf_kafka_topic" "placed" {
  name               = "orders.placed"
  bootstrap_servers  = adf_kafka_cluster.orders.bootstrap_brokers
  partitions         = 12
  replication_factor = 3
}

variable "private_subnet_ids" {
  type = list(string)
}

variable "kafka_clients_security_group_id" {
  type = string
}
