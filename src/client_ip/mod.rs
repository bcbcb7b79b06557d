//! Per-key IP allowlists, and how keygate learns a request's client IP.
//!
//! A key's `ips` ([`IpAllowlist`]) hold addresses and CIDR networks, IPv4 and IPv6;
//! `::ffff:a.b.c.d` matches `a.b.c.d`. The client IP comes from a [`ClientIpResolver`]: by
//! default the peer address (axum's `ConnectInfo`, tonic's `TcpConnectInfo`, or a
//! [`PeerAddr`] you insert with plain hyper). Behind proxies, [`TrustedProxies`] honours
//! one forwarding header, only from trusted proxies, walking right to left:
//! `X-Forwarded-For` by default, or `Forwarded` with
//! `.header(ForwardingHeader::Forwarded)`. A key with an allowlist is refused (403
//! `ip_not_allowed`) when the client IP is not on it, or unknown.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use http::{Extensions, HeaderMap};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The addresses and networks a key may be used from. Empty means any address.
///
/// Entries are single addresses (`203.0.113.7`, `2001:db8::1`) or CIDR networks
/// (`10.0.0.0/8`, `2001:db8::/32`). An IPv4-mapped IPv6 address (`::ffff:203.0.113.7`)
/// matches its IPv4 form, whichever side uses which.
///
/// Each entry is precompiled, when the list is parsed, into a network number and a mask,
/// so a check is one AND and one comparison per entry.
#[derive(Clone, Default)]
pub struct IpAllowlist(Arc<Nets>);

/// The entries as written (canonical), and as masks by family.
#[derive(Default)]
struct Nets {
    entries: Box<[IpNet]>,
    v4: Box<[(u32, u32)]>,
    v6: Box<[(u128, u128)]>,
}

impl PartialEq for IpAllowlist {
    fn eq(&self, other: &Self) -> bool {
        self.0.entries == other.0.entries
    }
}

impl Eq for IpAllowlist {}

impl From<Vec<IpNet>> for Nets {
    fn from(entries: Vec<IpNet>) -> Self {
        let v4 = entries
            .iter()
            .filter_map(|net| match net {
                IpNet::V4(net) => Some((u32::from(net.network()), u32::from(net.netmask()))),
                IpNet::V6(_) => None,
            })
            .collect();
        let v6 = entries
            .iter()
            .filter_map(|net| match net {
                IpNet::V6(net) => Some((u128::from(net.network()), u128::from(net.netmask()))),
                IpNet::V4(_) => None,
            })
            .collect();
        Self {
            entries: entries.into(),
            v4,
            v6,
        }
    }
}

/// An allowlist entry that is neither an address nor a CIDR network.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid IP address or CIDR '{0}'")]
pub struct InvalidIpEntry(pub String);

impl IpAllowlist {
    /// An empty list: any address.
    pub fn any() -> Self {
        Self::default()
    }

    /// Parses addresses and CIDR networks.
    pub fn parse<I, S>(entries: I) -> Result<Self, InvalidIpEntry>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        entries
            .into_iter()
            .map(|e| parse_entry(e.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(|v| Self(Arc::new(Nets::from(v))))
    }

    /// Whether the list is empty (any address allowed).
    pub fn is_empty(&self) -> bool {
        self.0.entries.is_empty()
    }

    /// The entries.
    pub fn entries(&self) -> &[IpNet] {
        &self.0.entries
    }

    /// Whether `ip` is allowed. An empty list allows every address.
    #[inline]
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.is_empty() {
            return true;
        }
        match ip.to_canonical() {
            IpAddr::V4(ip) => {
                let ip = u32::from(ip);
                self.0.v4.iter().any(|&(net, mask)| ip & mask == net)
            }
            IpAddr::V6(ip) => {
                let ip = u128::from(ip);
                self.0.v6.iter().any(|&(net, mask)| ip & mask == net)
            }
        }
    }

