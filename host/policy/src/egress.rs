//! Egress policy: which URLs and addresses a plugin's requests may reach.
//!
//! Two layers, both checked on **every hop** of a request (redirects are
//! re-checked, never followed blindly):
//!
//! 1. **Allowed hosts** ([`AllowedHosts`]): the URL's scheme, host and port
//!    must match an entry. The entries are the endpoints the plugin declared
//!    *and* the operator granted (see [`crate::grants`]).
//! 2. **Blocked networks** ([`BlockedNetworks`]): every address the host name
//!    resolves to is checked again. A name the attacker controls can resolve
//!    to loopback, to a private range or to the cloud metadata service
//!    (169.254.169.254, fd00:ec2::254); checking the resolved address, and
//!    connecting only to addresses that passed, is the standard defence
//!    against that and against DNS rebinding. IPv4-mapped (`::ffff:a.b.c.d`),
//!    IPv4-compatible, NAT64 and 6to4 spellings are unwrapped first, since
//!    that is where such checks are usually bypassed.
//!
//! Defaults: loopback, private, shared (CGNAT) and link-local ranges are
//! refused; tests against local emulators allow loopback by configuration.
//! Unspecified, multicast, broadcast and reserved addresses, the other IANA
//! special-purpose ranges that reach nothing on the internet (benchmarking,
//! IETF protocol assignments, Teredo, ORCHID, discard-only, documentation),
//! and the metadata addresses, are refused whatever the configuration says.
//! Site-local `fec0::/10` and local-use NAT64 `64:ff9b:1::/48` count as
//! private.
//!
//! This is a host policy, not a URL policy: paths and queries are not
//! matched. An endpoint is a place a plugin may talk to, with any path.
//!
//! # Entry syntax
//!
//! | form | matches |
//! |---|---|
//! | `https://api.example.com` | exactly that host, port 443 |
//! | `https://api.example.com:8443` | that host and port |
//! | `https://*.example.com` | any subdomain of `example.com` (not `example.com` itself), port 443 |
//! | `http://127.0.0.1:*` | that host, any port |
//!
//! A path after the authority is ignored. Anything else is rejected when the
//! entry is parsed: a missing scheme, a scheme other than http/https, an empty
//! host, `*` alone, or a wildcard that is not a whole leading label (`*foo.com`).
//! An empty list denies everything.
//!
//! ```
//! use proofpix_policy::AllowedHosts;
//! let hosts = AllowedHosts::parse(["https://*.sharepoint.com", "https://graph.microsoft.com"]).unwrap();
//! assert!(hosts.matches(&"https://contoso.sharepoint.com/sites/x".parse().unwrap()));
//! assert!(!hosts.matches(&"https://sharepoint.com/".parse().unwrap()));
//! assert!(!hosts.matches(&"http://graph.microsoft.com/".parse().unwrap()));
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// One parsed allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: String,
    host: HostPattern,
    port: PortPattern,
    /// The entry as written, for messages.
    display: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// A host name (lowercase) or an IP literal in canonical form.
    Exact(String),
    /// `*.suffix`: stored without the `*.`.
    Subdomains(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    Exact(u16),
    Any,
}

/// Why an allow-list entry was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// No `scheme://`.
    #[error("does not contain a scheme (write it as https://host)")]
    MissingScheme,
    /// A scheme other than http or https.
    #[error("scheme {0:?} is not supported (use https, or http for local emulators)")]
    UnsupportedScheme(String),
    /// No host after the scheme.
    #[error("has no host")]
    EmptyHost,
    /// A wildcard other than a whole leading `*.` label.
    #[error("has a wildcard that is not a leading `*.` label (write *.example.com)")]
    BadWildcard,
    /// A port that is not a number or `*`.
    #[error("has an invalid port")]
    BadPort,
    /// The host is not a valid host name or IP literal.
    #[error("has an invalid host: {0}")]
    BadHost(String),
}

