//! A scripted HTTP/1.1 server for unit tests: records every request and answers with what the
//! test's handler returns.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// A request as received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

type Handler = dyn Fn(&Seen) -> (u16, Value) + Send + Sync;

/// The server; stops when the test's runtime ends.
pub struct TestServer {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    pub async fn start(handler: impl Fn(&Seen) -> (u16, Value) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, Arc::clone(&handler), Arc::clone(&log)));
            }
        });
        Self { url, seen }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

async fn serve(socket: tokio::net::TcpStream, handler: Arc<Handler>, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut reader = BufReader::new(socket);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).await.unwrap_or(0) == 0 {
                return;
            }
            let Some((k, v)) = h.trim_end().split_once(':') else { break };
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let length: usize =
            headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let request = Seen { method, target, headers, body: serde_json::from_slice(&body).unwrap_or(Value::Null) };
        let (status, answer) = handler(&request);
        seen.lock().expect("lock").push(request);
        let answer = answer.to_string();
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if reader.get_mut().write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// An in-memory topic answering the API's routes (topic `t`), for producer and consumer tests.
#[derive(Default)]
pub struct FakeTopic {
    state: Mutex<FakeState>,
}

#[derive(Default)]
struct FakeState {
    partitions: Vec<Vec<(Option<String>, String)>>,
    groups: std::collections::BTreeMap<(String, u32), u64>,
    failures: Vec<u16>,
}

impl FakeTopic {
    /// A topic of `partitions` empty partitions; the first produce requests answer the
    /// statuses in `failures`, in order.
    pub fn new(partitions: u32, failures: &[u16]) -> Arc<Self> {
        let state = FakeState {
            partitions: vec![Vec::new(); partitions as usize],
            failures: failures.to_vec(),
            ..FakeState::default()
        };
        Arc::new(Self { state: Mutex::new(state) })
    }

    /// Appends records directly.
    pub fn fill(&self, partition: u32, values: &[&str]) {
        let mut s = self.state.lock().expect("lock");
        s.partitions[partition as usize].extend(values.iter().map(|v| (None, v.to_string())));
    }

    /// Values of a partition.
    pub fn values(&self, partition: u32) -> Vec<(Option<String>, String)> {
        self.state.lock().expect("lock").partitions[partition as usize].clone()
    }

    pub fn handle(&self, r: &Seen) -> (u16, Value) {
        use serde_json::json;
        let mut s = self.state.lock().expect("lock");
        let (path, query) = r.target.split_once('?').unwrap_or((&r.target, ""));
        let q = |k: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(n, _)| *n == k)
                .and_then(|(_, v)| v.parse::<u64>().ok())
        };
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let read = |s: &FakeState, p: u64, from: u64, limit: u64| {
            let Some(records) = s.partitions.get(p as usize) else { return (404, json!({"message": "no partition"})) };
            let hw = records.len() as u64;
            let to = (from + limit).min(hw);
            let out: Vec<Value> = (from..to)
                .map(|o| {
                    let (k, v) = &records[o as usize];
                    json!({"offset": o, "timestamp": 1, "key": k, "value": v})
                })
                .collect();
            (200, json!({"partition": p, "records": out, "next_offset": to.max(from), "high_watermark": hw}))
        };
        match (r.method.as_str(), parts.as_slice()) {
            ("GET", ["topics", "t"]) => {
                let partitions: Vec<Value> = s
                    .partitions
                    .iter()
                    .enumerate()
                    .map(|(p, r)| json!({"partition": p, "high_watermark": r.len()}))
                    .collect();
                (200, json!({"topic": "t", "partitions": partitions}))
            }
            ("POST", ["topics", "t", "produce"]) => {
                if !s.failures.is_empty() {
                    let status = s.failures.remove(0);
                    return (status, json!({"message": format!("failing with {status}")}));
                }
                // Each record goes to the request's partition or its own: the clients name one.
                let records = r.body["records"].as_array().cloned().unwrap_or_default();
                let mut placed = Vec::new();
                for rec in &records {
                    let p = r.body["partition"].as_u64().or(rec["partition"].as_u64()).expect("a partition") as usize;
                    let offset = s.partitions[p].len();
                    s.partitions[p]
                        .push((rec["key"].as_str().map(String::from), rec["value"].as_str().unwrap_or("").to_string()));
                    placed.push(json!({"partition": p, "offset": offset}));
                }
                (200, json!({"records": placed}))
            }
            ("GET", ["topics", "t", "consume"]) => {
                read(&s, q("partition").unwrap_or(0), q("offset").unwrap_or(0), q("limit").unwrap_or(100))
            }
            ("GET", ["topics", "t", "groups", g, "consume"]) => {
                let p = q("partition").unwrap_or(0);
                let from = s.groups.get(&(g.to_string(), p as u32)).copied().unwrap_or(0);
                read(&s, p, from, q("limit").unwrap_or(100))
            }
            ("POST", ["topics", "t", "groups", g, "commit"]) => {
                let (p, o) = (r.body["partition"].as_u64().unwrap_or(0) as u32, r.body["offset"].as_u64().unwrap_or(0));
                let committed = s.groups.entry((g.to_string(), p)).or_insert(0);
                if o < *committed {
                    return (409, json!({"message": "backwards"}));
                }
                *committed = o;
                (200, json!({"group": g, "partition": p, "committed": o}))
            }
            _ => (404, json!({"message": "no route"})),
        }
    }
}
