# The import id is the event source mapping's UUID (`aws lambda list-event-source-mappings`).
terraform import adf_event_source.jobs 14e0db71-0000-4000-8000-000000000000
