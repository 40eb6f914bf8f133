//! user-service's write API against a real Redis and SQLite or PostgreSQL:
//! users added and changed one at a time, addresses checked and unique,
//! ids never given twice, even to creations at once.

mod common;

use serde_json::{json, Value};
use testkit::http::call;
use testkit::{Postgres, ServiceHome};

async fn send(home: &ServiceHome, method: &str, path: &str, body: Value) -> (u16, Value) {
    call(method, home.url(path), None, Some(&body.to_string())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_is_added_after_the_seeded_ones_and_changed_and_a_taken_address_is_a_409() {
    let home = common::spawn(3, None).await;
    let (status, ada) = send(
        &home,
        "POST",
        "/api/v1/users",
        json!({"email": "ada@example.com", "name": " Ada Lovelace "}),
    )
    .await;
    assert_eq!(status, 201, "{ada}");
    assert_eq!(
        ada,
        json!({"id": 4, "name": "Ada Lovelace", "email": "ada@example.com"})
    );
    let (status, read) = call("GET", home.url("/api/v1/users/4"), None, None).await;
    assert_eq!((status, &read), (200, &ada));

    let (status, taken) = send(
        &home,
        "POST",
        "/api/v1/users",
        json!({"email": "ada@example.com", "name": "Another"}),
    )
    .await;
    assert_eq!(status, 409, "{taken}");
    assert!(taken["error"].as_str().unwrap().contains("user 4"), "{taken}");

    let (status, changed) = send(&home, "PATCH", "/api/v1/users/4", json!({"name": "Ada King"})).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        changed,
        json!({"id": 4, "name": "Ada King", "email": "ada@example.com"})
    );
    let (status, moved) = send(
        &home,
        "PATCH",
        "/api/v1/users/4",
        json!({"email": "ada@example.org"}),
    )
    .await;
    assert_eq!((status, moved["email"].as_str()), (200, Some("ada@example.org")));
    // Its own address again is no conflict; another user's is.
    let (status, _) = send(
        &home,
        "PATCH",
        "/api/v1/users/4",
        json!({"email": "ada@example.org"}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, first) = call("GET", home.url("/api/v1/users/1"), None, None).await;
    let (status, refused) = send(
        &home,
        "PATCH",
        "/api/v1/users/4",
        json!({"email": first["email"]}),
    )
    .await;
    assert_eq!(status, 409, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("user 1"), "{refused}");
    let (status, _) = send(&home, "PATCH", "/api/v1/users/99", json!({"name": "Nobody"})).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_400_naming_the_field_and_adds_nothing() {
    let home = common::spawn(0, None).await;
    for (body, named) in [
        (json!({"email": "not an address", "name": "X"}), "email"),
        (json!({"email": "x@", "name": "X"}), "email"),
        (
            json!({"email": format!("{}@example.com", "a".repeat(250)), "name": "X"}),
            "email",
        ),
        (json!({"email": "x@example.com", "name": "   "}), "name"),
        (json!({"email": "x@example.com", "name": "Ada\nLovelace"}), "name"),
        (json!({"email": "x@example.com", "name": "n".repeat(201)}), "name"),
    ] {
        let (status, refused) = send(&home, "POST", "/api/v1/users", body.clone()).await;
        assert_eq!(status, 400, "{body}: {refused}");
        assert!(
            refused["error"].as_str().unwrap().contains(named),
            "{body}: {refused}"
        );
    }
    let (status, _) = send(
        &home,
        "POST",
        "/api/v1/users",
        json!({"email": "x@example.com", "name": "X", "team": "ops"}),
    )
    .await;
    assert_eq!(status, 422, "an unknown field");
    let (status, nothing) = send(&home, "PATCH", "/api/v1/users/1", json!({})).await;
    assert_eq!(status, 400, "{nothing}");
    let (_, page) = call("GET", home.url("/api/v1/users"), None, None).await;
    assert_eq!(page["users"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creations_at_once_get_ids_of_their_own_on_sqlite() {
    at_once(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creations_at_once_get_ids_of_their_own_on_postgresql() {
    let postgres = Postgres::start();
    at_once(Some(postgres.database("users"))).await;
}

/// 12 creations at once, two of each address: 6 users, 6 refusals.
async fn at_once(database: Option<String>) {
    let home = common::spawn(2, database).await;
    let answers = futures::future::join_all((0..12).map(|n| {
        let body = json!({"email": format!("user{}@example.com", n % 6), "name": format!("User {n}")});
        send(&home, "POST", "/api/v1/users", body)
    }))
    .await;
    let created: Vec<i64> = answers
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, user)| user["id"].as_i64().unwrap())
        .collect();
    assert_eq!(created.len(), 6, "{answers:?}");
    assert_eq!(
        answers.iter().filter(|(status, _)| *status == 409).count(),
        6,
        "{answers:?}"
    );
    let mut ids = created.clone();
    ids.sort_unstable();
    assert_eq!(ids, [3, 4, 5, 6, 7, 8], "{answers:?}");
    let (_, page) = call("GET", home.url("/api/v1/users?limit=100"), None, None).await;
    assert_eq!(page["users"].as_array().unwrap().len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_prod_adding_changing_and_importing_users_need_the_bearer_token() {
    let home = common::spawn_with(1, None, |config| {
        config.app_env = "prod".parse().unwrap();
        config.api_token = "s3cret-token".to_string().into();
    })
    .await;
    let user = json!({"email": "ada@example.com", "name": "Ada"}).to_string();
    let change = json!({"name": "Ada King"}).to_string();
    for (method, path, body) in [
        ("POST", "/api/v1/users", &user),
        ("PATCH", "/api/v1/users/1", &change),
    ] {
        let (status, _) = call(method, home.url(path), None, Some(body)).await;
        assert_eq!(status, 401, "{method} {path}");
        let (status, answer) = call(method, home.url(path), Some("s3cret-token"), Some(body)).await;
        assert!(status == 200 || status == 201, "{method} {path}: {answer}");
    }
    let url = home.url("/api/v1/users/import");
    let refused = tokio::task::spawn_blocking(move || {
        match ureq::post(&url)
            .set("content-type", "text/csv")
            .send_string("email,name\n")
        {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response.status(),
            Err(error) => panic!("{error}"),
        }
    })
    .await
    .unwrap();
    assert_eq!(refused, 401, "an import needs the token in prod");
}
