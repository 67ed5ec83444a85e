//! The stream's HTTP API, served by the stream Lambda through its Function URL.
//!
//! | route | does |
//! |---|---|
//! | `POST /topics/{topic}/produce` | `{"key"?, "value"}` (the seed's shape) or `{"partition"?, "records": [{"key"?, "value"}], "producer_id"?, "sequence"?}` |
//! | `GET /topics/{topic}/consume?partition=&offset=&limit=&wait_ms=` | records from an offset |
//! | `GET /topics/{topic}/groups/{group}/consume?partition=&limit=&wait_ms=` | records from the group's committed offset |
//! | `POST /topics/{topic}/groups/{group}/commit` | `{"partition", "offset"}` |
//! | `GET /topics/{topic}?after=&wait_ms=` | partitions and their high watermarks |
//!
//! `wait_ms` (up to 20,000) makes a request a long poll: a consume at the high watermark
//! answers as soon as a record arrives, or empty when the wait runs out; a describe with
//! `after=0:12,1:40` (partition:offset, ...) answers once one of those partitions has records
//! at or past its offset.
//!
//! Values are strings, or any JSON (stored as its text). A produce with `producer_id` and
//! `sequence` is appended at most once (see [`crate::Sequenced`]); a retry of a batch already
//! committed answers its original offsets with `"duplicate": true`.
//!
//! Errors are JSON `{"message"}`: 400 for a bad request or offset, 404 for an unknown topic,
//! partition or route, 405 for a wrong method, 409 for a commit that would go backwards or a
//! sequence that does not follow, 410 for an offset retention removed (with
//! `earliest_offset`), 413 for a request over the limits, 503 with `Retry-After` when the
//! partition is contended or AWS throttles (the batch was not written or is safe to retry).

use std::time::Duration;

use bytes::Bytes;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    Batches, Consumed, MAX_BATCH_BYTES, MAX_PRODUCE_PARTITIONS, Partitioning, Produced, Record, Sequenced, Stream,
    StreamError, group_by_partition,
};

/// Records returned by one consume unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;
/// The most records one consume returns.
const MAX_LIMIT: usize = 10_000;
/// Bytes of values one consume reads at most.
const MAX_READ_BYTES: usize = 4 * 1024 * 1024;
/// Bytes of encoded records one consume answers at most: under Lambda's 6 MB response limit
/// with room for the envelope, however much JSON escaping grows the values.
const MAX_RESPONSE_BYTES: usize = 5 * 1024 * 1024;
/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECONDS: &str = "1";

#[derive(Deserialize)]
struct InRecord {
    partition: Option<u32>,
    key: Option<String>,
    value: Value,
}

#[derive(Deserialize)]
struct ProduceBody {
    partition: Option<u32>,
    producer_id: Option<String>,
    sequence: Option<u64>,
    records: Option<Vec<InRecord>>,
    key: Option<String>,
    value: Option<Value>,
}

#[derive(Deserialize)]
struct CommitBody {
    partition: u32,
    offset: u64,
}

fn reply(status: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .unwrap_or_else(|_| Response::new(Body::Empty))
}

fn error(status: u16, message: impl std::fmt::Display) -> Response<Body> {
    reply(status, &json!({ "message": message.to_string() }))
}

fn from_stream_error(e: &StreamError) -> Response<Body> {
    match e {
        StreamError::TooLarge(_) => error(413, e),
        StreamError::Invalid(m) if m.contains("no partition") => error(404, e),
        StreamError::Invalid(_) => error(400, e),
        StreamError::Stale { .. } | StreamError::Sequence { .. } => error(409, e),
        StreamError::OutOfRange { offset, earliest, .. } => {
            reply(410, &json!({ "message": e.to_string(), "offset": offset, "earliest_offset": earliest }))
        }
        StreamError::Contended(_) | StreamError::Busy { .. } => {
            tracing::warn!(error = %e, "stream request deferred");
            let mut r = error(503, e);
            r.headers_mut().insert("retry-after", lambda_http::http::HeaderValue::from_static(RETRY_AFTER_SECONDS));
            r
        }
        _ => {
            tracing::error!(error = %e, "stream request failed");
            error(500, e)
        }
    }
}

