//! The admin router: request line -> response, no I/O, so it is tested
//! without sockets.
//!
//! | path       | GET / HEAD                                               |
//! |------------|----------------------------------------------------------|
//! | `/metrics` | 200 Prometheus text exposition format 0.0.4              |
//! | `/health`  | 200 `{"status":"ok",...}` or 503 `{"status":"fail",...}` |
//! | `/status`  | 200 pretty JSON from the app's status callback           |
//! | `/route?sql=STATEMENT` | 200 JSON: where the statement would go, and why; 400 without `sql`, 404 without a MySQL listener |
//!
//! | path (POST only)                          | effect                                           |
//! |-------------------------------------------|--------------------------------------------------|
//! | `/mysql/backends/{name}/drain`            | no new routing decisions; in-flight work finishes |
//! | `/mysql/backends/{name}/maintenance`      | the same, for work on the server                  |
//! | `/mysql/backends/{name}/ready`, `/undrain`| back to the monitor's judgement                   |
//! | `/http/frontends/{f}/servers/{s}/drain`   | no new requests (sticky ones still); in flight finish |
//! | `/http/frontends/{f}/servers/{s}/maintenance` | no requests at all; in flight finish          |
//! | `/http/frontends/{f}/servers/{s}/ready`   | back to the health checks' judgement              |
//!
//! They answer 200 with the backend (or server) as JSON, 404 for an unknown
//! backend, server or action, 409 when refused (the primary cannot be drained).
//!
//! Other methods on these paths get 405 with `Allow`; other paths 404.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};
use serde::Serialize;

use super::{ActionError, AdminContext, BackendAction, Health, HttpServerAction};

/// The Prometheus text format's content type (exposition format 0.0.4).
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// The `/health` answer; a struct so that `status` comes first.
#[derive(Serialize)]
struct HealthBody {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<serde_json::Value>,
    #[serde(flatten)]
    fields: serde_json::Map<String, serde_json::Value>,
}

/// Answers one request. HEAD gets GET's headers, including its length, and
/// no body.
pub fn route(
    ctx: &AdminContext,
    method: &Method,
    path: &str,
    query: Option<&str>,
) -> Response<Full<Bytes>> {
    if let Some(rest) = path.strip_prefix("/mysql/backends/") {
        return backend_action(ctx, method, rest);
    }
    if let Some(rest) = path.strip_prefix("/http/frontends/") {
        return http_server_action(ctx, method, rest);
    }
    let page: fn(&AdminContext, Option<&str>) -> Response<Full<Bytes>> = match path {
        "/metrics" => |ctx, _| metrics(ctx),
        "/health" => |ctx, _| health(ctx),
        "/status" => |ctx, _| status(ctx),
        "/route" => explain,
        _ => return plain(StatusCode::NOT_FOUND, "not found\n"),
    };
    match *method {
        Method::GET => page(ctx, query),
        Method::HEAD => without_body(page(ctx, query)),
        _ => {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
    }
}

fn metrics(ctx: &AdminContext) -> Response<Full<Bytes>> {
    respond(StatusCode::OK, PROMETHEUS_TEXT, ctx.prometheus.render())
}

fn health(ctx: &AdminContext) -> Response<Full<Bytes>> {
    let Health { ok, detail } = (ctx.health)();
    let (code, word) = if ok {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "fail")
    };
    // "status" first, then the detail's own keys, so a glance at a curl
    // answers the question; a non-object detail goes under "detail".
    let mut body = HealthBody {
        status: word,
        detail: None,
        fields: serde_json::Map::new(),
    };
    match detail {
        serde_json::Value::Object(mut fields) => {
            fields.remove("status");
            body.fields = fields;
        }
        serde_json::Value::Null => {}
        other => body.detail = Some(other),
    }
    let mut text = serde_json::to_string(&body).expect("json values serialize");
    text.push('\n');
    respond(code, JSON, text)
}

fn status(ctx: &AdminContext) -> Response<Full<Bytes>> {
    let value = (ctx.status)();
    let mut text = serde_json::to_string_pretty(&value)
        .unwrap_or_else(|e| format!("{{\"error\":\"status not serializable: {e}\"}}"));
    text.push('\n');
    respond(StatusCode::OK, JSON, text)
}

fn explain(ctx: &AdminContext, query: Option<&str>) -> Response<Full<Bytes>> {
    let sql = query.and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("sql="))
            .map(percent_decode)
    });
    let Some(sql) = sql else {
        return plain(
            StatusCode::BAD_REQUEST,
            "usage: GET /route?sql=STATEMENT (URL-encoded)\n",
        );
    };
    match (ctx.explain)(&sql) {
        Some(value) => {
            let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
            text.push('\n');
            respond(StatusCode::OK, JSON, text)
        }
        None => plain(StatusCode::NOT_FOUND, "no [mysql] listener on this node\n"),
    }
}

