//! CloudWatch embedded metric format (placeholder).