impl AllowedHost {
    /// Parses one entry (see the module docs for the syntax).
    ///
    /// # Errors
    /// Returns the first problem found; the caller adds the entry text.
    pub fn parse(entry: &str) -> Result<Self, EntryError> {
        let entry = entry.trim();
        let (scheme, rest) = entry.split_once("://").ok_or(EntryError::MissingScheme)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return Err(EntryError::UnsupportedScheme(scheme));
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() {
            return Err(EntryError::EmptyHost);
        }
        if authority.contains('@') {
            return Err(EntryError::BadHost("user info is not allowed".into()));
        }
        let (host_part, port) = split_port(authority)?;
        let port = match port {
            None => PortPattern::Exact(default_port(&scheme)),
            Some("*") => PortPattern::Any,
            Some(p) => PortPattern::Exact(p.parse().map_err(|_| EntryError::BadPort)?),
        };
        let host = if let Some(suffix) = host_part.strip_prefix("*.") {
            if suffix.contains('*') || suffix.is_empty() {
                return Err(EntryError::BadWildcard);
            }
            HostPattern::Subdomains(normalise_host(suffix)?)
        } else if host_part.contains('*') {
            return Err(EntryError::BadWildcard);
        } else {
            HostPattern::Exact(normalise_host(host_part)?)
        };
        Ok(AllowedHost {
            scheme,
            host,
            port,
            display: entry.to_string(),
        })
    }

    /// Whether a URL falls under this entry.
    pub fn matches(&self, url: &Url) -> bool {
        if url.scheme() != self.scheme {
            return false;
        }
        let Some(port) = url.port_or_known_default() else {
            return false;
        };
        if let PortPattern::Exact(p) = self.port
            && p != port
        {
            return false;
        }
        let Some(host) = url_host(url) else {
            return false;
        };
        match &self.host {
            HostPattern::Exact(h) => *h == host,
            HostPattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }

    /// Whether everything this entry matches is also matched by `wider`
    /// (used to check an operator's grant covers a declared endpoint).
    pub fn is_covered_by(&self, wider: &AllowedHost) -> bool {
        if self.scheme != wider.scheme {
            return false;
        }
        let port_ok = match (self.port, wider.port) {
            (_, PortPattern::Any) => true,
            (PortPattern::Exact(a), PortPattern::Exact(b)) => a == b,
            (PortPattern::Any, PortPattern::Exact(_)) => false,
        };
        if !port_ok {
            return false;
        }
        match (&self.host, &wider.host) {
            (HostPattern::Exact(a), HostPattern::Exact(b)) => a == b,
            (HostPattern::Exact(a), HostPattern::Subdomains(s)) => a
                .strip_suffix(s.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            (HostPattern::Subdomains(a), HostPattern::Subdomains(s)) => {
                a == s
                    || a.strip_suffix(s.as_str())
                        .is_some_and(|head| head.ends_with('.'))
            }
            (HostPattern::Subdomains(_), HostPattern::Exact(_)) => false,
        }
    }

    /// The entry as written.
    pub fn as_str(&self) -> &str {
        &self.display
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "http" { 80 } else { 443 }
}

fn split_port(authority: &str) -> Result<(&str, Option<&str>), EntryError> {
    if let Some(rest) = authority.strip_prefix('[') {
        // [v6]:port
        let (v6, after) = rest
            .split_once(']')
            .ok_or(EntryError::BadHost("unclosed [".into()))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(EntryError::BadPort)?),
        };
        return Ok((v6, port));
    }
    Ok(match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    })
}