fn value_bytes(v: Value) -> Bytes {
    match v {
        Value::String(s) => Bytes::from(s),
        other => Bytes::from(other.to_string()),
    }
}

/// Answers one HTTP request for `stream`'s topic.
pub async fn handle(stream: &Stream, req: Request) -> Response<Body> {
    let path = req.raw_http_path();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().as_str().to_string();
    let query = req.query_string_parameters();
    let topic = stream.topic();
    match parts.as_slice() {
        ["topics", t, ..] if *t != topic.name => error(404, format!("unknown topic {t:?}")),
        ["topics", _, "produce"] if method == "POST" => produce(stream, req.body()).await,
        ["topics", _, "consume"] if method == "GET" => {
            let (Some(p), Some(o)) = (query.first("partition"), query.first("offset")) else {
                return error(400, "consume needs ?partition=&offset=");
            };
            let (Ok(p), Ok(o)) = (p.parse::<u32>(), o.parse::<u64>()) else {
                return error(400, "partition and offset must be non-negative integers");
            };
            let wait = match wait_of(query.first("wait_ms")) {
                Ok(w) => w,
                Err(m) => return error(400, m),
            };
            consume(stream, p, o, query.first("limit"), wait).await
        }
        ["topics", _, "groups", group, "consume"] if method == "GET" => {
            let Some(Ok(p)) = query.first("partition").map(str::parse::<u32>) else {
                return error(400, "group consume needs ?partition=");
            };
            let wait = match wait_of(query.first("wait_ms")) {
                Ok(w) => w,
                Err(m) => return error(400, m),
            };
            match stream.committed(group, p).await {
                Ok(o) => consume(stream, p, o.unwrap_or(0), query.first("limit"), wait).await,
                Err(e) => from_stream_error(&e),
            }
        }
        ["topics", _, "groups", group, "commit"] if method == "POST" => {
            let Ok(body) = serde_json::from_slice::<CommitBody>(req.body().as_ref()) else {
                return error(400, "commit needs {\"partition\": n, \"offset\": n}");
            };
            match stream.commit(group, body.partition, body.offset).await {
                Ok(()) => reply(200, &json!({ "group": group, "partition": body.partition, "committed": body.offset })),
                Err(e) => from_stream_error(&e),
            }
        }
        ["topics", _] if method == "GET" => {
            let wait = match wait_of(query.first("wait_ms")) {
                Ok(w) => w,
                Err(m) => return error(400, m),
            };
            describe(stream, query.first("after"), wait).await
        }
        _ => match allowed(&parts) {
            Some(allow) => {
                let mut r = error(405, format!("{method} is not allowed on {path}; use {allow}"));
                r.headers_mut().insert("allow", lambda_http::http::HeaderValue::from_static(allow));
                r
            }
            None => error(404, format!("no route for {method} {path}")),
        },
    }
}

/// The method a route answers, when `parts` is one.
fn allowed(parts: &[&str]) -> Option<&'static str> {
    match parts {
        ["topics", _, "produce"] | ["topics", _, "groups", _, "commit"] => Some("POST"),
        ["topics", _, "consume"] | ["topics", _, "groups", _, "consume"] | ["topics", _] => Some("GET"),
        _ => None,
    }
}

