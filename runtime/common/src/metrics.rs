//! Metrics in CloudWatch's embedded metric format (EMF): one JSON line on stdout per emit,
//! which CloudWatch Logs turns into metrics on Lambda without an API call. Outside Lambda the
//! same metrics can go through `PutMetricData` instead, or nowhere.
//!
//! `ADF_METRICS` chooses: `emf` (the default on Lambda), `cloudwatch` (`PutMetricData`), or
//! `off` (the default elsewhere, so tests and benches spend no request on metrics).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::json;

/// The variable that chooses where metrics go.
pub const METRICS_ENV: &str = "ADF_METRICS";

/// A metric's unit, as CloudWatch names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A count.
    Count,
    /// Bytes.
    Bytes,
    /// Milliseconds.
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Bytes => "Bytes",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

/// Where emitted metrics go.
#[derive(Clone, Debug)]
enum Sink {
    /// EMF lines on stdout.
    Stdout,
    /// `PutMetricData`.
    CloudWatch(aws_sdk_cloudwatch::Client),
    /// EMF lines kept in memory (tests).
    Memory(Arc<Mutex<Vec<String>>>),
    /// Nowhere.
    Off,
}

/// A metrics emitter for one namespace and set of dimensions. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    namespace: String,
    dimensions: BTreeMap<String, String>,
    sink: Sink,
}

impl Metrics {
    /// Metrics in `namespace` as `ADF_METRICS` (or being on Lambda) says; `sdk` is used for
    /// `PutMetricData`.
    pub fn from_env(namespace: &str, sdk: &aws_types::SdkConfig) -> Self {
        let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let sink = match std::env::var(METRICS_ENV).as_deref() {
            Ok("emf") => Sink::Stdout,
            Ok("cloudwatch") => Sink::CloudWatch(aws_sdk_cloudwatch::Client::new(sdk)),
            Ok("off") => Sink::Off,
            _ if on_lambda => Sink::Stdout,
            _ => Sink::Off,
        };
        Self { namespace: namespace.to_string(), dimensions: BTreeMap::new(), sink }
    }

    /// Metrics kept in memory, returned as EMF lines by [`Metrics::lines`] (for tests).
    pub fn memory(namespace: &str) -> Self {
        Self { namespace: namespace.to_string(), dimensions: BTreeMap::new(), sink: Sink::Memory(Arc::default()) }
    }

    /// Metrics that go nowhere.
    pub fn off() -> Self {
        Self { namespace: String::new(), dimensions: BTreeMap::new(), sink: Sink::Off }
    }

    /// Whether emitted metrics go anywhere.
    pub fn enabled(&self) -> bool {
        !matches!(self.sink, Sink::Off)
    }

    /// With dimension `name` = `value` on every metric.
    pub fn with_dimension(mut self, name: &str, value: &str) -> Self {
        self.dimensions.insert(name.to_string(), value.to_string());
        self
    }

    /// The EMF lines emitted so far (memory metrics only).
    pub fn lines(&self) -> Vec<String> {
        match &self.sink {
            Sink::Memory(m) => m.lock().map(|l| l.clone()).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// One EMF document for `values` at `timestamp_ms`.
    pub fn emf_line(&self, values: &[(&str, f64, Unit)], timestamp_ms: i64) -> String {
        let definitions: Vec<_> = values.iter().map(|(n, _, u)| json!({ "Name": n, "Unit": u.as_str() })).collect();
        let mut doc = json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [self.dimensions.keys().collect::<Vec<_>>()],
                    "Metrics": definitions,
                }],
            },
        });
        for (k, v) in &self.dimensions {
            doc[k] = json!(v);
        }
        for (n, v, _) in values {
            doc[*n] = json!(v);
        }
        doc.to_string()
    }

    /// Emits `values` (name, value, unit). Failing to deliver a metric is logged, never an
    /// error: metrics must not fail the work they measure.
    pub async fn emit(&self, values: &[(&str, f64, Unit)]) {
        if values.is_empty() {
            return;
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        match &self.sink {
            Sink::Off => {}
            Sink::Stdout => println!("{}", self.emf_line(values, now)),
            Sink::Memory(m) => {
                if let Ok(mut lines) = m.lock() {
                    lines.push(self.emf_line(values, now));
                }
            }
            Sink::CloudWatch(cw) => {
                if let Err(e) = self.put(cw, values).await {
                    tracing::warn!(error = %e, "PutMetricData failed");
                }
            }
        }
    }

    async fn put(&self, cw: &aws_sdk_cloudwatch::Client, values: &[(&str, f64, Unit)]) -> Result<(), String> {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
        let dimensions: Vec<Dimension> =
            self.dimensions.iter().map(|(k, v)| Dimension::builder().name(k).value(v).build()).collect();
        let data: Vec<MetricDatum> = values
            .iter()
            .map(|(n, v, u)| {
                MetricDatum::builder()
                    .metric_name(*n)
                    .value(*v)
                    .unit(StandardUnit::from(u.as_str()))
                    .set_dimensions(Some(dimensions.clone()))
                    .build()
            })
            .collect();
        cw.put_metric_data()
            .namespace(&self.namespace)
            .set_metric_data(Some(data))
            .send()
            .await
            .map_err(|e| crate::error_chain(&e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_declares_its_metrics_and_carries_their_values() -> Result<(), serde_json::Error> {
        let m = Metrics::memory("ADF/Stream").with_dimension("Topic", "orders");
        let line = m.emf_line(&[("Records", 100.0, Unit::Count), ("Bytes", 2048.0, Unit::Bytes)], 1_700_000_000_000);
        let v: serde_json::Value = serde_json::from_str(&line)?;
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "ADF/Stream");
        assert_eq!(cw["Dimensions"], json!([["Topic"]]));
        assert_eq!(cw["Metrics"][1], json!({ "Name": "Bytes", "Unit": "Bytes" }));
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000i64);
        assert_eq!((v["Topic"].clone(), v["Records"].clone()), (json!("orders"), json!(100.0)));
        Ok(())
    }

    #[tokio::test]
    async fn emitted_lines_are_kept_by_memory_metrics_and_nothing_by_off() {
        let m = Metrics::memory("N");
        m.emit(&[("Ops", 1.0, Unit::Count)]).await;
        m.emit(&[]).await;
        assert_eq!(m.lines().len(), 1);
        assert!(Metrics::off().lines().is_empty());
    }
}