fn normalise_host(host: &str) -> Result<String, EntryError> {
    if host.is_empty() {
        return Err(EntryError::EmptyHost);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    match Host::parse(host) {
        Ok(Host::Domain(d)) => Ok(d.trim_end_matches('.').to_string()),
        Ok(Host::Ipv4(ip)) => Ok(ip.to_string()),
        Ok(Host::Ipv6(ip)) => Ok(ip.to_string()),
        Err(e) => Err(EntryError::BadHost(e.to_string())),
    }
}

/// The URL's host in the same normal form as entries use.
fn url_host(url: &Url) -> Option<String> {
    match url.host()? {
        Host::Domain(d) => Some(d.trim_end_matches('.').to_ascii_lowercase()),
        Host::Ipv4(ip) => Some(ip.to_string()),
        Host::Ipv6(ip) => Some(ip.to_string()),
    }
}

/// A parsed allow-list. Empty denies everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

impl AllowedHosts {
    /// Parses every entry.
    ///
    /// # Errors
    /// The first bad entry, with its text.
    pub fn parse<I, S>(entries: I) -> Result<Self, (String, EntryError)>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let entries = entries
            .into_iter()
            .map(|e| AllowedHost::parse(e.as_ref()).map_err(|err| (e.as_ref().to_string(), err)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowedHosts { entries })
    }

    /// From already parsed entries.
    pub fn from_entries(entries: Vec<AllowedHost>) -> Self {
        AllowedHosts { entries }
    }

    /// The first entry matching the URL.
    pub fn find(&self, url: &Url) -> Option<&AllowedHost> {
        self.entries.iter().find(|e| e.matches(url))
    }

    /// Whether any entry matches.
    pub fn matches(&self, url: &Url) -> bool {
        self.find(url).is_some()
    }

    /// The entries.
    pub fn entries(&self) -> &[AllowedHost] {
        &self.entries
    }

    /// Whether the list is empty (and so denies everything).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// What kind of network an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetworkClass {
    /// Ordinary internet address.
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918, fc00::/7 unique local, 100.64.0.0/10 shared (CGNAT).
    Private,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// The cloud metadata services (169.254.169.254, fd00:ec2::254).
    Metadata,
    /// Unspecified, multicast, broadcast, reserved or documentation ranges.
    Unroutable,
}

impl NetworkClass {
    /// The class in words, for messages ("a loopback address").
    pub fn describe(self) -> &'static str {
        match self {
            NetworkClass::Public => "a public address",
            NetworkClass::Loopback => "a loopback address",
            NetworkClass::Private => "a private-network address",
            NetworkClass::LinkLocal => "a link-local address",
            NetworkClass::Metadata => "the cloud metadata service",
            NetworkClass::Unroutable => "an unroutable address",
        }
    }
}

/// Classifies an address, unwrapping IPv4 embedded in IPv6 first.
pub fn classify(ip: IpAddr) -> NetworkClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