/// `POST /mysql/backends/{name}/{action}`; `rest` is `{name}/{action}`.
fn backend_action(ctx: &AdminContext, method: &Method, rest: &str) -> Response<Full<Bytes>> {
    let Some((name, action)) = rest.split_once('/') else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let action = match action {
        "drain" => BackendAction::Drain,
        "undrain" => BackendAction::Undrain,
        "maintenance" => BackendAction::Maintenance,
        "ready" => BackendAction::Ready,
        _ => {
            return plain(
                StatusCode::NOT_FOUND,
                "unknown action: use drain, undrain, maintenance or ready\n",
            )
        }
    };
    if *method != Method::POST {
        return post_only();
    }
    action_result((ctx.backend_action)(&percent_decode(name), action))
}

/// `POST /http/frontends/{frontend}/servers/{server}/{action}`; `rest`
/// is what follows `/http/frontends/`.
fn http_server_action(ctx: &AdminContext, method: &Method, rest: &str) -> Response<Full<Bytes>> {
    let parts: Vec<&str> = rest.split('/').collect();
    let [frontend, "servers", server, action] = parts[..] else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let action = match action {
        "drain" => HttpServerAction::Drain,
        "maintenance" => HttpServerAction::Maintenance,
        "ready" => HttpServerAction::Ready,
        _ => {
            return plain(
                StatusCode::NOT_FOUND,
                "unknown action: use drain, maintenance or ready\n",
            )
        }
    };
    if *method != Method::POST {
        return post_only();
    }
    action_result((ctx.http_server_action)(
        &percent_decode(frontend),
        &percent_decode(server),
        action,
    ))
}

/// A request `access.rs` refused: its status and reason; a 401 says how to
/// authenticate.
pub(super) fn refused(r: &super::access::Refusal) -> Response<Full<Bytes>> {
    let mut response = plain(r.status, r.reason);
    if r.status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"tandem admin\""),
        );
    }
    response
}

/// 405 with `Allow: POST`, for an action path asked with another method.
fn post_only() -> Response<Full<Bytes>> {
    let mut response = plain(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed: use POST\n",
    );
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static("POST"));
    response
}

/// An action's answer: 200 with the object as JSON, 404 or 409 with the reason.
fn action_result(result: Result<serde_json::Value, ActionError>) -> Response<Full<Bytes>> {
    match result {
        Ok(value) => {
            let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
            text.push('\n');
            respond(StatusCode::OK, JSON, text)
        }
        Err(ActionError::NotFound(why)) => respond(StatusCode::NOT_FOUND, TEXT, format!("{why}\n")),
        Err(ActionError::Conflict(why)) => respond(StatusCode::CONFLICT, TEXT, format!("{why}\n")),
    }
}

/// Decodes `application/x-www-form-urlencoded` text (`+` is a space; bad
/// escapes are kept as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn plain(code: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    respond(code, TEXT, text.to_owned())
}

