//! Users as an audience, against a real Redis and SQLite or PostgreSQL:
//! the profile's attributes round-trip through `POST`, `PATCH`, `GET` and
//! the import; `GET /api/v1/users/count?filter=…` counts what the test
//! counts itself from the rows it made; a bad filter is a 400 naming where;
//! a database made before the attributes gets their columns at start.

mod common;

use std::fmt::Write;

use serde_json::{json, Value};
use servicekit::config::ServiceSettings;
use testkit::http::call;
use testkit::{Postgres, ServiceHome};
use user_service::config::Config;

async fn send(home: &ServiceHome, method: &str, path: &str, body: Value) -> (u16, Value) {
    call(method, home.url(path), None, Some(&body.to_string())).await
}

/// `text` for a URL's query: every byte but letters and digits escaped.
fn escaped(text: &str) -> String {
    text.bytes().fold(String::new(), |mut out, byte| {
        if byte.is_ascii_alphanumeric() {
            out.push(byte as char);
        } else {
            write!(out, "%{byte:02X}").unwrap();
        }
        out
    })
}

async fn count(home: &ServiceHome, filter: &str) -> (u16, Value) {
    call(
        "GET",
        home.url(&format!("/api/v1/users/count?filter={}", escaped(filter))),
        None,
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attributes_round_trip_through_post_patch_and_get() {
    let home = common::spawn(0, None).await;
    let (status, ada) = send(
        &home,
        "POST",
        "/api/v1/users",
        json!({
            "email": "ada@example.com", "name": "Ada", "country": "GB", "locale": "en-GB",
            "plan": "pro", "signed_up_at": "2024-03-01T10:00:00+01:00",
            "tags": ["vip", "beta", "vip"], "attributes": {"team": "ops", "seats": 3}
        }),
    )
    .await;
    assert_eq!(status, 201, "{ada}");
    let expected = json!({
        "id": 1, "name": "Ada", "email": "ada@example.com", "country": "GB", "locale": "en-GB",
        "plan": "pro", "signed_up_at": "2024-03-01T09:00:00Z",
        "tags": ["beta", "vip"], "attributes": {"seats": 3, "team": "ops"}
    });
    assert_eq!(ada, expected);
    let (_, read) = call("GET", home.url("/api/v1/users/1"), None, None).await;
    assert_eq!(read, expected);
    let (_, page) = call("GET", home.url("/api/v1/users"), None, None).await;
    assert_eq!(page["users"], json!([expected]));

    // A change sets what it gives, clears what it gives as null, and
    // leaves the rest.
    let (status, changed) = send(
        &home,
        "PATCH",
        "/api/v1/users/1",
        json!({"plan": "team", "locale": null, "tags": ["newsletter"], "signed_up_at": "2023-12-31"}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        changed,
        json!({
            "id": 1, "name": "Ada", "email": "ada@example.com", "country": "GB",
            "plan": "team", "signed_up_at": "2023-12-31T00:00:00Z",
            "tags": ["newsletter"], "attributes": {"seats": 3, "team": "ops"}
        })
    );
    let (status, cleared) = send(
        &home,
        "PATCH",
        "/api/v1/users/1",
        json!({"tags": [], "attributes": null, "country": null, "plan": null, "signed_up_at": null}),
    )
    .await;
    assert_eq!(status, 200, "{cleared}");
    assert_eq!(
        cleared,
        json!({"id": 1, "name": "Ada", "email": "ada@example.com"})
    );
    let (_, read) = call("GET", home.url("/api/v1/users/1"), None, None).await;
    assert_eq!(read, cleared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_attribute_is_a_400_naming_it_and_changes_nothing() {
    let home = common::spawn(1, None).await;
    let (_, before) = call("GET", home.url("/api/v1/users/1"), None, None).await;
    let many: Vec<String> = (0..51).map(|n| format!("t{n}")).collect();
    for (body, named) in [
        (json!({"country": "de"}), "country"),
        (json!({"country": "DEU"}), "country"),
        (json!({"locale": "de_DE"}), "locale"),
        (json!({"plan": ""}), "plan"),
        (json!({"plan": "p".repeat(65)}), "plan"),
        (json!({"signed_up_at": "last week"}), "signed_up_at"),
        (json!({"tags": ["a b"]}), "tags"),
        (json!({"tags": ["t".repeat(65)]}), "tags"),
        (json!({"tags": many}), "tags"),
        (json!({"attributes": [1, 2]}), "attributes"),
        (json!({"attributes": {"big": "x".repeat(4096)}}), "attributes"),
    ] {
        let (status, refused) = send(&home, "PATCH", "/api/v1/users/1", body.clone()).await;
        assert_eq!(status, 400, "{body}: {refused}");
        assert!(
            refused["error"].as_str().unwrap().starts_with(named),
            "{body}: {refused}"
        );
        let mut new = body.clone();
        new["email"] = json!("new@example.com");
        new["name"] = json!("New");
        let (status, refused) = send(&home, "POST", "/api/v1/users", new.clone()).await;
        assert_eq!(status, 400, "{new}: {refused}");
        assert!(
            refused["error"].as_str().unwrap().starts_with(named),
            "{new}: {refused}"
        );
    }
    let (_, after) = call("GET", home.url("/api/v1/users/1"), None, None).await;
    assert_eq!(after, before);
    let (_, page) = call("GET", home.url("/api/v1/users"), None, None).await;
    assert_eq!(page["users"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_sets_the_attributes_and_again_changes_nothing() {
    let home = common::spawn(0, None).await;
    let csv = "email,name,country,locale,plan,signed_up_at,tags\n\
               ada@example.com,Ada,GB,en-GB,pro,2024-01-02,beta;vip\n\
               bob@example.com,Bob,de,,free,,\n\
               cy@example.com,Cy,DE,de-DE,free,2024-01-02T03:04:05Z,newsletter|beta\n";
    let (status, done) = common::import(&home, "text/csv", csv.into()).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (done["created"].as_u64(), done["rejected"].as_u64()),
        (Some(2), Some(1)),
        "{done}"
    );
    assert_eq!(done["rejections"][0]["line"], 3);
    assert!(
        done["rejections"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("country"),
        "{done}"
    );
    let (_, again) = common::import(&home, "text/csv", csv.into()).await;
    assert_eq!(
        (again["created"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(2)),
        "{again}"
    );

    let ndjson = "{\"email\": \"ada@example.com\", \"name\": \"Ada\", \"plan\": \"team\", \"attributes\": {\"team\": \"ops\"}}\n\
                  {\"email\": \"dee@example.com\", \"name\": \"Dee\", \"tags\": [\"vip\"], \"country\": null}\n\
                  {\"email\": \"eve@example.com\", \"name\": \"Eve\", \"tags\": \"vip\"}\n";
    let (status, done) = common::import(&home, "application/x-ndjson", ndjson.into()).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (
            done["created"].as_u64(),
            done["updated"].as_u64(),
            done["rejected"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{done}"
    );
    assert_eq!(done["rejections"][0]["line"], 3);
    let (_, page) = call("GET", home.url("/api/v1/users"), None, None).await;
    assert_eq!(
        page["users"],
        json!([
            {"id": 1, "name": "Ada", "email": "ada@example.com", "country": "GB", "locale": "en-GB",
             "plan": "team", "signed_up_at": "2024-01-02T00:00:00Z", "tags": ["beta", "vip"],
             "attributes": {"team": "ops"}},
            {"id": 2, "name": "Cy", "email": "cy@example.com", "country": "DE", "locale": "de-DE",
             "plan": "free", "signed_up_at": "2024-01-02T03:04:05Z", "tags": ["beta", "newsletter"]},
            {"id": 3, "name": "Dee", "email": "dee@example.com", "tags": ["vip"]},
        ])
    );
    let (_, again) = common::import(&home, "application/x-ndjson", ndjson.into()).await;
    assert_eq!(
        (again["unchanged"].as_u64(), again["updated"].as_u64()),
        (Some(2), Some(0)),
        "{again}"
    );
}

/// One user the count test makes, as the test knows it.
struct Made {
    id: i64,
    email: String,
    country: Option<&'static str>,
    plan: Option<&'static str>,
    locale: Option<&'static str>,
    /// Days since 2020-01-01.
    day: Option<i64>,
    tags: Vec<&'static str>,
    /// Free-form: `team` (a string; `null` in some), `seats` (a number).
    team: Option<&'static str>,
    seats: Option<i64>,
}

impl Made {
    /// Its free-form attributes as JSON: none at all for some users, and
    /// `team` present as `null` for others.
    fn attributes(&self) -> Value {
        match (self.seats, self.team) {
            (None, _) => Value::Null,
            (Some(seats), team) => json!({"team": team, "seats": seats}),
        }
    }
}

/// `n`'s user: every attribute varies with `n`, some missing.
fn made(n: i64) -> Made {
    const COUNTRIES: [Option<&str>; 5] = [Some("DE"), Some("US"), Some("FR"), None, Some("DE")];
    const PLANS: [Option<&str>; 4] = [Some("free"), Some("pro"), Some("team"), None];
    const TAGS: [&str; 3] = ["beta", "newsletter", "vip"];
    Made {
        id: n,
        email: format!("user{n}@example.com"),
        country: COUNTRIES[(n % 5) as usize],
        plan: PLANS[((n / 3) % 4) as usize],
        locale: (n % 3 != 0).then_some("en-US"),
        day: (n % 7 != 0).then_some((n * 37) % 2000),
        tags: TAGS
            .iter()
            .enumerate()
            .filter(|(at, _)| (n >> *at) % 2 == 1 && n % (*at as i64 + 2) != 0)
            .map(|(_, tag)| *tag)
            .collect(),
        team: [None, Some("ops"), Some("sales"), None][(n % 4) as usize],
        seats: (n % 4 != 0).then_some(n % 5),
    }
}

/// The date `day` days after 2020-01-01.
fn date(day: i64) -> String {
    contracts::audience::format_time_ms(1_577_836_800_000 + day * 86_400_000).unwrap()[..10].to_string()
}

/// Whether a filter holds for a user made, as the test decides it.
type Matches = Box<dyn Fn(&Made) -> bool>;

/// Imports users `1..=USERS` as NDJSON and counts by several filters,
/// each against the count made here from the same rows.
async fn counts_match(database: Option<String>) {
    const USERS: i64 = 600;
    let home = common::spawn(0, database.clone()).await;
    let database = database.unwrap_or_else(|| home.sqlite_url("users.db"));
    let all: Vec<Made> = (1..=USERS).map(made).collect();
    let mut body = String::new();
    for user in &all {
        let row = json!({
            "email": user.email, "name": format!("User {}", user.id), "country": user.country,
            "plan": user.plan, "locale": user.locale, "signed_up_at": user.day.map(date), "tags": user.tags,
            "attributes": user.attributes(),
        });
        writeln!(body, "{row}").unwrap();
    }
    let (status, done) = common::import(&home, "application/x-ndjson", body).await;
    assert_eq!((status, done["created"].as_i64()), (200, Some(USERS)), "{done}");

    let tagged = |user: &Made, tag: &str| user.tags.contains(&tag);
    let cutoff = 1000; // 2022-09-27
    let cases: Vec<(String, Matches)> = vec![
        (String::new(), Box::new(|_| true)),
        ("country = 'DE'".into(), Box::new(|u| u.country == Some("DE"))),
        ("country != 'DE'".into(), Box::new(|u| u.country != Some("DE"))),
        ("Country IS NULL".into(), Box::new(|u| u.country.is_none())),
        (
            "plan in ('pro', 'team') and 'beta' in tags".into(),
            Box::new(move |u| matches!(u.plan, Some("pro" | "team")) && tagged(u, "beta")),
        ),
        (
            "plan not in ('free') or 'vip' not in tags".into(),
            Box::new(move |u| u.plan != Some("free") || !tagged(u, "vip")),
        ),
        (
            format!("signed_up_at > '{}' and locale is not null", date(cutoff)),
            Box::new(move |u| u.day.is_some_and(|d| d > cutoff) && u.locale.is_some()),
        ),
        (
            format!(
                "signed_up_at >= '{}T00:00:00+00:00' or signed_up_at is null",
                date(cutoff)
            ),
            Box::new(move |u| u.day.is_none_or(|d| d >= cutoff)),
        ),
        (
            "not (country = 'DE' or country = 'FR') and ('newsletter' in tags or plan = 'team')".into(),
            Box::new(move |u| {
                !(u.country == Some("DE") || u.country == Some("FR"))
                    && (tagged(u, "newsletter") || u.plan == Some("team"))
            }),
        ),
        (
            "id <= '100' and id > '40'".into(),
            Box::new(|u| u.id <= 100 && u.id > 40),
        ),
        ("email = 'user7@example.com'".into(), Box::new(|u| u.id == 7)),
        (
            "name in ('User 1', 'User 2', 'O''Brien')".into(),
            Box::new(|u| u.id <= 2),
        ),
        ("plan = 'enterprise'".into(), Box::new(|_| false)),
        (
            "attributes.team = 'ops'".into(),
            Box::new(|u| u.team == Some("ops")),
        ),
        (
            "attributes.team != 'ops'".into(),
            Box::new(|u| u.team != Some("ops")),
        ),
        ("attributes.team is null".into(), Box::new(|u| u.team.is_none())),
        (
            "attributes.seats in ('1', '3') and attributes.team = 'sales'".into(),
            Box::new(|u| matches!(u.seats, Some(1 | 3)) && u.team == Some("sales")),
        ),
        ("attributes.missing is not null".into(), Box::new(|_| false)),
    ];
    for (filter, matches) in &cases {
        let expected = all.iter().filter(|u| matches(u)).count();
        let (status, counted) = count(&home, filter).await;
        assert_eq!(status, 200, "{filter}: {counted}");
        assert_eq!(counted, json!({"count": expected}), "{filter}");
    }
    let (status, counted) = call("GET", home.url("/api/v1/users/count"), None, None).await;
    assert_eq!((status, counted), (200, json!({"count": USERS})));

    // The expansion's reads: pages of the matching users, and how many
    // match up to an id.
    let db = servicekit::db::connect(&database, user_service::store::SCHEMA)
        .await
        .unwrap();
    let store = user_service::store::UserStore::new(db);
    let filter = contracts::audience::Filter::parse("country = 'DE' and 'beta' in tags").unwrap();
    let expected: Vec<i64> = all
        .iter()
        .filter(|u| u.country == Some("DE") && tagged(u, "beta"))
        .map(|u| u.id)
        .collect();
    let (mut after, mut paged) = (0, Vec::new());
    loop {
        let page = store.page_matching(Some(&filter), after, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        assert!(page.iter().all(|u| u.profile.tags.iter().any(|t| t == "beta")));
        paged.extend(page.iter().map(|u| u.id));
    }
    assert_eq!(paged, expected);
    let up_to = expected[expected.len() / 2];
    let below = expected.iter().filter(|id| **id <= up_to).count() as i64;
    assert_eq!(store.count_matching(Some(&filter), up_to).await.unwrap(), below);

    for (filter, message) in [
        ("contry = 'DE'", "filter: unknown attribute 'contry'"),
        ("country = 'DE' and plan in ('pro', 'team'", "expected ')' at 41"),
        ("signed_up_at > 'soon'", "at 15"),
        ("'beta' in tag", "expected 'tags' at 10"),
    ] {
        let (status, refused) = count(&home, filter).await;
        assert_eq!(status, 400, "{filter}: {refused}");
        let error = refused["error"].as_str().unwrap();
        assert!(error.contains(message), "{filter}: {error}");
    }
    let (status, refused) = count(&home, &"(".repeat(2001)).await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("at 2000"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_by_filter_match_the_rows_made_on_sqlite() {
    counts_match(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_by_filter_match_the_rows_made_on_postgresql() {
    let postgres = Postgres::start();
    counts_match(Some(postgres.database("users"))).await;
}

/// The users table as it was before the profile: what a database made
/// then holds.
const OLD_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS users (id BIGINT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE);\n\
                          INSERT INTO users (id, name, email) VALUES (1, 'Old One', 'old@example.com') ON CONFLICT DO NOTHING;";

/// A database made before the profile's columns gets them at start, keeps
/// its users, and serves the new attributes.
async fn an_old_database_gains_the_columns(database: String) {
    servicekit::db::connect(&database, OLD_SCHEMA)
        .await
        .unwrap()
        .close()
        .await;
    let home = ServiceHome::new();
    let config = Config {
        service: ServiceSettings::on(&home.redis.url(), &database),
        seed_users: 3,
        ..Config::default()
    };
    // Twice: the second start finds the columns there.
    for _ in 0..2 {
        let service = user_service::build(config.clone()).await.unwrap();
        drop(service);
    }
    let service = user_service::build(config).await.unwrap();
    let home = home.run(service.port(), |shutdown| service.run(shutdown));
    let (_, old) = call("GET", home.url("/api/v1/users/1"), None, None).await;
    assert_eq!(
        old,
        json!({"id": 1, "name": "Old One", "email": "old@example.com"})
    );
    let (status, changed) = send(
        &home,
        "PATCH",
        "/api/v1/users/1",
        json!({"country": "NL", "tags": ["vip"]}),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    let (_, seeded) = call("GET", home.url("/api/v1/users/3"), None, None).await;
    assert!(
        seeded["country"].is_string(),
        "seeded users above the old ones get a profile: {seeded}"
    );
    let (_, counted) = count(&home, "country = 'NL' and 'vip' in tags").await;
    assert!(counted["count"].as_i64().unwrap() >= 1, "{counted}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_sqlite_database_gains_the_columns() {
    let dir = ServiceHome::new();
    an_old_database_gains_the_columns(dir.sqlite_url("old.db")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_postgresql_database_gains_the_columns() {
    let postgres = Postgres::start();
    an_old_database_gains_the_columns(postgres.database("old")).await;
}