fn classify_v4(ip: Ipv4Addr) -> NetworkClass {
    let [a, b, c, _] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        return NetworkClass::Metadata;
    }
    if ip.is_loopback() {
        NetworkClass::Loopback
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        // RFC 1918, and 100.64.0.0/10 shared address space (CGNAT): both
        // reach machines inside someone's network.
        NetworkClass::Private
    } else if ip.is_link_local() {
        NetworkClass::LinkLocal
    } else if ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        // 0.0.0.0/8 "this network", 240.0.0.0/4 reserved.
        || a == 0
        || a >= 240
        // Documentation: TEST-NET-1, -2, -3.
        || (a == 192 && b == 0 && c == 2)
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        // 192.0.0.0/24 IETF protocol assignments (DS-Lite, NAT64 discovery, ...).
        || (a == 192 && b == 0 && c == 0)
        // 192.88.99.0/24, the deprecated 6to4 relay anycast.
        || (a == 192 && b == 88 && c == 99)
        // 198.18.0.0/15 benchmarking: lab networks, never the internet.
        || (a == 198 && (b == 18 || b == 19))
    {
        NetworkClass::Unroutable
    } else {
        NetworkClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> NetworkClass {
    let seg = ip.segments();
    let [s0, s1, s2, s3, ..] = seg;
    // fd00:ec2::254 sits inside the unique-local range below, which a test
    // configuration may allow; it must stay refused.
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254) {
        return NetworkClass::Metadata;
    }
    if ip.is_loopback() {
        NetworkClass::Loopback
    } else if ip.is_unspecified()
        || ip.is_multicast()
        // 2001:db8::/32 and 3fff::/20 documentation.
        || (s0 == 0x2001 && s1 == 0x0db8)
        || (s0 == 0x3fff && s1 & 0xf000 == 0)
        // 100::/64 discard-only.
        || (s0 == 0x0100 && s1 == 0 && s2 == 0 && s3 == 0)
        // 2001::/32 Teredo: a tunnel to whatever IPv4 address its client
        // and server fields name, internal ones included.
        || (s0 == 0x2001 && s1 == 0)
        // 2001:2::/48 benchmarking.
        || (s0 == 0x2001 && s1 == 0x0002 && s2 == 0)
        // 2001:10::/28 ORCHID and 2001:20::/28 ORCHIDv2: identifiers, not locators.
        || (s0 == 0x2001 && (s1 & 0xfff0 == 0x0010 || s1 & 0xfff0 == 0x0020))
        // 5f00::/16 SRv6 segment identifiers.
        || s0 == 0x5f00
        // The rest of 64:ff9b::/32 outside the NAT64 prefixes handled by
        // `embedded_v4` and below: unassigned.
        || (s0 == 0x0064 && s1 == 0xff9b && s2 != 0x0001)
        // ::/96 leftovers (`::`, `::1` are above) and 0::/8 generally: reserved.
        || s0 == 0
    {
        NetworkClass::Unroutable
    } else if (s0 & 0xfe00) == 0xfc00
        // fec0::/10 site-local: deprecated, but still routed inside some sites.
        || (s0 & 0xffc0) == 0xfec0
        // 64:ff9b:1::/48 local-use NAT64 (RFC 8215): translated to whatever
        // IPv4 network the site chooses, with a prefix length we cannot know.
        || (s0 == 0x0064 && s1 == 0xff9b && s2 == 0x0001)
    {
        NetworkClass::Private
    } else if (s0 & 0xffc0) == 0xfe80 {
        NetworkClass::LinkLocal
    } else {
        NetworkClass::Public
    }
}

/// IPv4 hidden in an IPv6 address: mapped (`::ffff:a.b.c.d`), translated
/// (`::ffff:0:a.b.c.d`, RFC 2765), compatible (`::a.b.c.d`, deprecated but
/// still routed by some stacks), NAT64 (`64:ff9b::/96`) and 6to4
/// (`2002:AABB:CCDD::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let v4_from = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0, hi, lo] if !(hi == 0 && lo <= 1) => Some(v4_from(hi, lo)),
        [0, 0, 0, 0, 0xffff, 0, hi, lo] => Some(v4_from(hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(v4_from(hi, lo)),
        [0x2002, hi, lo, ..] => Some(v4_from(hi, lo)),
        _ => None,
    }
}

/// Which address classes a plugin's requests may reach besides public ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockedNetworks {
    /// Allow loopback (local emulators in tests).
    pub allow_loopback: bool,
    /// Allow private, unique-local and shared ranges (an on-premises server).
    pub allow_private: bool,
    /// Allow link-local ranges (the metadata addresses stay refused).
    pub allow_link_local: bool,
}

impl BlockedNetworks {
    /// Checks one resolved (or literal) address.
    ///
    /// # Errors
    /// The class of the refused address.
    pub fn check(&self, ip: IpAddr) -> Result<(), NetworkClass> {
        let class = classify(ip);
        let allowed = match class {
            NetworkClass::Public => true,
            NetworkClass::Loopback => self.allow_loopback,
            NetworkClass::Private => self.allow_private,
            NetworkClass::LinkLocal => self.allow_link_local,
            NetworkClass::Metadata | NetworkClass::Unroutable => false,
        };
        if allowed { Ok(()) } else { Err(class) }
    }