async fn produce(stream: &Stream, body: &Body) -> Response<Body> {
    if body.len() > MAX_BATCH_BYTES {
        return error(413, format!("the request is over {MAX_BATCH_BYTES} bytes"));
    }
    let parsed: ProduceBody = match serde_json::from_slice(body.as_ref()) {
        Ok(b) => b,
        Err(e) => return error(400, format!("invalid JSON body: {e}")),
    };
    let records: Vec<InRecord> = match (parsed.records, parsed.value) {
        (Some(r), None) => r,
        (None, Some(value)) => vec![InRecord { partition: None, key: parsed.key, value }],
        _ => return error(400, "send {\"key\", \"value\"} or {\"records\": [...]}"),
    };
    let sequenced = match (parsed.producer_id, parsed.sequence) {
        (Some(producer), Some(sequence)) => Some(Sequenced { producer, sequence }),
        (None, None) => None,
        _ => return error(400, "producer_id and sequence go together"),
    };
    let (result, places) = match parsed.partition {
        Some(p) if records.iter().any(|r| r.partition.is_some_and(|rp| rp != p)) => {
            return error(400, "a record's partition differs from the request's");
        }
        Some(p) => {
            let places = (0..records.len() as u64).map(|rank| (p, rank)).collect::<Vec<_>>();
            let records = records.into_iter().map(to_record).collect();
            let one = stream.produce_sequenced(Partitioning::Partition(p), records, sequenced.as_ref()).await;
            (one.map(|b| vec![b]), places)
        }
        None => match spread(stream, records, sequenced.is_some()) {
            Ok((batches, places)) => (produce_spread(stream, batches, sequenced.as_ref()).await, places),
            Err(m) => return error(400, m),
        },
    };
    let result = result.map(|batches| {
        // Each record's place: its partition's base plus its rank there.
        let bases: std::collections::HashMap<u32, u64> = batches.iter().map(|b| (b.partition, b.base_offset)).collect();
        let records = places.iter().map(|(p, rank)| (*p, bases.get(p).copied().unwrap_or(0) + rank)).collect();
        ProducedRecords { batches, records }
    });
    match result {
        Ok(produced) => reply(200, &produced_json(&produced)),
        Err(e) => from_stream_error(&e),
    }
}

/// An API record as the engine's (its time set on append).
fn to_record(r: InRecord) -> Record {
    Record { key: r.key.map(Bytes::from), value: value_bytes(r.value), timestamp: 0 }
}

