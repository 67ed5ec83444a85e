# <scheme>://<host:port>[,<host:port>...]/<topic>, the scheme being iam (the default), tls or none.
terraform import adf_kafka_topic.orders iam://b-1.orders.abc123.c2.kafka.us-east-1.amazonaws.com:9098/orders
terraform import adf_kafka_topic.customers none://127.0.0.1:9092/customers
