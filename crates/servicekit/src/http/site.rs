//! Who a service is to a browser: the host names it answers to and the
//! origins whose pages may call it. A browser names the host it thinks it
//! reaches in `Host` and the page that sent a request in `Origin`; a
//! hostile page can choose neither, so checking both is what keeps it from
//! reading through DNS rebinding ([`super::hosts`]) or writing through a
//! forged request ([`super::origin`]).

use std::sync::Arc;

use axum::http::{header, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The names every service answers to: this machine's loopback names.
/// A rebinding attacker's name is none of them.
const LOOPBACK: &[&str] = &["localhost", "127.0.0.1", "[::1]"];

/// The settings of a [`Site`] (`ALLOWED_HOSTS`, `ALLOWED_ORIGINS`), as
/// comma-separated lists, empty by default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SiteSettings {
    /// Host names the service answers to besides the loopback names, its
    /// own service name and the address it listens on (a proxy's name, a
    /// LAN address): `ALLOWED_HOSTS=comms.example.org,192.168.1.20`.
    #[serde(default)]
    pub allowed_hosts: String,
    /// Origins whose pages may call the service besides its own (a page
    /// served through a proxy under another name):
    /// `ALLOWED_ORIGINS=https://comms.example.org`.
    #[serde(default)]
    pub allowed_origins: String,
}

/// The host names and origins a service accepts from browsers.
#[derive(Debug, Clone)]
pub struct Site {
    /// Lowercase host names, without ports; IPv6 addresses in brackets.
    hosts: Arc<Vec<String>>,
    /// Lowercase origins (`scheme://host[:port]`) allowed besides the
    /// request's own.
    origins: Arc<Vec<String>>,
    /// Route patterns that take writes from any page ([`Site::open_to_every_page`]).
    open_routes: Arc<Vec<String>>,
    /// Route patterns that take writes from the allowed origins' pages
    /// ([`Site::writable_from_allowed_origins`]).
    writable_routes: Arc<Vec<String>>,
}

impl Site {
    /// The site of the service `name` listening on `listen` (an address
    /// other than a wildcard is a name it answers to), with `settings`.
    pub fn new(name: &str, listen: &str, settings: &SiteSettings) -> Self {
        let listen = if listen.contains(':') && !listen.starts_with('[') {
            format!("[{listen}]")
        } else {
            listen.to_string()
        };
        let mut hosts: Vec<String> = LOOPBACK.iter().map(|host| (*host).to_string()).collect();
        hosts.push(name.to_string());
        if !matches!(listen.as_str(), "0.0.0.0" | "[::]") {
            hosts.push(listen);
        }
        hosts.extend(list(&settings.allowed_hosts));
        Self {
            hosts: Arc::new(hosts.into_iter().map(|host| host.to_ascii_lowercase()).collect()),
            origins: Arc::new(list(&settings.allowed_origins)),
            open_routes: Arc::new(Vec::new()),
            writable_routes: Arc::new(Vec::new()),
        }
    }

    /// The same site, with `route` (a pattern as the router has it,
    /// `/unsubscribe/{token}`) taking requests from any page: a route whose
    /// callers are other sites by design (a mail provider's one-click
    /// unsubscribe POST), and whose URL holds the only authority it needs,
    /// so that a forged request can do nothing its URL does not already
    /// allow. Every other route keeps [`super::origin`]'s checks; the
    /// `Host` check stays for all.
    pub fn open_to_every_page(mut self, route: &str) -> Self {
        Arc::make_mut(&mut self.open_routes).push(route.to_string());
        self
    }

    /// The same site, with `route` (a pattern as the router has it) taking
    /// writes from the pages of the allowed origins, and only theirs: a
    /// write that another service's page makes by design (the dashboard's
    /// import of users into user-service). Such a page is trusted as the
    /// service's own; any other page's write is still refused, and every
    /// other route takes writes from the service's own pages alone.
    pub fn writable_from_allowed_origins(mut self, route: &str) -> Self {
        Arc::make_mut(&mut self.writable_routes).push(route.to_string());
        self
    }