    /// Checks a URL whose host is an IP literal (`http://127.0.0.1/`,
    /// `http://[::ffff:a9fe:a9fe]/`, and the spellings the URL parser turns
    /// into one, like `http://2130706433/`). HTTP clients never resolve a
    /// literal, so a checking resolver never sees it: every place that sends
    /// a request calls this on every URL it connects to (the runtime on each
    /// hop of a plugin's request, the host's OAuth token requests). `Ok` for
    /// a host name, which the resolver checks.
    ///
    /// # Errors
    /// The literal address and its refused class.
    pub fn check_literal(&self, url: &Url) -> Result<(), (IpAddr, NetworkClass)> {
        match literal_ip(url) {
            Some(ip) => self.check(ip).map_err(|class| (ip, class)),
            None => Ok(()),
        }
    }
}

/// The address of a URL whose host is an IP literal.
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        Host::Domain(_) => None,
    }
}

/// Why a request was refused. The caller prefixes the plugin's name and
/// version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EgressDenial {
    /// The URL could not be parsed or is not http(s).
    #[error("{url} is not an http or https URL")]
    BadUrl {
        /// The URL as given.
        url: String,
    },
    /// The host matches none of the granted endpoints.
    #[error(
        "asked for {url}, which is not in its allowed hosts ({allowed}); declare the endpoint in the plugin and grant it in the integration's config"
    )]
    HostNotAllowed {
        /// The URL as given.
        url: String,
        /// The allowed entries, comma-separated, or "none".
        allowed: String,
    },
    /// The host resolved to, or is, an address in a refused class.
    #[error("asked for {url}, whose address {ip} is {}; refused{}", class.describe(), hint(*class))]
    BlockedAddress {
        /// The URL as given.
        url: String,
        /// The refused address.
        ip: IpAddr,
        /// Its class.
        class: NetworkClass,
    },
}

impl NetworkClass {
    /// What an operator can change to allow the class, for messages; empty
    /// for classes that are always refused.
    pub fn hint(self) -> &'static str {
        hint(self)
    }
}

fn hint(class: NetworkClass) -> &'static str {
    match class {
        NetworkClass::Loopback => " (set allow_loopback in the grant for local emulators)",
        NetworkClass::Private => " (set allow_private in the grant for on-premises servers)",
        NetworkClass::LinkLocal => " (set allow_link_local in the grant)",
        _ => "",
    }
}

/// Both layers together, as the runtime uses them.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    /// Layer 1.
    pub hosts: AllowedHosts,
    /// Layer 2.
    pub networks: BlockedNetworks,
}

impl EgressPolicy {
    /// Checks a URL against layer 1, and layer 2 when the host is an IP
    /// literal. Returns the matching entry.
    ///
    /// # Errors
    /// The reason for refusal.
    pub fn check_url(&self, url: &Url) -> Result<&AllowedHost, EgressDenial> {
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(EgressDenial::BadUrl {
                url: url.to_string(),
            });
        }
        let entry = self
            .hosts
            .find(url)
            .ok_or_else(|| EgressDenial::HostNotAllowed {
                url: redact_url(url),
                allowed: if self.hosts.is_empty() {
                    "none".into()
                } else {
                    self.hosts
                        .entries()
                        .iter()
                        .map(|e| e.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            })?;
        self.networks
            .check_literal(url)
            .map_err(|(ip, class)| EgressDenial::BlockedAddress {
                url: redact_url(url),
                ip,
                class,
            })?;
        Ok(entry)
    }

    /// Checks one resolved address for `url` against layer 2.
    ///
    /// # Errors
    /// The refused address and its class.
    pub fn check_addr(&self, url: &Url, ip: IpAddr) -> Result<(), EgressDenial> {
        self.networks
            .check(ip)
            .map_err(|class| EgressDenial::BlockedAddress {
                url: redact_url(url),
                ip,
                class,
            })
    }
}

/// A URL without its query and fragment, for messages: queries can carry
/// signatures or tokens (pre-authenticated download links).
pub fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn an_empty_allowlist_denies_everything() {
        let p = EgressPolicy::default();
        let err = p.check_url(&url("https://example.com/")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "asked for https://example.com/, which is not in its allowed hosts (none); declare the endpoint in the plugin and grant it in the integration's config"
        );
    }

