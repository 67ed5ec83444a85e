//! One HTTP call per method, for each route of the stream Lambda's API.

use std::time::Duration;

use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::{Auth, Committed, Description, Error, Fetched, NewRecord, Produced};

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take in all (a Lambda cold start included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The `wait_ms` parameter of a long poll; none for no wait.
fn wait_query(wait: Duration) -> Option<(&'static str, String)> {
    (!wait.is_zero()).then(|| ("wait_ms", wait.as_millis().to_string()))
}

/// A topic's API behind its Function URL.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    topic: String,
    auth: Auth,
}

impl Client {
    /// A client of `topic` served at `url` (the topic's Function URL).
    pub fn new(url: &str, topic: &str, auth: Auth) -> Result<Self, Error> {
        let base = Url::parse(url).map_err(|e| Error::Usage(format!("invalid URL {url:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() || base.cannot_be_a_base() {
            return Err(Error::Usage(format!("invalid URL {url:?}: want http(s)://host/")));
        }
        if topic.is_empty() {
            return Err(Error::Usage("the topic name is empty".into()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("adf-stream-client/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, base, topic: topic.to_string(), auth })
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Appends `records` as one segment: all to `partition`; without it, each record to its
    /// own [`NewRecord::partition`], else its key's partition, and keyless records together to
    /// one partition, round-robin. One request may reach up to 96 partitions.
    ///
    /// Not safe to retry after an error that leaves the outcome unknown (a 5xx or a lost
    /// answer): the batch may have been appended. [`Client::produce_sequenced`] is.
    pub async fn produce(&self, records: &[NewRecord], partition: Option<u32>) -> Result<Produced, Error> {
        self.produce_sequenced(records, partition, None).await
    }

    /// As [`Client::produce`], appended at most once when `sequenced` is `(producer id,
    /// sequence)`: the producer numbers its batches 0, 1, 2, ... (to each partition with
    /// `partition`; to the whole topic without), and sending a batch again with the same number
    /// is answered with its first offsets ([`Produced::duplicate`]). So any error may be
    /// retried with the same number. Without `partition`, every record needs a partition or a
    /// key, so that a retry reaches the same partitions.
    pub async fn produce_sequenced(
        &self,
        records: &[NewRecord],
        partition: Option<u32>,
        sequenced: Option<(&str, u64)>,
    ) -> Result<Produced, Error> {
        let mut body = json!({ "records": records });
        if let Some(p) = partition {
            body["partition"] = json!(p);
        }
        if let Some((producer, sequence)) = sequenced {
            body["producer_id"] = json!(producer);
            body["sequence"] = json!(sequence);
        }
        self.call(Method::POST, &["produce"], &[], Some(&body)).await
    }

    /// Up to `limit` records (1 to 10,000) of `partition` from `offset`. With a `wait` (up
    /// to 20 s), a long poll: at the high watermark the answer comes as soon as a record
    /// arrives, or empty when the wait runs out.
    pub async fn consume(&self, partition: u32, offset: u64, limit: u32, wait: Duration) -> Result<Fetched, Error> {
        let mut query =
            vec![("partition", partition.to_string()), ("offset", offset.to_string()), ("limit", limit.to_string())];
        query.extend(wait_query(wait));
        let fetched: Fetched = self.call(Method::GET, &["consume"], &query, None).await?;
        Ok(fetched.with_partition(partition))
    }

    /// Up to `limit` records of `partition` from `group`'s committed offset (0 when none),
    /// waiting as [`Client::consume`] does.
    pub async fn group_consume(
        &self,
        group: &str,
        partition: u32,
        limit: u32,
        wait: Duration,
    ) -> Result<Fetched, Error> {
        let mut query = vec![("partition", partition.to_string()), ("limit", limit.to_string())];
        query.extend(wait_query(wait));
        let fetched: Fetched = self.call(Method::GET, &["groups", group, "consume"], &query, None).await?;
        Ok(fetched.with_partition(partition))
    }

    /// Commits `offset`, the next one to read, for `group` on `partition`; never backwards.
    pub async fn commit(&self, group: &str, partition: u32, offset: u64) -> Result<Committed, Error> {
        let body = json!({ "partition": partition, "offset": offset });
        self.call(Method::POST, &["groups", group, "commit"], &[], Some(&body)).await
    }

    /// The topic's partitions and their high watermarks.
    pub async fn describe(&self) -> Result<Description, Error> {
        self.call(Method::GET, &[], &[], None).await
    }

    /// As [`Client::describe`], once one of `positions` (partition, next offset to read) has
    /// records, or when `wait` (up to 20 s) runs out: one long poll for many partitions.
    pub async fn describe_after(&self, positions: &[(u32, u64)], wait: Duration) -> Result<Description, Error> {
        let after: Vec<String> = positions.iter().map(|(p, o)| format!("{p}:{o}")).collect();
        let mut query = vec![("after", after.join(","))];
        query.extend(wait_query(wait));
        self.call(Method::GET, &[], &query, None).await
    }

    /// `/topics/{topic}/{path...}?{query}` under the base URL.
    fn url(&self, path: &[&str], query: &[(&str, String)]) -> Result<Url, Error> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| Error::Usage(format!("{} cannot have a path", self.base)))?
            .pop_if_empty()
            .push("topics")
            .push(&self.topic)
            .extend(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<T, Error> {
        let url = self.url(path, query)?;
        let body = body.map(serde_json::Value::to_string).unwrap_or_default();
        let content_type = [("content-type", "application/json")];
        let headers: &[(&str, &str)] = if body.is_empty() { &[] } else { &content_type };
        let signature = self.auth.headers(method.as_str(), url.as_str(), headers, body.as_bytes()).await?;
        let mut request = self.http.request(method, url);
        for (k, v) in headers.iter().copied().chain(signature.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            request = request.header(k, v);
        }
        if !body.is_empty() {
            request = request.body(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = response.bytes().await?;
        if !(200..300).contains(&status) {
            return Err(Error::from_status(status, retry_after.as_deref(), &bytes));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Decode(format!("{e}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(200)]))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_server::{FakeTopic, TestServer};

    fn client(url: &str) -> Client {
        Client::new(url, "orders/eu", Auth::None).expect("client")
    }

    #[test]
    fn routes_are_under_the_topic_with_escaped_names() {
        let c = client("https://abc.lambda-url.us-east-1.on.aws/");
        let url = |path: &[&str], query: &[(&str, String)]| c.url(path, query).expect("url").to_string();
        assert_eq!(url(&[], &[]), "https://abc.lambda-url.us-east-1.on.aws/topics/orders%2Feu");
        assert_eq!(
            url(&["groups", "billing team", "consume"], &[("partition", "2".into()), ("limit", "10".into())]),
            "https://abc.lambda-url.us-east-1.on.aws/topics/orders%2Feu/groups/billing%20team/consume?partition=2&limit=10"
        );
        let under_a_path = client("http://127.0.0.1:9000/stage");
        assert_eq!(
            under_a_path.url(&["produce"], &[]).expect("url").as_str(),
            "http://127.0.0.1:9000/stage/topics/orders%2Feu/produce"
        );
    }

    #[tokio::test]
    async fn iam_requests_are_signed_and_unauthenticated_ones_are_not() -> Result<(), Error> {
        let server = TestServer::start(|_| (200, json!({"topic": "t", "partitions": []}))).await;
        let iam = Auth::static_credentials("AKID", "secret", Some("token".into()), "eu-west-1");
        Client::new(&server.url, "t", iam)?.describe().await?;
        Client::new(&server.url, "t", Auth::None)?.produce(&[NewRecord::new(None, "v")], Some(0)).await.ok();
        let seen = server.seen();
        let auth = seen[0].header("authorization").unwrap_or_default();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKID/"), "{auth}");
        assert!(auth.contains("/eu-west-1/lambda/aws4_request"), "{auth}");
        assert!(seen[0].header("x-amz-date").is_some());
        assert_eq!(seen[0].header("x-amz-security-token"), Some("token"));
        assert_eq!(seen[1].header("authorization"), None);
        assert_eq!(seen[1].body, json!({"partition": 0, "records": [{"value": "v"}]}));
        Ok(())
    }

    #[tokio::test]
    async fn error_answers_become_typed_errors() -> Result<(), Error> {
        let server = TestServer::start(|_| (413, json!({"message": "record is too large"}))).await;
        let got = Client::new(&server.url, "t", Auth::None)?.produce(&[NewRecord::new(None, "v")], None).await;
        assert_eq!(got, Err(Error::TooLarge("record is too large".into())));
        Ok(())
    }

    #[tokio::test]
    async fn consume_asks_for_the_partition_and_marks_its_records() -> Result<(), Error> {
        let topic = FakeTopic::new(2, &[]);
        topic.fill(1, &["a", "b", "c"]);
        let fake = std::sync::Arc::clone(&topic);
        let server = TestServer::start(move |r| fake.handle(r)).await;
        let fetched = Client::new(&server.url, "t", Auth::None)?.consume(1, 1, 10, Duration::ZERO).await?;
        assert_eq!(server.seen()[0].target, "/topics/t/consume?partition=1&offset=1&limit=10");
        let got: Vec<(u32, u64, &str)> =
            fetched.records.iter().map(|r| (r.partition, r.offset, r.value.as_str())).collect();
        assert_eq!(got, [(1, 1, "b"), (1, 2, "c")]);
        assert_eq!((fetched.next_offset, fetched.high_watermark), (3, 3));
        Ok(())
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_transport_error() -> Result<(), Error> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port());
        let url = format!("http://127.0.0.1:{}/", port.map_err(|e| Error::Transport(e.to_string()))?);
        let got = Client::new(&url, "t", Auth::None)?.describe().await;
        assert!(matches!(&got, Err(e @ Error::Transport(_)) if e.is_retryable()), "{got:?}");
        Ok(())
    }

    #[test]
    fn bad_urls_and_empty_topics_are_usage_errors() {
        for url in ["not a url", "ftp://host/", "mailto:x@y"] {
            assert!(matches!(Client::new(url, "t", Auth::None), Err(Error::Usage(_))), "{url}");
        }
        assert!(matches!(Client::new("http://h/", "", Auth::None), Err(Error::Usage(_))));
    }
}