    /// The same site, with `origin` (`scheme://host[:port]`, or a URL
    /// whose origin it takes) among the allowed origins: how a service lets
    /// another one's page read it (user-service, the dashboard's).
    /// An origin on a loopback name brings its twins on the others
    /// (`http://localhost:8080` and `http://127.0.0.1:8080`): the same page,
    /// whichever name it was opened by.
    pub fn allow_origin_of(mut self, url: &str) -> Self {
        let Some(origin) = origin_of(url) else {
            return self;
        };
        let (scheme, authority) = origin.split_once("://").unwrap_or_default();
        let name = host_name(authority);
        let port = &authority[name.len()..];
        let twins: Vec<String> = if LOOPBACK.contains(&name) {
            LOOPBACK
                .iter()
                .map(|loopback| format!("{scheme}://{loopback}{port}"))
                .collect()
        } else {
            vec![origin]
        };
        let origins = Arc::make_mut(&mut self.origins);
        for twin in twins {
            if !origins.contains(&twin) {
                origins.push(twin);
            }
        }
        self
    }

    /// CORS for the allowed origins' pages: they may read (`GET`, `HEAD`,
    /// with an `Authorization` header, so behind the API token too) and
    /// see the answers. They may `POST` (with a `Content-Type`) when a
    /// route takes their writes ([`Site::writable_from_allowed_origins`]);
    /// [`super::origin`] still refuses their writes to any other route.
    pub fn cors(&self) -> CorsLayer {
        let origins: Vec<HeaderValue> = self
            .origins
            .iter()
            .filter_map(|origin| HeaderValue::from_str(origin).ok())
            .collect();
        let cors = CorsLayer::new().allow_origin(AllowOrigin::list(origins));
        if self.writable_routes.is_empty() {
            cors.allow_methods([Method::GET, Method::HEAD])
                .allow_headers([header::AUTHORIZATION, header::ACCEPT])
        } else {
            cors.allow_methods([Method::GET, Method::HEAD, Method::POST])
                .allow_headers([header::AUTHORIZATION, header::ACCEPT, header::CONTENT_TYPE])
        }
    }

    /// Whether a page of `origin` may write to `route`, the pattern a
    /// request matched: an allowed origin (not merely the request's own),
    /// on a route that takes their writes.
    pub fn takes_writes_from(&self, origin: &str, route: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        self.writable_routes.iter().any(|writable| writable == route) && self.origins.contains(&origin)
    }

    /// Whether `route`, the pattern a request matched, takes requests from
    /// any page.
    pub fn is_open_to_every_page(&self, route: &str) -> bool {
        self.open_routes.iter().any(|open| open == route)
    }

    /// Whether `host` (a `Host` header: a name and maybe a port) names this
    /// service.
    pub fn allows_host(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        self.hosts.contains(&name)
    }

    /// Whether a page of `origin` may call this service when it reached it
    /// as `host`: its own origin (same host and port, whichever scheme a
    /// proxy in front may have added), or one of the allowed origins.
    pub fn allows_origin(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        let authority = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        let own = authority
            .zip(host)
            .is_some_and(|(authority, host)| authority.eq_ignore_ascii_case(host));
        own || self.origins.contains(&origin)
    }
}

/// The name part of a `Host` value: `[::1]` of `[::1]:8080`, `localhost`
/// of `localhost:8080`.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        host.find(']').map_or(host, |end| &host[..=end])
    } else {
        host.split(':').next().unwrap_or(host)
    }
}

