//! Where `http` nodes may connect. Blueprints come from configuration, not from the worker's
//! owner alone, so by default no node reaches the instance metadata service or other
//! link-local addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254), nor, on Lambda, loopback
//! (where the Runtime API listens). An allow-list of networks lifts the block for those
//! networks. Host names are checked after resolution, in the client's resolver, so a name
//! cannot resolve to a checked address and then connect to another.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The AWS metadata service's IPv6 address on Nitro instances.
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// An `http` node tried to reach an address the egress policy blocks.
#[derive(Debug, thiserror::Error)]
#[error(
    "{host} is {addr}, a {kind} address that http nodes may not reach; list its network in the worker's \
     allowed networks (adf_workflow's http_allowed_networks) to allow it"
)]
pub struct Blocked {
    /// The host as the URL names it.
    pub host: String,
    /// The address it is (or resolved to).
    pub addr: IpAddr,
    /// Why: `link-local`, `metadata` or `loopback`.
    pub kind: &'static str,
}

/// Which addresses `http` nodes may connect to.
#[derive(Clone, Debug, Default)]
pub struct Egress {
    /// Whether loopback is blocked too (on Lambda).
    pub block_loopback: bool,
    /// Networks allowed even when blocked otherwise.
    pub allow: Vec<IpNet>,
}

impl Egress {
    /// The policy on Lambda: loopback blocked as well.
    pub fn lambda(allow: Vec<IpNet>) -> Self {
        Self { block_loopback: true, allow }
    }

    /// Why `addr` is blocked, if it is.
    fn blocked_kind(&self, addr: IpAddr) -> Option<&'static str> {
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        let kind = match addr {
            IpAddr::V4(v4) if v4.is_link_local() => "link-local",
            IpAddr::V6(v6) if v6 == METADATA_V6 => "metadata",
            IpAddr::V6(v6) if v6.is_unicast_link_local() => "link-local",
            a if self.block_loopback && (a.is_loopback() || a.is_unspecified()) => "loopback",
            _ => return None,
        };
        (!self.allow.iter().any(|n| n.contains(&addr))).then_some(kind)
    }

    /// Checks `addr`, reached as `host`.
    pub fn check(&self, host: &str, addr: IpAddr) -> Result<(), Blocked> {
        match self.blocked_kind(addr) {
            Some(kind) => Err(Blocked { host: host.to_string(), addr, kind }),
            None => Ok(()),
        }
    }

    /// Parses a comma-separated list of networks (`10.0.0.0/8`) or addresses.
    pub fn parse_networks(text: &str) -> Result<Vec<IpNet>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{s:?} is not a network like 10.0.0.0/8 or an address"))
            })
            .collect()
    }
}

/// The `http` node's client: no redirects followed by itself, and every connection checked
/// against an [`Egress`] policy.
#[derive(Clone, Debug)]
pub struct HttpClient {
    /// The client, whose resolver applies [`HttpClient::egress`].
    pub client: reqwest::Client,
    /// The policy, also applied to hosts written as addresses (which are not resolved).
    pub egress: Arc<Egress>,
}

impl HttpClient {
    /// A client under `egress`.
    pub fn new(egress: Egress) -> Self {
        let egress = Arc::new(egress);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(Checked(Arc::clone(&egress))))
            .build()
            .unwrap_or_default();
        Self { client, egress }
    }
}

/// The system resolver, keeping only the addresses the policy allows.
struct Checked(Arc<Egress>);

impl Resolve for Checked {
    fn resolve(&self, name: Name) -> Resolving {
        let egress = Arc::clone(&self.0);
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_blocked = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match egress.check(&host, a.ip()) {
                    Ok(()) => true,
                    Err(b) => {
                        first_blocked.get_or_insert(b);
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), first_blocked) {
                (true, Some(blocked)) => Err(Box::new(blocked) as Box<dyn std::error::Error + Send + Sync>),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_and_metadata_are_blocked_loopback_only_on_lambda() {
        let anywhere = Egress::default();
        let lambda = Egress::lambda(Vec::new());
        for blocked in ["169.254.169.254", "169.254.170.2", "fd00:ec2::254", "fe80::1", "::ffff:169.254.169.254"] {
            let addr: IpAddr = blocked.parse().expect("address");
            assert!(anywhere.check("h", addr).is_err(), "{blocked}");
            assert!(lambda.check("h", addr).is_err(), "{blocked}");
        }
        for loopback in ["127.0.0.1", "::1", "0.0.0.0", "::ffff:127.0.0.1"] {
            let addr: IpAddr = loopback.parse().expect("address");
            assert!(anywhere.check("h", addr).is_ok(), "{loopback}");
            let e = lambda.check("localhost", addr).expect_err(loopback);
            assert_eq!(e.kind, "loopback");
        }
        for open in ["10.1.2.3", "93.184.216.34", "2606:2800:220:1::1"] {
            assert!(lambda.check("h", open.parse().expect("address")).is_ok(), "{open}");
        }
    }

    #[test]
    fn the_allow_list_lifts_the_block_for_its_networks_only() {
        let allow = Egress::parse_networks(" 169.254.170.2, 127.0.0.0/8 ").expect("networks");
        let e = Egress::lambda(allow);
        assert!(e.check("h", "169.254.170.2".parse().expect("ip")).is_ok());
        assert!(e.check("h", "127.0.0.9".parse().expect("ip")).is_ok());
        assert!(e.check("h", "169.254.169.254".parse().expect("ip")).is_err());
        assert_eq!(
            Egress::parse_networks("10.0.0.0/8,nope").expect_err("bad"),
            "\"nope\" is not a network like 10.0.0.0/8 or an address"
        );
    }

    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        let lambda = HttpClient::new(Egress::lambda(Vec::new()));
        let e = lambda.client.get("http://localhost:9/").send().await.expect_err("blocked");
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        let mut found = false;
        while let Some(s) = source {
            found |= s.downcast_ref::<Blocked>().is_some();
            source = s.source();
        }
        assert!(found, "{e:?}");
    }
}
