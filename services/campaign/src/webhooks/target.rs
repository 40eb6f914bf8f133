//! Where webhooks may go: `http` and `https` URLs, never to a link-local
//! address (where cloud metadata servers answer, `169.254.169.254`) or a
//! known metadata name, unless the deployment allows them
//! (`CAMPAIGN_WEBHOOK_ALLOW_LINK_LOCAL`). A URL is checked when it is
//! registered, and the addresses its name resolves to are checked again at
//! every connection, so that a name pointed at such an address later is
//! refused too.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use url::{Host, Url};

/// The longest URL taken.
pub const MAX_URL: usize = 2_000;

/// Names that reach a cloud's metadata server from inside it.
const METADATA_NAMES: [&str; 3] = ["metadata.google.internal", "metadata", "instance-data"];

/// `raw` as a URL webhooks may go to; otherwise why not.
pub fn check_url(raw: &str, allow_link_local: bool) -> Result<Url, String> {
    if raw.len() > MAX_URL {
        return Err(format!("the URL is longer than {MAX_URL} characters"));
    }
    let url = Url::parse(raw).map_err(|error| format!("`{raw}` is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{raw}` is not an http or https URL (its scheme is `{}`)",
            url.scheme()
        ));
    }
    let refused = match url.host() {
        None => return Err(format!("`{raw}` names no host")),
        Some(Host::Ipv4(ip)) => refused_address(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => refused_address(IpAddr::V6(ip)),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            METADATA_NAMES
                .contains(&name.as_str())
                .then_some("a cloud metadata server's name")
        }
    };
    match refused {
        Some(why) if !allow_link_local => Err(format!(
            "`{raw}` goes to {why}, which webhooks may not reach (CAMPAIGN_WEBHOOK_ALLOW_LINK_LOCAL allows it)"
        )),
        _ => Ok(url),
    }
}

/// Why webhooks may not go to `ip`, if they may not.
fn refused_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => refused_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(mapped) => refused_v4(mapped),
            None => refused_v6(ip),
        },
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    if ip.is_link_local() {
        Some("a link-local address (where cloud metadata servers answer)")
    } else if ip == Ipv4Addr::new(100, 100, 100, 200) {
        Some("a cloud metadata server's address")
    } else if ip.is_unspecified() || ip.is_broadcast() {
        Some("no host's address")
    } else {
        None
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    // AWS's metadata server over IPv6.
    const AWS_METADATA: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);
    if ip.segments()[0] & 0xffc0 == 0xfe80 {
        Some("a link-local address (where cloud metadata servers answer)")
    } else if ip == AWS_METADATA {
        Some("a cloud metadata server's address")
    } else if ip.is_unspecified() {
        Some("no host's address")
    } else {
        None
    }
}

/// Resolves the names of webhook URLs, leaving out the addresses webhooks
/// may not reach: a name that resolves to none but those is an error.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// `CAMPAIGN_WEBHOOK_ALLOW_LINK_LOCAL`: leave nothing out.
    pub allow_link_local: bool,
}

impl ureq::Resolver for GuardedResolver {
    fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        let all: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        if self.allow_link_local {
            return Ok(all);
        }
        let allowed: Vec<SocketAddr> = all
            .iter()
            .copied()
            .filter(|address| refused_address(address.ip()).is_none())
            .collect();
        match (allowed.is_empty(), all.first()) {
            (true, Some(first)) => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{netloc} resolves to {}: {}",
                    first.ip(),
                    refused_address(first.ip()).unwrap_or("an address webhooks may not reach")
                ),
            )),
            _ => Ok(allowed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::Resolver;

    #[test]
    fn only_http_and_https_urls_to_a_host_pass() {
        for good in [
            "http://127.0.0.1:9000/hooks",
            "https://hooks.example.com/comms?key=1",
            "http://[2001:db8::1]/",
        ] {
            assert!(check_url(good, false).is_ok(), "{good}");
        }
        for bad in ["ftp://example.com/", "file:///etc/passwd", "not a url", "http://"] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url(&format!("http://example.com/{}", "a".repeat(MAX_URL)), false).is_err());
    }

    #[test]
    fn link_local_and_metadata_addresses_pass_only_when_allowed() {
        for bad in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[fd00:ec2::254]/",
            "http://100.100.100.200/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://0.0.0.0:8080/",
        ] {
            let error = check_url(bad, false).unwrap_err();
            assert!(error.contains("may not reach"), "{bad}: {error}");
            assert!(check_url(bad, true).is_ok(), "{bad}");
        }
    }

    #[test]
    fn a_name_is_refused_at_connection_when_it_resolves_to_a_refused_address() {
        let guarded = GuardedResolver {
            allow_link_local: false,
        };
        let error = guarded.resolve("169.254.169.254:80").unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(guarded.resolve("127.0.0.1:80").unwrap().len(), 1);
        let open = GuardedResolver {
            allow_link_local: true,
        };
        assert_eq!(open.resolve("169.254.169.254:80").unwrap().len(), 1);
    }
}