/// The origin (`scheme://host[:port]`, lowercase) of `url`; `None` for
/// one that is not `http(s)://…`. A page's `Origin`, and what a
/// Content-Security-Policy names a server by.
pub fn origin_of(url: &str) -> Option<String> {
    let url = url.trim().to_ascii_lowercase();
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    (matches!(scheme, "http" | "https") && !authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

/// The lowercase, non-empty items of a comma-separated list.
fn list(items: &str) -> Vec<String> {
    items
        .split(',')
        .map(|item| item.trim().trim_end_matches('/').to_ascii_lowercase())
        .filter(|item| !item.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(hosts: &str, origins: &str) -> Site {
        let settings = SiteSettings {
            allowed_hosts: hosts.into(),
            allowed_origins: origins.into(),
        };
        Site::new("campaign-service", "0.0.0.0", &settings)
    }

    #[test]
    fn the_origin_of_a_url_is_allowed_once_with_its_loopback_twins_and_anything_else_is_ignored() {
        let site = site("", "https://comms.example.org")
            .allow_origin_of("HTTP://Localhost:8080/dashboard?x=1")
            .allow_origin_of("http://localhost:8080")
            .allow_origin_of("mailto:someone@example.org")
            .allow_origin_of("http://");
        assert_eq!(
            *site.origins,
            [
                "https://comms.example.org",
                "http://localhost:8080",
                "http://127.0.0.1:8080",
                "http://[::1]:8080"
            ]
        );
        assert!(site.allows_origin("http://127.0.0.1:8080", Some("localhost:8082")));
        assert!(!site.allows_origin("http://localhost:8081", Some("localhost:8082")));
    }

    #[test]
    fn loopback_the_service_name_and_listed_hosts_are_allowed_with_any_port() {
        let site = site("Comms.Example.org, 10.0.0.7", "");
        for host in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:8080",
            "campaign-service:8080",
            "comms.example.org",
            "10.0.0.7:8080",
        ] {
            assert!(site.allows_host(host), "{host}");
        }
        for host in [
            "evil.example",
            "localhost.evil.example",
            "0.0.0.0:8080",
            "[::2]:80",
            "",
        ] {
            assert!(!site.allows_host(host), "{host}");
        }
        let bound = Site::new("s", "192.168.1.5", &SiteSettings::default());
        assert!(bound.allows_host("192.168.1.5:8080"));
        assert!(Site::new("s", "::1", &SiteSettings::default()).allows_host("[::1]"));
    }

    #[test]
    fn a_page_of_the_same_host_and_port_or_a_listed_origin_is_allowed() {
        let site = site("", "https://comms.example.org/");
        assert!(site.allows_origin("http://localhost:8080", Some("localhost:8080")));
        assert!(site.allows_origin("https://LOCALHOST:8080", Some("localhost:8080")));
        assert!(site.allows_origin("https://comms.example.org", Some("localhost:8080")));
        assert!(!site.allows_origin("http://localhost:3000", Some("localhost:8080")));
        assert!(!site.allows_origin("http://evil.example", Some("localhost:8080")));
        assert!(!site.allows_origin("null", Some("localhost:8080")));
        assert!(!site.allows_origin("http://localhost:8080", None));
    }

    #[test]
    fn only_the_allowed_origins_write_and_only_to_the_routes_that_take_their_writes() {
        let site = site("", "https://comms.example.org")
            .allow_origin_of("http://localhost:8080")
            .writable_from_allowed_origins("/api/v1/users/import");
        assert!(site.takes_writes_from("http://127.0.0.1:8080", "/api/v1/users/import"));
        assert!(site.takes_writes_from("https://COMMS.example.org/", "/api/v1/users/import"));
        assert!(!site.takes_writes_from("http://localhost:8080", "/api/v1/users"));
        assert!(!site.takes_writes_from("http://evil.example", "/api/v1/users/import"));
        assert!(!site.takes_writes_from("null", "/api/v1/users/import"));
    }

    #[test]
    fn only_the_routes_opened_take_requests_from_every_page() {
        let site = site("", "").open_to_every_page("/unsubscribe/{token}");
        assert!(site.is_open_to_every_page("/unsubscribe/{token}"));
        assert!(!site.is_open_to_every_page("/unsubscribe"));
        assert!(!site.is_open_to_every_page("/api/v1/campaigns"));
        assert!(!self::site("", "").is_open_to_every_page("/unsubscribe/{token}"));
    }
}
