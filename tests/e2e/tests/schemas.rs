//! Every service's schema, applied by several instances starting at the
//! same moment against one PostgreSQL: the advisory lock of
//! `servicekit::db` serialises them, so none fails on a table or index
//! another is creating.

use testkit::Postgres;

/// Each service's schema, by its database's name.
const SCHEMAS: [(&str, &str); 4] = [
    ("campaigns", campaign_service::store::SCHEMA),
    ("users", user_service::store::SCHEMA),
    ("notifications", notification_service::store::SCHEMA),
    ("email", email_service::ledger::SCHEMA),
];

/// Instances of each service started at once.
const INSTANCES: usize = 3;

/// Applies every schema `INSTANCES` times at once, the schema of a service
/// in the database `database(service)` gives; every application succeeds.
async fn apply_all_at_once(database: impl Fn(&str) -> String) {
    let mut starts = Vec::new();
    for (name, schema) in SCHEMAS {
        let url = database(name);
        for _ in 0..INSTANCES {
            let url = url.clone();
            starts.push((
                name,
                tokio::spawn(async move { servicekit::db::connect(&url, schema).await.map(|_| ()) }),
            ));
        }
    }
    for (name, start) in starts {
        if let Err(error) = start.await.unwrap() {
            panic!("an instance of the {name} schema failed: {error:#}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_of_every_service_starting_at_once_each_get_their_schema() {
    let postgres = Postgres::start();
    apply_all_at_once(|name| postgres.database(name)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_service_starting_at_once_in_one_shared_database() {
    let postgres = Postgres::start();
    let shared = postgres.database("comms");
    apply_all_at_once(|_| shared.clone()).await;
}