/// Groups records by partition (their own, else their key's, else one round-robin partition
/// for the request's keyless records), in the order each partition first appears. Also each
/// record's partition and rank within it, in request order.
fn spread(stream: &Stream, records: Vec<InRecord>, sequenced: bool) -> Result<(Batches, Vec<(u32, u64)>), String> {
    let mut keyless = None;
    let placed = records
        .into_iter()
        .map(|r| {
            let p = match (r.partition, &r.key) {
                (Some(p), _) => p,
                (None, Some(k)) => stream.partition_for(k.as_bytes()),
                // A retry must reach the partitions the first attempt did.
                (None, None) if sequenced => return Err("a sequenced produce's records need a partition or a key"),
                (None, None) => *keyless.get_or_insert_with(|| stream.next_round_robin()),
            };
            Ok((p, to_record(r)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(group_by_partition(placed))
}

/// Produces `batches` as one segment when they reach at most [`MAX_PRODUCE_PARTITIONS`]
/// partitions; more, unsequenced, as one segment per that many.
async fn produce_spread(
    stream: &Stream,
    batches: Vec<(u32, Vec<Record>)>,
    sequenced: Option<&Sequenced>,
) -> Result<Vec<Produced>, StreamError> {
    if sequenced.is_some() || batches.len() <= MAX_PRODUCE_PARTITIONS {
        return stream.produce_many(batches, sequenced).await;
    }
    let mut produced = Vec::with_capacity(batches.len());
    let mut rest = batches.into_iter().peekable();
    while rest.peek().is_some() {
        let chunk: Vec<_> = rest.by_ref().take(MAX_PRODUCE_PARTITIONS).collect();
        produced.extend(stream.produce_many(chunk, None).await?);
    }
    Ok(produced)
}

/// What a produce answers: the partitions' batches and each record's place, in request order.
struct ProducedRecords {
    batches: Vec<Produced>,
    records: Vec<(u32, u64)>,
}

/// `{"records": [{"partition", "offset"}], "partitions": [{"partition", "offset", "count"}],
/// "duplicate"}`, and for one partition also its `partition`, first `offset` and `offsets`.
fn produced_json(p: &ProducedRecords) -> Value {
    let records: Vec<Value> = p.records.iter().map(|(p, o)| json!({ "partition": p, "offset": o })).collect();
    let partitions: Vec<Value> = p
        .batches
        .iter()
        .map(|b| json!({ "partition": b.partition, "offset": b.base_offset, "count": b.count }))
        .collect();
    let mut out = json!({
        "records": records,
        "partitions": partitions,
        "duplicate": p.batches.iter().any(|b| b.duplicate),
    });
    if let [one] = p.batches.as_slice() {
        out["partition"] = json!(one.partition);
        out["offset"] = json!(one.base_offset);
        out["offsets"] = json!((one.base_offset..one.base_offset + one.count).collect::<Vec<u64>>());
    }
    out
}

/// The long-poll wait a `wait_ms` parameter asks for (none: zero).
fn wait_of(wait_ms: Option<&str>) -> Result<Duration, String> {
    let max = crate::MAX_WAIT.as_millis();
    match wait_ms.map(str::parse::<u64>) {
        None => Ok(Duration::ZERO),
        Some(Ok(ms)) if u128::from(ms) <= max => Ok(Duration::from_millis(ms)),
        Some(_) => Err(format!("wait_ms must be 0 to {max}")),
    }
}

async fn consume(stream: &Stream, p: u32, offset: u64, limit: Option<&str>, wait: Duration) -> Response<Body> {
    let limit = match limit.map(str::parse::<usize>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => return error(400, format!("limit must be 1 to {MAX_LIMIT}")),
    };
    let mut batch = stream.consume(p, offset, limit, MAX_READ_BYTES).await;
    if let Ok(b) = &batch
        && b.records.is_empty()
        && b.next_offset == b.high_watermark
        && !wait.is_zero()
    {
        batch = match stream.wait_for_records(&[(p, offset)], wait).await {
            Ok(ready) if ready.is_empty() => batch,
            Ok(_) => stream.consume(p, offset, limit, MAX_READ_BYTES).await,
            Err(e) => Err(e),
        };
    }
    match batch {
        Ok(b) => {
            let (records, next_offset) = encode_records(&b.records, b.next_offset, MAX_RESPONSE_BYTES);
            let body = format!(
                r#"{{"partition":{p},"records":[{}],"next_offset":{next_offset},"high_watermark":{}}}"#,
                records.join(","),
                b.high_watermark
            );
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::Text(body))
                .unwrap_or_else(|_| Response::new(Body::Empty))
        }
        Err(e) => from_stream_error(&e),
    }
}

/// The partitions and their high watermarks; with `after` (`partition:offset,...`) and a
/// wait, once one of those partitions has records at or past its offset.
async fn describe(stream: &Stream, after: Option<&str>, wait: Duration) -> Response<Body> {
    let topic = stream.topic();
    if let Some(after) = after.filter(|a| !a.is_empty()) {
        let positions: Option<Vec<(u32, u64)>> = after
            .split(',')
            .map(|pair| {
                let (p, o) = pair.split_once(':')?;
                Some((p.parse().ok()?, o.parse().ok()?))
            })
            .collect();
        let Some(positions) = positions else {
            return error(400, "after must be partition:offset pairs joined by commas, such as 0:12,1:40");
        };
        if let Err(e) = stream.wait_for_records(&positions, wait).await {
            return from_stream_error(&e);
        }
    }
    let all: Vec<u32> = (0..topic.partitions).collect();
    match stream.high_watermarks(&all).await {
        Ok(hws) => {
            let partitions: Vec<Value> = all
                .iter()
                .map(|p| json!({ "partition": p, "high_watermark": hws.get(p).copied().unwrap_or(0) }))
                .collect();
            reply(200, &json!({ "topic": topic.name, "partitions": partitions }))
        }
        Err(e) => from_stream_error(&e),
    }
}

/// The JSON of `records` from the first, as many as fit in `limit` encoded bytes (always the
/// first), and the offset to ask for next: the first one left out, else `next_offset`.
fn encode_records(records: &[Consumed], next_offset: u64, limit: usize) -> (Vec<String>, u64) {
    let mut out = Vec::with_capacity(records.len());
    let mut size = 0;
    for r in records {
        let text = json!({
            "offset": r.offset,
            "timestamp": r.timestamp,
            "key": r.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
            "value": String::from_utf8_lossy(&r.value),
        })
        .to_string();
        if !out.is_empty() && size + text.len() + 1 > limit {
            return (out, r.offset);
        }
        size += text.len() + 1;
        out.push(text);
    }
    (out, next_offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_know_their_method() {
        assert_eq!(allowed(&["topics", "t", "produce"]), Some("POST"));
        assert_eq!(allowed(&["topics", "t", "groups", "g", "commit"]), Some("POST"));
        assert_eq!(allowed(&["topics", "t", "consume"]), Some("GET"));
        assert_eq!(allowed(&["topics", "t"]), Some("GET"));
        assert_eq!(allowed(&["topics", "t", "nope"]), None);
    }

    fn record(offset: u64, value: &str) -> Consumed {
        Consumed { offset, key: None, value: Bytes::from(value.to_string()), timestamp: 1 }
    }

    #[test]
    fn a_consume_answer_is_bounded_by_its_encoded_size() {
        // Control characters grow six times when escaped: bytes read are not bytes sent.
        let escaped = "\u{1}".repeat(100);
        let records: Vec<Consumed> = (10..20).map(|o| record(o, &escaped)).collect();
        let one = encode_records(&records[..1], 11, usize::MAX).0[0].len();
        assert!(one > 600, "{one}");
        let (fit, next) = encode_records(&records, 20, 3 * one + 3);
        assert_eq!((fit.len(), next), (3, 13));
        let (all, next) = encode_records(&records, 20, usize::MAX);
        assert_eq!((all.len(), next), (10, 20));
        let (first, next) = encode_records(&records, 20, 1);
        assert_eq!((first.len(), next), (1, 11), "the first record always goes");
        let body: Value = serde_json::from_str(&format!("[{}]", fit.join(","))).expect("json");
        assert_eq!(body[2]["offset"], 12);
    }

    #[test]
    fn contention_and_throttling_are_503_with_retry_after_and_expiry_is_410() {
        let busy = from_stream_error(&StreamError::Busy { op: "GetItem", cause: "ThrottlingException".into() });
        assert_eq!(busy.status(), 503);
        assert_eq!(busy.headers().get("retry-after").map(|v| v.as_bytes()), Some(&b"1"[..]));
        assert_eq!(from_stream_error(&StreamError::Contended(3)).status(), 503);
        let gone = from_stream_error(&StreamError::OutOfRange { partition: 0, offset: 2, earliest: 40 });
        assert_eq!(gone.status(), 410);
        let Body::Text(text) = gone.body() else { panic!("a text body") };
        assert_eq!(serde_json::from_str::<Value>(text).expect("json")["earliest_offset"], 40);
        let aws = from_stream_error(&StreamError::Aws { op: "GetItem", cause: "AccessDeniedException".into() });
        assert_eq!(aws.status(), 500);
    }

    #[test]
    fn a_wait_is_0_to_20_seconds() {
        assert_eq!(wait_of(None), Ok(Duration::ZERO));
        assert_eq!(wait_of(Some("1500")), Ok(Duration::from_millis(1500)));
        assert_eq!(wait_of(Some("20000")), Ok(Duration::from_secs(20)));
        assert!(wait_of(Some("20001")).is_err());
        assert!(wait_of(Some("-1")).is_err());
        assert!(wait_of(Some("soon")).is_err());
    }
}