    /// The table of entry forms in the module docs, each against the URLs it
    /// must and must not match.
    #[test]
    fn entries_match_as_documented() {
        let cases: &[(&str, &str, bool)] = &[
            (
                "https://api.example.com",
                "https://api.example.com/x?y",
                true,
            ),
            ("https://api.example.com", "https://API.example.com./", true),
            (
                "https://api.example.com",
                "https://api.example.com:8443/",
                false,
            ),
            ("https://api.example.com", "http://api.example.com/", false),
            (
                "https://api.example.com",
                "https://evil-api.example.com/",
                false,
            ),
            (
                "https://api.example.com:8443",
                "https://api.example.com:8443/",
                true,
            ),
            ("https://*.example.com", "https://a.example.com/", true),
            ("https://*.example.com", "https://a.b.example.com/", true),
            ("https://*.example.com", "https://example.com/", false),
            ("https://*.example.com", "https://aexample.com/", false),
            (
                "https://*.example.com",
                "https://example.com.evil.net/",
                false,
            ),
            ("http://127.0.0.1:*", "http://127.0.0.1:39211/token", true),
            ("http://127.0.0.1:*", "http://127.0.0.2:39211/", false),
            ("https://[::1]:8443", "https://[::1]:8443/", true),
            (
                "https://login.salesforce.com/services",
                "https://login.salesforce.com/other",
                true,
            ),
        ];
        for (entry, u, expected) in cases {
            let e = AllowedHost::parse(entry).unwrap_or_else(|err| panic!("{entry}: {err}"));
            assert_eq!(e.matches(&url(u)), *expected, "entry {entry} against {u}");
        }
    }

    #[test]
    fn bad_entries_are_rejected_with_the_reason() {
        let cases: &[(&str, EntryError)] = &[
            ("api.example.com", EntryError::MissingScheme),
            ("ftp://x.com", EntryError::UnsupportedScheme("ftp".into())),
            ("https://", EntryError::EmptyHost),
            ("https://*", EntryError::BadWildcard),
            ("https://*foo.com", EntryError::BadWildcard),
            ("https://a.*.com", EntryError::BadWildcard),
            ("https://a.com:http", EntryError::BadPort),
        ];
        for (entry, expected) in cases {
            assert_eq!(
                AllowedHost::parse(entry).as_ref().err(),
                Some(expected),
                "entry {entry}"
            );
        }
    }

    #[test]
    fn a_wildcard_never_matches_its_own_apex() {
        let e = AllowedHost::parse("https://*.a.com").unwrap_or_else(|e| panic!("{e}"));
        assert!(!e.matches(&url("https://a.com/")));
    }

    #[test]
    fn grants_cover_declared_endpoints_only_when_wider() {
        let p = |s: &str| AllowedHost::parse(s).unwrap_or_else(|e| panic!("{e}"));
        assert!(p("https://x.sharepoint.com").is_covered_by(&p("https://*.sharepoint.com")));
        assert!(p("https://*.a.sharepoint.com").is_covered_by(&p("https://*.sharepoint.com")));
        assert!(!p("https://*.sharepoint.com").is_covered_by(&p("https://x.sharepoint.com")));
        assert!(!p("https://sharepoint.com").is_covered_by(&p("https://*.sharepoint.com")));
        assert!(p("http://127.0.0.1:4000").is_covered_by(&p("http://127.0.0.1:*")));
        assert!(!p("http://127.0.0.1:*").is_covered_by(&p("http://127.0.0.1:4000")));
        assert!(!p("http://a.com").is_covered_by(&p("https://a.com")));
    }