    /// Whether every address `other` allows, this list allows too: this list is empty
    /// (any address), or each network of `other` lies inside one network of this list.
    /// An empty `other` allows any address, so only an empty list covers it.
    pub fn covers(&self, other: &IpAllowlist) -> bool {
        self.is_empty()
            || (!other.is_empty()
                && other
                    .entries()
                    .iter()
                    .all(|inner| self.entries().iter().any(|outer| outer.contains(inner))))
    }
}

fn parse_entry(entry: &str) -> Result<IpNet, InvalidIpEntry> {
    let entry = entry.trim();
    let net = if entry.contains('/') {
        IpNet::from_str(entry).map(|n| n.trunc()).ok()
    } else {
        IpAddr::from_str(entry).ok().map(IpNet::from)
    };
    net.map(canonical_net)
        .ok_or_else(|| InvalidIpEntry(entry.chars().take(64).collect()))
}

/// An IPv4-mapped IPv6 network (`::ffff:a.b.c.d/96+n`) becomes its IPv4 form.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        other => other,
    }
}

impl fmt::Debug for IpAllowlist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries().iter().map(|n| DisplayNet(*n)))
            .finish()
    }
}

struct DisplayNet(IpNet);
impl fmt::Debug for DisplayNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&display_entry(&self.0))
    }
}

/// Host networks print as plain addresses, as they were most likely written.
fn display_entry(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

impl Serialize for IpAllowlist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.entries().iter().map(display_entry))
    }
}

impl<'de> Deserialize<'de> for IpAllowlist {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries = Vec::<String>::deserialize(d)?;
        IpAllowlist::parse(&entries).map_err(serde::de::Error::custom)
    }
}

/// The peer address of a connection, for servers that insert it themselves (plain
/// hyper): `req.extensions_mut().insert(PeerAddr(remote_addr))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Finds a request's client IP. Implemented for closures
/// `Fn(&HeaderMap, &Extensions) -> Option<IpAddr>`.
///
/// `None` means unknown; a key with an allowlist is then refused (fail closed).
pub trait ClientIpResolver: Send + Sync + 'static {
    /// The client IP of the request with these headers and extensions.
    fn client_ip(&self, headers: &HeaderMap, extensions: &Extensions) -> Option<IpAddr>;
}

impl<F> ClientIpResolver for F
where
    F: Fn(&HeaderMap, &Extensions) -> Option<IpAddr> + Send + Sync + 'static,
{
    fn client_ip(&self, headers: &HeaderMap, extensions: &Extensions) -> Option<IpAddr> {
        self(headers, extensions)
    }
}

/// The default resolver: the connection's peer address.
///
/// It reads, in order, [`PeerAddr`], axum's `ConnectInfo<SocketAddr>` (feature `axum`,
/// served with `into_make_service_with_connect_info`) and tonic's `TcpConnectInfo`
/// (feature `tonic`). It never reads forwarding headers; see [`TrustedProxies`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PeerIp;

impl PeerIp {
    /// The peer address found in `extensions`, if any.
    pub fn peer_ip(extensions: &Extensions) -> Option<IpAddr> {
        if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
            return Some(addr.ip());
        }
        #[cfg(feature = "axum")]
        if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
            return Some(info.0.ip());
        }
        #[cfg(feature = "tonic")]
        if let Some(info) = extensions.get::<tonic::transport::server::TcpConnectInfo>() {
            if let Some(addr) = info.remote_addr() {
                return Some(addr.ip());
            }
        }
        None
    }
}

impl ClientIpResolver for PeerIp {
    fn client_ip(&self, _headers: &HeaderMap, extensions: &Extensions) -> Option<IpAddr> {
        Self::peer_ip(extensions)
    }
}

/// The forwarding header a [`TrustedProxies`] resolver reads. Exactly one is read; the
/// other is ignored, whatever it says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardingHeader {
    /// `X-Forwarded-For: <client>, <proxy1>, …`, which nginx, HAProxy and the cloud load
    /// balancers append to. The default.
    #[default]
    XForwardedFor,
    /// `Forwarded: for=<client>, for=<proxy1>` (RFC 7239), for proxies configured to
    /// append to it.
    Forwarded,
}