fn respond(code: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Every answer is live state; a cache in between would lie.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn without_body(response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    let (mut parts, body) = response.into_parts();
    let length = hyper::body::Body::size_hint(&body).exact().unwrap_or(0);
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(length));
    Response::from_parts(parts, Full::new(Bytes::new()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http_body_util::BodyExt;
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::*;

    /// A context on a local recorder holding one counter, so the test does
    /// not depend on the process-wide one.
    fn context(ok: bool) -> AdminContext {
        let recorder = PrometheusBuilder::new().build_recorder();
        ::metrics::with_local_recorder(&recorder, || {
            ::metrics::counter!("tandem_test_total").increment(3);
        });
        AdminContext {
            prometheus: recorder.handle(),
            status: Arc::new(|| serde_json::json!({"mysql": {"backends": 2}})),
            health: Arc::new(move || Health {
                ok,
                detail: serde_json::json!({"primary": "db1", "status": "ignored"}),
            }),
            explain: Arc::new(|sql| Some(serde_json::json!({ "sql": sql }))),
            backend_action: Arc::new(|name, action| match (name, action) {
                ("db1", BackendAction::Drain) => {
                    Err(ActionError::Conflict("db1 is the primary".into()))
                }
                ("db2", a) => Ok(serde_json::json!({ "name": "db2", "action": format!("{a:?}") })),
                _ => Err(ActionError::NotFound(format!("no backend named {name:?}"))),
            }),
            http_server_action: Arc::new(|fe, server, action| match (fe, server) {
                ("web", "web1") => {
                    Ok(serde_json::json!({ "name": server, "action": format!("{action:?}") }))
                }
                _ => Err(ActionError::NotFound(format!("no server {fe}/{server}"))),
            }),
        }
    }

    #[tokio::test]
    async fn route_explains_a_url_encoded_statement() {
        let ctx = context(true);
        let response = route(
            &ctx,
            &Method::GET,
            "/route",
            Some("sql=SELECT+1%2C%202%3B&x=y"),
        );
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body(response).await, "{\n  \"sql\": \"SELECT 1, 2;\"\n}\n");
        let response = route(&ctx, &Method::GET, "/route", None);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(percent_decode("100%25%2"), "100%%2");
        assert_eq!(percent_decode("%C3%A9t%C3%A9 %zz é"), "été %zz é");
    }

    async fn body(response: Response<Full<Bytes>>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn header<'a>(response: &'a Response<Full<Bytes>>, name: &str) -> &'a str {
        response.headers()[name].to_str().unwrap()
    }

    #[tokio::test]
    async fn metrics_renders_prometheus_text() {
        let response = route(&context(true), &Method::GET, "/metrics", None);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "content-type"), PROMETHEUS_TEXT);
        assert!(body(response).await.contains("tandem_test_total 3"));
    }

    #[tokio::test]
    async fn health_ok_and_fail() {
        let response = route(&context(true), &Method::GET, "/health", None);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "content-type"), JSON);
        assert_eq!(
            body(response).await,
            "{\"status\":\"ok\",\"primary\":\"db1\"}\n"
        );

        let response = route(&context(false), &Method::GET, "/health", None);
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            body(response).await,
            "{\"status\":\"fail\",\"primary\":\"db1\"}\n"
        );
    }

    #[tokio::test]
    async fn health_detail_that_is_not_an_object() {
        let mut ctx = context(true);
        ctx.health = Arc::new(|| Health {
            ok: false,
            detail: serde_json::json!("no primary"),
        });
        let response = route(&ctx, &Method::GET, "/health", None);
        assert_eq!(
            body(response).await,
            "{\"status\":\"fail\",\"detail\":\"no primary\"}\n"
        );
        ctx.health = Arc::new(|| Health {
            ok: true,
            detail: serde_json::Value::Null,
        });
        let response = route(&ctx, &Method::GET, "/health", None);
        assert_eq!(body(response).await, "{\"status\":\"ok\"}\n");
    }

    #[tokio::test]
    async fn status_is_pretty_json() {
        let response = route(&context(true), &Method::GET, "/status", None);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "content-type"), JSON);
        assert_eq!(
            body(response).await,
            "{\n  \"mysql\": {\n    \"backends\": 2\n  }\n}\n"
        );
    }

    #[tokio::test]
    async fn head_has_the_headers_of_get_and_no_body() {
        let ctx = context(false);
        for path in ["/metrics", "/health", "/status"] {
            let get = route(&ctx, &Method::GET, path, None);
            let head = route(&ctx, &Method::HEAD, path, None);
            assert_eq!(get.status(), head.status());
            assert_eq!(header(&get, "content-type"), header(&head, "content-type"));
            let length: usize = header(&head, "content-length").parse().unwrap();
            assert_eq!(body(get).await.len(), length);
            assert_eq!(body(head).await, "");
        }
    }

    #[tokio::test]
    async fn other_methods_get_405_with_allow() {
        for method in [Method::POST, Method::PUT, Method::DELETE] {
            let response = route(&context(true), &method, "/health", None);
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(header(&response, "allow"), "GET, HEAD");
        }
    }

    #[tokio::test]
    async fn backend_actions_are_posts_with_404_405_and_409() {
        let ctx = context(true);
        let post = |path: &str| route(&ctx, &Method::POST, path, None);
        let response = post("/mysql/backends/db2/drain");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            body(response).await,
            "{\n  \"action\": \"Drain\",\n  \"name\": \"db2\"\n}\n"
        );
        for (action, want) in [
            ("undrain", "Undrain"),
            ("maintenance", "Maintenance"),
            ("ready", "Ready"),
        ] {
            let response = post(&format!("/mysql/backends/db2/{action}"));
            assert!(body(response).await.contains(want), "{action}");
        }
        let response = post("/mysql/backends/db1/drain");
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(body(response).await, "db1 is the primary\n");
        let response = post("/mysql/backends/nope/drain");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(body(response).await, "no backend named \"nope\"\n");
        for path in ["/mysql/backends/db2/explode", "/mysql/backends/db2"] {
            assert_eq!(post(path).status(), StatusCode::NOT_FOUND, "{path}");
        }
        let response = route(&ctx, &Method::GET, "/mysql/backends/db2/drain", None);
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(header(&response, "allow"), "POST");
    }

    #[tokio::test]
    async fn http_server_actions_are_posts() {
        let ctx = context(true);
        let post = |path: &str| route(&ctx, &Method::POST, path, None);
        for (action, want) in [
            ("drain", "Drain"),
            ("maintenance", "Maintenance"),
            ("ready", "Ready"),
        ] {
            let response = post(&format!("/http/frontends/web/servers/web1/{action}"));
            assert_eq!(response.status(), StatusCode::OK);
            assert!(body(response).await.contains(want), "{action}");
        }
        let response = post("/http/frontends/web/servers/nope/drain");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(body(response).await, "no server web/nope\n");
        for path in [
            "/http/frontends/web/servers/web1/explode",
            "/http/frontends/web/web1/drain",
        ] {
            assert_eq!(post(path).status(), StatusCode::NOT_FOUND, "{path}");
        }
        let response = route(
            &ctx,
            &Method::GET,
            "/http/frontends/web/servers/web1/drain",
            None,
        );
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn unknown_path_gets_404() {
        for path in ["/", "/metrics/", "/nope"] {
            let response = route(&context(true), &Method::GET, path, None);
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
            assert_eq!(body(response).await, "not found\n");
        }
    }
}
