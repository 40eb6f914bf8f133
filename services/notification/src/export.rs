//! `GET /api/v1/campaigns/{id}/export`: every recipient of a campaign and
//! where their notification stands, as CSV, for reconciling comms with
//! another system. Streamed as it is read
//! ([`NotificationStore::each_of_campaign`]), so a campaign of a million
//! recipients takes no more memory than one of ten; a failure midway cuts
//! the download short (the client sees a broken transfer, never a short
//! file that looks whole). It holds addresses: behind the API token.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use servicekit::http::extract::ApiPath;
use tokio::sync::mpsc;

use crate::store::{Notification, NotificationStore};

/// The CSV's columns.
const HEADER: [&str; 5] = ["notification_id", "user_id", "email", "status", "detail"];

/// Rows per chunk of the body.
const CHUNK: usize = 1_000;

/// A campaign's recipients and their notifications' status, as CSV: a
/// header, then a row per notification (none for an unknown campaign).
#[utoipa::path(
    get,
    path = "/api/v1/campaigns/{id}/export",
    tag = "notifications",
    security((), ("api_token" = [])),
    params(("id" = String, Path, description = "The campaign's id")),
    responses(
        (status = 200, description = "`notification_id,user_id,email,status,detail`, a row per recipient, in no set order; a value a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`) is prefixed with `'`", body = String, content_type = "text/csv")
    )
)]
pub async fn export(
    State(store): State<NotificationStore>,
    ApiPath(campaign_id): ApiPath<String>,
) -> Response {
    let filename = format!("campaign-{}.csv", sanitized(&campaign_id));
    let (chunks, body) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let send = |chunk: Bytes| {
            let chunks = chunks.clone();
            async move {
                chunks
                    .send(Ok(chunk))
                    .await
                    .map_err(|_| anyhow::anyhow!("the reader left"))
            }
        };
        let written = async {
            send(csv_chunk(&[], true)?).await?;
            store
                .each_of_campaign(&campaign_id, CHUNK, |rows| {
                    let chunk = csv_chunk(&rows, false);
                    async { send(chunk?).await }
                })
                .await
        }
        .await;
        if let Err(error) = written {
            tracing::warn!(campaign = %campaign_id, error = format!("{error:#}"), "an export was cut short");
            let _ = chunks.send(Err(std::io::Error::other(error.to_string()))).await;
        }
    });
    let stream = futures::stream::unfold(body, |mut body| async move {
        body.recv().await.map(|chunk| (chunk, body))
    });
    (
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// `rows` as CSV (after the header, when `header`).
fn csv_chunk(rows: &[Notification], header: bool) -> anyhow::Result<Bytes> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    if header {
        writer.write_record(HEADER)?;
    }
    for row in rows {
        writer.write_record([
            row.id.as_str(),
            &row.user_id.to_string(),
            &inert(&row.email),
            row.status.as_str(),
            &inert(row.detail.as_deref().unwrap_or_default()),
        ])?;
    }
    Ok(writer.into_inner()?.into())
}

/// `value`, made inert for a spreadsheet: one starting with what would
/// make it a formula (`=`, `+`, `-`, `@`, a tab or a carriage return) gets
/// a `'` first (OWASP's advice against CSV injection). Addresses and
/// servers' replies come from outside.
fn inert(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}").into()
    } else {
        value.into()
    }
}

/// `id` with only the characters a file name may safely hold.
fn sanitized(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NotificationStatus;

    #[test]
    fn rows_are_csv_quoted_where_needed_and_inert_in_a_spreadsheet() {
        let row = |email: &str, detail: Option<&str>| Notification {
            id: "n1".into(),
            campaign_id: "c".into(),
            user_id: 7,
            email: email.into(),
            status: NotificationStatus::Failed,
            detail: detail.map(str::to_string),
        };
        let chunk = csv_chunk(
            &[
                row("ada@example.com", Some("550 5.1.1 no such user, \"ada\"")),
                row("=HYPERLINK(\"http://evil\")@example.com", None),
            ],
            true,
        )
        .unwrap();
        assert_eq!(
            std::str::from_utf8(&chunk).unwrap(),
            "notification_id,user_id,email,status,detail\n\
             n1,7,ada@example.com,failed,\"550 5.1.1 no such user, \"\"ada\"\"\"\n\
             n1,7,\"'=HYPERLINK(\"\"http://evil\"\")@example.com\",failed,\n"
        );
        assert_eq!(sanitized("ab/../c\"d-1"), "abcd-1");
    }
}
