//! The stack's manifest, `stack.list` at the repository's root: which
//! services there are, their binaries, default ports, port variables and
//! readiness paths. The scripts read the same file (`scripts/manifest.sh`),
//! so a service added there is started, waited for and checked by the tests
//! too. The file is compiled in (`include_str!`): a change to it rebuilds
//! the tests.

use std::sync::OnceLock;

/// The manifest's text.
const STACK_LIST: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../stack.list"));

/// One service of the manifest (a row of kind `service`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Its name, which is its cargo package's too (`user-service`).
    pub name: &'static str,
    /// Its binary.
    pub binary: &'static str,
    /// Its default HTTP port.
    pub port: u16,
    /// The variable that sets that port (`USER_PORT`).
    pub port_variable: &'static str,
    /// The path that answers 200 once it is ready (`/ready`).
    pub ready_path: &'static str,
    /// Its database: its name in the database URLs.
    pub database: &'static str,
}

/// The services, in the order the stacks start them.
pub fn services() -> &'static [Service] {
    static SERVICES: OnceLock<Vec<Service>> = OnceLock::new();
    SERVICES.get_or_init(|| parse(STACK_LIST).unwrap_or_else(|error| panic!("stack.list: {error}")))
}

/// The names of the services, in start order.
pub fn service_names() -> impl Iterator<Item = &'static str> {
    services().iter().map(|service| service.name)
}

/// The service `name`; panics when the manifest has none of that name.
pub fn service(name: &str) -> &'static Service {
    services()
        .iter()
        .find(|service| service.name == name)
        .unwrap_or_else(|| panic!("{name} is no service of stack.list"))
}

/// The service rows of a manifest. Fields are separated by spaces:
/// `kind name port variable binary ready database what...`; `#` starts a
/// comment; rows of another kind (`server`) are skipped.
pub fn parse(text: &'static str) -> Result<Vec<Service>, String> {
    let mut services = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default();
        let fields: Vec<&'static str> = line.split_whitespace().collect();
        match fields[..] {
            [] => continue,
            ["service", name, port, port_variable, binary, ready_path, database, _what, ..] => {
                let port = port
                    .parse()
                    .map_err(|_| format!("line {}: {port} is not a port", number + 1))?;
                services.push(Service {
                    name,
                    binary,
                    port,
                    port_variable,
                    ready_path,
                    database,
                });
            }
            ["server", ..] => continue,
            _ => {
                return Err(format!(
                    "line {}: expected: kind name port variable binary ready database what",
                    number + 1
                ))
            }
        }
    }
    if services.is_empty() {
        return Err("no service".into());
    }
    Ok(services)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_names_every_service_with_its_port_and_variable() {
        let user = service("user-service");
        assert_eq!(user.port_variable, "USER_PORT");
        assert_eq!(user.ready_path, "/ready");
        assert!(service_names().any(|name| name == "campaign-service"));
    }

    #[test]
    fn a_malformed_row_is_named_by_its_line() {
        assert_eq!(
            parse("# comment\nservice a notaport A_PORT a /ready a a\n"),
            Err("line 2: notaport is not a port".into())
        );
        assert!(parse("service a 1 A_PORT\n").unwrap_err().starts_with("line 1:"));
        assert_eq!(
            parse("server redis 6379 REDIS_PORT - - - Redis\n"),
            Err("no service".into())
        );
    }
}
