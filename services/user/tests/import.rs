//! `POST /api/v1/users/import` against a real Redis and SQLite or
//! PostgreSQL: rows upserted by address, every bad row named by line, the
//! same file again changing nothing, a file refused midway keeping what
//! came before it (and saying so), 100,000 rows in one request, from the
//! dashboard's pages and no other's.

mod common;

use std::fmt::Write;

use serde_json::{json, Value};
use testkit::{Postgres, ServiceHome};

async fn users(home: &ServiceHome) -> Vec<Value> {
    let (_, page) = testkit::http::call("GET", home.url("/api/v1/users?limit=1000"), None, None).await;
    page["users"].as_array().unwrap().clone()
}

const CSV: &str = "\u{feff}name,email\r\n\
                   Ada Lovelace,ada@example.com\r\n\
                   \"King, Ada\",ada@example.com\r\n\
                   Grace Hopper,grace@example.com\r\n\
                   Bob,Bob <bob@example.com>\r\n\
                   Carol,carol@\r\n\
                   Dan,dan@example.com\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_is_upserted_by_address_with_every_bad_row_named_and_again_changes_nothing() {
    let home = common::spawn(1, None).await;
    let seeded = users(&home).await[0].clone();
    let renamed = format!("{CSV}Seeded Renamed,{}\r\n", seeded["email"].as_str().unwrap());
    let (status, first) = common::import(&home, "text/csv", renamed.clone()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (
            first["created"].as_u64(),
            first["updated"].as_u64(),
            first["unchanged"].as_u64()
        ),
        (Some(3), Some(1), Some(0)),
        "{first}"
    );
    assert_eq!(first["rejected"], 3, "{first}");
    let lines: Vec<u64> = first["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 5, 6], "{first}");
    let reasons = first["rejections"].to_string();
    assert!(
        reasons.contains("on line 2 already") && reasons.contains("space"),
        "{reasons}"
    );

    let listed = users(&home).await;
    assert_eq!(listed.len(), 4);
    assert_eq!(listed[0]["name"], "Seeded Renamed");
    assert_eq!(
        listed[1],
        json!({"id": 2, "name": "Ada Lovelace", "email": "ada@example.com"})
    );
    assert_eq!(listed[3]["email"], "dan@example.com");

    // The same file again: the same users, nothing changed.
    let (status, again) = common::import(&home, "text/csv; charset=utf-8", renamed).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            again["created"].as_u64(),
            again["updated"].as_u64(),
            again["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(4)),
        "{again}"
    );
    assert_eq!(again["rejections"], first["rejections"]);
    assert_eq!(users(&home).await, listed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_is_taken_a_line_each_and_other_bodies_are_refused_before_anything_changes() {
    let home = common::spawn(0, None).await;
    let body = "{\"email\": \"ada@example.com\", \"name\": \"Ada\"}\n\
                {\"email\": \"bob@example.com\", \"name\": \"Bob\", \"team\": \"ops\"}\n";
    let (status, done) = common::import(&home, "application/x-ndjson", body.into()).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (done["created"].as_u64(), done["rejected"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(
        done["rejections"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("unknown field `team`"),
        "{done}"
    );

    let (status, refused) = common::import(&home, "application/json", "[]".into()).await;
    assert_eq!(status, 415, "{refused}");
    let (status, refused) =
        common::import(&home, "text/csv", "email,name,team\nx@example.com,X,ops\n".into()).await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("unknown column `team`"),
        "{refused}"
    );
    assert_eq!(users(&home).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_refused_midway_keeps_the_rows_before_it_and_says_how_many() {
    let home = common::spawn(0, None).await;
    let mut body = String::from("email,name\n");
    for n in 0..1_200 {
        writeln!(body, "user{n}@example.com,User {n}").unwrap();
    }
    writeln!(body, "long@example.com,{}", "x".repeat(1024 * 1024 + 1)).unwrap();
    body.push_str("after@example.com,After\n");
    let (status, refused) = common::import(&home, "text/csv", body).await;
    assert_eq!(status, 400, "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains("longer than 1024 KiB") && error.contains("1200 users were created"),
        "{error}"
    );
    let (_, page) =
        testkit::http::call("GET", home.url("/api/v1/users?limit=1000&after=1000"), None, None).await;
    assert_eq!(page["users"].as_array().unwrap().len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_rows_import_in_one_request_with_the_bad_ones_named() {
    let home = common::spawn(0, None).await;
    let mut body = String::from("email,name\n");
    for n in 1..=100_000 {
        if n % 10_000 == 0 {
            writeln!(body, "not an address {n},Bad {n}").unwrap();
        } else {
            writeln!(body, "user{n}@example.com,User {n}").unwrap();
        }
    }
    let (status, done) = common::import(&home, "text/csv", body).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["created"], 99_990, "{done}");
    assert_eq!(done["rejected"], 10);
    let lines: Vec<u64> = done["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, (1..=10).map(|n| n * 10_000 + 1).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_an_import_upserts_the_same_way() {
    let postgres = Postgres::start();
    let home = common::spawn(2, Some(postgres.database("users"))).await;
    let (status, first) = common::import(&home, "text/csv", CSV.into()).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (first["created"].as_u64(), first["rejected"].as_u64()),
        (Some(3), Some(3)),
        "{first}"
    );
    let (_, again) = common::import(&home, "text/csv", CSV.into()).await;
    assert_eq!(
        (again["created"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(3)),
        "{again}"
    );
    assert_eq!(users(&home).await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_s_pages_may_import_and_no_other_page_may_write() {
    let home = common::spawn_with(0, None, |config| {
        config.public_url = "http://localhost:8080".into();
    })
    .await;
    let dashboard = [
        ("origin", "http://127.0.0.1:8080"),
        ("sec-fetch-site", "same-site"),
        ("content-type", "text/csv"),
    ];
    let preflight = [
        ("origin", "http://127.0.0.1:8080"),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "authorization,content-type"),
    ];
    let (status, _) = common::send(
        &home,
        "OPTIONS",
        "/api/v1/users/import",
        &preflight,
        String::new(),
    )
    .await;
    assert_eq!(status, 200);
    let (status, imported) =
        common::send(&home, "POST", "/api/v1/users/import", &dashboard, CSV.into()).await;
    assert_eq!(
        (status, imported["created"].as_u64()),
        (200, Some(3)),
        "{imported}"
    );

    // The same page writing anywhere else, and another page importing.
    let one = r#"{"email": "eve@example.com", "name": "Eve"}"#;
    let json_from_dashboard = [
        ("origin", "http://127.0.0.1:8080"),
        ("sec-fetch-site", "same-site"),
        ("content-type", "application/json"),
    ];
    let (status, refused) =
        common::send(&home, "POST", "/api/v1/users", &json_from_dashboard, one.into()).await;
    assert_eq!(status, 403, "{refused}");
    for origin in ["http://localhost:3000", "http://evil.example", "null"] {
        let page = [
            ("origin", origin),
            ("sec-fetch-site", "cross-site"),
            ("content-type", "text/csv"),
        ];
        let (status, refused) = common::send(&home, "POST", "/api/v1/users/import", &page, CSV.into()).await;
        assert_eq!(status, 403, "{origin}: {refused}");
    }
    assert_eq!(users(&home).await.len(), 3, "only the dashboard's import wrote");
}