    /// IPv4-mapped and other embedded spellings are where address checks are
    /// usually bypassed; each must classify like the IPv4 address inside.
    #[test]
    fn embedded_ipv4_spellings_classify_like_the_address_inside() {
        let cases: &[(&str, NetworkClass)] = &[
            ("127.0.0.1", NetworkClass::Loopback),
            ("::ffff:127.0.0.1", NetworkClass::Loopback),
            ("::127.0.0.1", NetworkClass::Loopback),
            ("64:ff9b::7f00:1", NetworkClass::Loopback),
            ("2002:7f00:1::", NetworkClass::Loopback),
            ("::ffff:169.254.169.254", NetworkClass::Metadata),
            ("169.254.169.254", NetworkClass::Metadata),
            ("fd00:ec2::254", NetworkClass::Metadata),
            ("10.1.2.3", NetworkClass::Private),
            ("::ffff:192.168.1.1", NetworkClass::Private),
            ("100.64.0.1", NetworkClass::Private),
            ("fc00::1", NetworkClass::Private),
            ("169.254.1.1", NetworkClass::LinkLocal),
            ("fe80::1", NetworkClass::LinkLocal),
            ("0.0.0.0", NetworkClass::Unroutable),
            ("::", NetworkClass::Unroutable),
            ("224.0.0.1", NetworkClass::Unroutable),
            ("255.255.255.255", NetworkClass::Unroutable),
            ("::1", NetworkClass::Loopback),
            ("93.184.216.34", NetworkClass::Public),
            ("2606:4700::1111", NetworkClass::Public),
        ];
        for (ip, expected) in cases {
            let parsed: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
            assert_eq!(classify(parsed), *expected, "address {ip}");
        }
    }

    /// Ranges from the IANA special-purpose registries that reach something
    /// internal, or nothing on the internet; each spelled as an attacker
    /// would.
    #[test]
    fn special_purpose_ranges_are_refused() {
        let cases: &[(&str, NetworkClass)] = &[
            // Local-use NAT64 (RFC 8215): the prefix length is the site's.
            ("64:ff9b:1::a9fe:a9fe", NetworkClass::Private),
            ("64:ff9b:1:ffff::1", NetworkClass::Private),
            // Well-known NAT64 embedding a blocked IPv4 address.
            ("64:ff9b::a9fe:a9fe", NetworkClass::Metadata),
            ("64:ff9b::a00:1", NetworkClass::Private),
            ("64:ff9b::5db8:d822", NetworkClass::Public),
            // The rest of 64:ff9b::/32 is unassigned.
            ("64:ff9b:2::1", NetworkClass::Unroutable),
            // IPv4-translated (RFC 2765) and IPv4-mapped.
            ("::ffff:0:127.0.0.1", NetworkClass::Loopback),
            ("::ffff:0:169.254.169.254", NetworkClass::Metadata),
            ("::ffff:0:10.0.0.1", NetworkClass::Private),
            ("::ffff:10.0.0.1", NetworkClass::Private),
            ("::ffff:0:93.184.216.34", NetworkClass::Public),
            // Site-local (deprecated, still routed in places).
            ("fec0::1", NetworkClass::Private),
            ("feff::1", NetworkClass::Private),
            // IETF protocol assignments, the whole /24.
            ("192.0.0.8", NetworkClass::Unroutable),
            ("192.0.0.170", NetworkClass::Unroutable),
            // 6to4 embedding a blocked address; 6to4 relay anycast.
            ("2002:a9fe:a9fe::1", NetworkClass::Metadata),
            ("2002:c0a8:101::1", NetworkClass::Private),
            ("192.88.99.1", NetworkClass::Unroutable),
            // Teredo.
            ("2001::1", NetworkClass::Unroutable),
            (
                "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                NetworkClass::Unroutable,
            ),
            // CGNAT shared address space.
            ("100.64.0.1", NetworkClass::Private),
            ("100.127.255.254", NetworkClass::Private),
            ("100.128.0.1", NetworkClass::Public),
            // Benchmarking.
            ("198.18.0.1", NetworkClass::Unroutable),
            ("198.19.255.255", NetworkClass::Unroutable),
            ("198.20.0.1", NetworkClass::Public),
            ("2001:2::1", NetworkClass::Unroutable),
            // Reserved 240.0.0.0/4, and "this network".
            ("240.0.0.1", NetworkClass::Unroutable),
            ("0.1.2.3", NetworkClass::Unroutable),
            // Multicast, both families.
            ("239.255.255.250", NetworkClass::Unroutable),
            ("ff02::1", NetworkClass::Unroutable),
            ("ff05::1:3", NetworkClass::Unroutable),
            // Discard-only, ORCHID, documentation, SRv6.
            ("100::1", NetworkClass::Unroutable),
            ("2001:10::1", NetworkClass::Unroutable),
            ("2001:20::1", NetworkClass::Unroutable),
            ("3fff::1", NetworkClass::Unroutable),
            ("5f00::1", NetworkClass::Unroutable),
            // Still public.
            ("2001:4860:4860::8888", NetworkClass::Public),
            ("2a00:1450::1", NetworkClass::Public),
            ("8.8.8.8", NetworkClass::Public),
        ];
        for (ip, expected) in cases {
            let parsed: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
            assert_eq!(classify(parsed), *expected, "address {ip}");
        }
    }

