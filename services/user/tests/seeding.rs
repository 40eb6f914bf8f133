//! Instances of user-service starting at the same moment on one PostgreSQL
//! and one Redis: the users are seeded once, and each instance is built
//! (ready to serve) only once they all are there.

use servicekit::config::ServiceSettings;
use testkit::{Postgres, RedisServer};
use user_service::config::Config;
use user_service::store::UserStore;

/// Enough users that the first seeding is still running when the others
/// look (an unguarded second seeding fails on PostgreSQL: its plain
/// `INSERT` meets the first one's rows).
const USERS: i64 = 30_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_at_once_seed_the_users_once() {
    let redis = RedisServer::start();
    let postgres = Postgres::start();
    let database_url = postgres.database("users");
    let config = Config {
        service: ServiceSettings::on(&redis.url(), &database_url),
        seed_users: USERS,
        ..Config::default()
    };
    let starts: Vec<_> = (0..3)
        .map(|_| {
            let config = config.clone();
            tokio::spawn(async move {
                let service = user_service::build(config).await?;
                // Built means seeded: every user is there already.
                let store = UserStore::new(service.db().clone());
                anyhow::Ok(store.count_up_to(i64::MAX).await?)
            })
        })
        .collect();
    for start in starts {
        let users = start.await.unwrap().expect("every instance starts");
        assert_eq!(users, USERS, "an instance was built before the seeding ended");
    }
    let lease = redis.command(&["EXISTS", "comms:lease:user-service:seed"]);
    assert_eq!(lease.trim(), ":0", "the last instance released the seeding lease");
}
