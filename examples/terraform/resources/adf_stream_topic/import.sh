# A topic is imported by its name.
terraform import adf_stream_topic.orders orders