    /// A literal host is checked without a resolver, in every spelling the
    /// URL parser turns into an address.
    #[test]
    fn literal_hosts_are_checked_directly() {
        let n = BlockedNetworks::default();
        for u in [
            "http://127.0.0.1:9/token",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::ffff:127.0.0.1]/",
            "http://[64:ff9b::7f00:1]/",
            "http://[::ffff:0:a9fe:a9fe]/",
        ] {
            assert!(n.check_literal(&url(u)).is_err(), "{u}");
        }
        assert_eq!(n.check_literal(&url("https://login.example.com/")), Ok(()));
        assert_eq!(n.check_literal(&url("https://93.184.216.34/")), Ok(()));
        let loopback = BlockedNetworks {
            allow_loopback: true,
            ..BlockedNetworks::default()
        };
        assert_eq!(
            loopback.check_literal(&url("http://127.0.0.1:9/token")),
            Ok(())
        );
    }

    #[test]
    fn metadata_addresses_stay_refused_when_everything_else_is_allowed() {
        let all = BlockedNetworks {
            allow_loopback: true,
            allow_private: true,
            allow_link_local: true,
        };
        for ip in ["169.254.169.254", "::ffff:169.254.169.254", "fd00:ec2::254"] {
            let parsed: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(all.check(parsed), Err(NetworkClass::Metadata), "{ip}");
        }
    }

    #[test]
    fn ip_literal_urls_are_checked_against_blocked_networks() {
        let p = EgressPolicy {
            hosts: AllowedHosts::parse(["http://127.0.0.1:*"]).unwrap_or_else(|e| panic!("{e:?}")),
            networks: BlockedNetworks::default(),
        };
        let err = p
            .check_url(&url("http://127.0.0.1:8080/x?sig=secret"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "asked for http://127.0.0.1:8080/x, whose address 127.0.0.1 is a loopback address; refused (set allow_loopback in the grant for local emulators)"
        );
        let p = EgressPolicy {
            networks: BlockedNetworks {
                allow_loopback: true,
                ..Default::default()
            },
            ..p
        };
        assert!(p.check_url(&url("http://127.0.0.1:8080/x")).is_ok());
    }

    #[test]
    fn messages_never_carry_query_strings() {
        let p = EgressPolicy::default();
        let err = p
            .check_url(&url("https://dl.example.com/f?token=abc123&sig=zz"))
            .unwrap_err();
        assert!(!err.to_string().contains("abc123"));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Parsing never panics, whatever the input.
            #[test]
            fn parsing_any_entry_never_panics(s in ".{0,64}") {
                let _ = AllowedHost::parse(&s);
            }

            /// `*.a.com` never matches `a.com` and always matches `x.a.com`.
            #[test]
            fn wildcards_match_subdomains_only(label in "[a-z][a-z0-9]{0,10}", apex in "[a-z]{1,8}\\.(com|net|org)") {
                let e = AllowedHost::parse(&format!("https://*.{apex}")).unwrap();
                let apex_url: Url = format!("https://{apex}/").parse().unwrap();
                let sub_url: Url = format!("https://{label}.{apex}/").parse().unwrap();
                prop_assert!(!e.matches(&apex_url));
                prop_assert!(e.matches(&sub_url));
            }
        }
    }
}