/// Honours one forwarding header, `X-Forwarded-For` by default, and only from trusted
/// proxies.
///
/// If the direct peer is not a trusted proxy, the headers are ignored and the peer is the
/// client: anyone can send the headers. Otherwise the forwarding chain is walked from the
/// right (the hop nearest this server) to the left, skipping trusted proxies, and the
/// first untrusted hop is the client. A malformed hop makes the client unknown.
///
/// Only the header chosen with [`TrustedProxies::header`] is read. Proxies append to
/// the header they are configured for and pass any other through untouched, so a client
/// could otherwise name itself in the header the proxy does not write. Choose the one
/// your proxy appends to: nginx's `proxy_add_x_forwarded_for`, HAProxy's `forwardfor`
/// and the cloud load balancers write `X-Forwarded-For`.
///
/// ```
/// use keygate::client_ip::{ForwardingHeader, IpAllowlist, TrustedProxies};
///
/// let proxies = IpAllowlist::parse(["10.0.0.0/8"]).unwrap();
/// let xff = TrustedProxies::new(proxies.clone()); // reads X-Forwarded-For only
/// let rfc = TrustedProxies::new(proxies).header(ForwardingHeader::Forwarded);
/// ```
#[derive(Clone, Debug)]
pub struct TrustedProxies {
    proxies: IpAllowlist,
    header: ForwardingHeader,
}

impl TrustedProxies {
    /// Trusts the proxies at these addresses or networks, reading `X-Forwarded-For`.
    pub fn new(proxies: IpAllowlist) -> Self {
        Self {
            proxies,
            header: ForwardingHeader::default(),
        }
    }

    /// Reads `header` instead, and only it.
    pub fn header(mut self, header: ForwardingHeader) -> Self {
        self.header = header;
        self
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        !self.proxies.is_empty() && self.proxies.allows(ip)
    }
}

impl ClientIpResolver for TrustedProxies {
    fn client_ip(&self, headers: &HeaderMap, extensions: &Extensions) -> Option<IpAddr> {
        let peer = PeerIp::peer_ip(extensions)?;
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let hops = match self.header {
            ForwardingHeader::XForwardedFor => x_forwarded_for_hops(headers)?,
            ForwardingHeader::Forwarded => forwarded_hops(headers)?,
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            let ip = (*hop)?;
            client = ip;
            if !self.is_trusted(ip) {
                return Some(ip);
            }
        }
        Some(client)
    }
}

/// The hops named by `Forwarded`, left to right; `None` entries are hops that did not
/// parse. `None` when a value is not text.
fn forwarded_hops(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all(http::header::FORWARDED) {
        let value = value.to_str().ok()?;
        for element in value.split(',') {
            let for_value = element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| value.trim())
            });
            // An element without `for=` says nothing about the client.
            if let Some(v) = for_value {
                hops.push(parse_forwarded_for(v));
            }
        }
    }
    Some(hops)
}

/// The hops named by `X-Forwarded-For`, left to right, as [`forwarded_hops`].
fn x_forwarded_for_hops(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let value = value.to_str().ok()?;
        for hop in value.split(',') {
            hops.push(parse_node(hop.trim()));
        }
    }
    Some(hops)
}

/// A `for=` value: `192.0.2.60`, `"[2001:db8::1]:4711"`, `"192.0.2.60:8080"`.
fn parse_forwarded_for(value: &str) -> Option<IpAddr> {
    let value = value.trim_matches('"');
    parse_node(value)
}

fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(node) {
        return Some(ip);
    }
    if let Ok(sock) = SocketAddr::from_str(node) {
        return Some(sock.ip());
    }
    let inner = node.strip_prefix('[')?.split(']').next()?;
    IpAddr::from_str(inner).ok()
}

#[cfg(test)]
mod tests;
