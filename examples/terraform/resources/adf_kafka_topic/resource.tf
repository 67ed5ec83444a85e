# A topic on an MSK cluster, with IAM access control (the default): the provider signs with its
# own AWS credentials, which need kafka-cluster:Connect on the cluster and CreateTopic,
# DescribeTopic, AlterTopic, DeleteTopic, DescribeTopicDynamicConfiguration and
# AlterTopicDynamicConfiguration on the topic.
resource "adf_kafka_topic" "orders" {
  name               = "orders"
  bootstrap_servers  = split(",", var.msk_bootstrap_brokers_iam) # port 9098
  partitions         = 12
  replication_factor = 3

  config = {
    "retention.ms"        = "604800000" # 7 days
    "cleanup.policy"      = "delete"
    "min.insync.replicas" = "2"
  }
}

variable "msk_bootstrap_brokers_iam" {
  type        = string
  description = "The cluster's BootstrapBrokerStringSaslIam, such as from `aws kafka get-bootstrap-brokers`."
}

# A compacted topic on a plaintext broker (a local Kafka, say).
resource "adf_kafka_topic" "customers" {
  name              = "customers"
  bootstrap_servers = ["127.0.0.1:9092"]
  authentication    = "NONE"
  partitions        = 3

  config = {
    "cleanup.policy" = "compact"
  }
}
