//! HTTP for the page: hyper's HTTP/1.1 server on smol (through `smol-hyper`), the access key
//! and Host checks, the embedded assets, and small helpers for JSON answers and bodies.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use smol::Async;

use super::api::{self, App};

/// Every answer's body: whole, or a stream (the progress events).
pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// Uploads (a CSV, an attachment) and JSON bodies larger than this are refused with 413.
pub(crate) const MAX_UPLOAD: usize = 10 * 1024 * 1024;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The page may load only what this server serves: nothing leaves the machine, even from a
/// previewed HTML body (its images from the internet stay unloaded).
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                   frame-src 'self'; script-src 'self'; connect-src 'self'; form-action 'none'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// Serves the page until the process ends.
pub(crate) fn serve(listener: TcpListener, app: Arc<App>) -> anyhow::Result<()> {
    let listener = Async::new(listener)?;
    let executor: &'static smol::Executor<'static> = Box::leak(Box::new(smol::Executor::new()));
    smol::block_on(executor.run(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    async_io::Timer::after(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let app = app.clone();
            executor
                .spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let app = app.clone();
                        async move { Ok::<_, Infallible>(handle(app, req).await) }
                    });
                    let served = hyper::server::conn::http1::Builder::new()
                        .timer(smol_hyper::rt::SmolTimer::new())
                        .header_read_timeout(std::time::Duration::from_secs(30))
                        .serve_connection(smol_hyper::rt::FuturesIo::new(stream), service)
                        .await;
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "HTTP connection ended");
                    }
                })
                .detach();
        }
    }))
}

async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    if !host_allowed(&req, app.addr) {
        return error(
            StatusCode::FORBIDDEN,
            "this page answers only at the address buzon ui printed",
            Some("open http://127.0.0.1:PORT/?token=... as printed, not another host name"),
        );
    }
    let path = req.uri().path().to_owned();
    match (req.method().as_str(), path.as_str()) {
        ("GET", "/app.js") => asset(APP_JS, "text/javascript; charset=utf-8"),
        ("GET", "/style.css") => asset(STYLE_CSS, "text/css; charset=utf-8"),
        ("GET", "/favicon.ico") => empty(StatusCode::NO_CONTENT),
        ("GET", "/") if token_ok(&req, &app.token) => {
            let mut r = asset(INDEX_HTML, "text/html; charset=utf-8");
            r.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            r
        }
        (_, p) if p == "/" || p.starts_with("/api/") => {
            if !token_ok(&req, &app.token) {
                return error(
                    StatusCode::FORBIDDEN,
                    "the access key is missing or wrong",
                    Some("open the address buzon ui printed: it includes the key (?token=...)"),
                );
            }
            api::route(app, req).await
        }
        _ => error(StatusCode::NOT_FOUND, "no such page", None),
    }
}

/// A DNS-rebinding page in a browser sends its own host name: refuse anything but ours.
fn host_allowed<B>(req: &Request<B>, addr: SocketAddr) -> bool {
    if addr.ip().is_unspecified() {
        return true;
    }
    let Some(host) = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let port = addr.port();
    host == addr.to_string()
        || host == format!("localhost:{port}")
        || (addr.ip().is_loopback() && host == format!("127.0.0.1:{port}"))
}

/// The key from the `X-Buzon-Token` header or the `token` query parameter, compared in
/// constant time.
fn token_ok<B>(req: &Request<B>, token: &str) -> bool {
    let given = req
        .headers()
        .get("x-buzon-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query(req, "token"));
    let Some(given) = given else {
        return false;
    };
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// A query parameter, percent-decoded.
pub(crate) fn query<B>(req: &Request<B>, name: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a request body of at most [`MAX_UPLOAD`] bytes; the error is the answer to give.
pub(crate) async fn body(req: Request<Incoming>) -> Result<Bytes, Response<Body>> {
    let too_big = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the file is larger than 10 MB, which is more than buzon ui takes",
            Some("split the CSV, or use a smaller attachment (or a link to the file)"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_UPLOAD as u64) {
        return Err(too_big());
    }
    match Limited::new(req.into_body(), MAX_UPLOAD).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_big()),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            &format!("the upload did not arrive whole: {e}"),
            Some("try again"),
        )),
    }
}

/// A JSON body, parsed; the error is the answer to give.
pub(crate) async fn json_body(req: Request<Incoming>) -> Result<Value, Response<Body>> {
    let bytes = body(req).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            &format!("the request is not JSON buzon can read: {e}"),
            None,
        )
    })
}

pub(crate) fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut r = full(status, value.to_string().into_bytes());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `{"error": ..., "hint": ...}` with `status`.
pub(crate) fn error(status: StatusCode, what: &str, hint: Option<&str>) -> Response<Body> {
    let mut v = json!({"error": what});
    if let Some(hint) = hint {
        v["hint"] = json!(hint);
    }
    json_response(status, &v)
}

/// A file to save, named `name`.
pub(crate) fn download(bytes: Vec<u8>, name: &str) -> Response<Body> {
    let mut r = full(StatusCode::OK, bytes);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

fn asset(text: &'static str, kind: &'static str) -> Response<Body> {
    let mut r = full(StatusCode::OK, text.as_bytes().to_vec());
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r
}

fn empty(status: StatusCode) -> Response<Body> {
    full(status, Vec::new())
}

/// A whole body, with the headers every answer has.
pub(crate) fn full(status: StatusCode, bytes: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(bytes)).boxed());
    *r.status_mut() = status;
    secure(&mut r);
    r
}

/// Nothing is cached (the state changes, the key is in the URL), sniffed or framed.
pub(crate) fn secure(r: &mut Response<Body>) {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded() {
        let req = Request::builder()
            .uri("/api/attachments?name=terms%20v2.pdf&x=a+b&bad=%zz&end=%4")
            .body(())
            .unwrap();
        assert_eq!(query(&req, "name").as_deref(), Some("terms v2.pdf"));
        assert_eq!(query(&req, "x").as_deref(), Some("a b"));
        assert_eq!(query(&req, "bad").as_deref(), Some("%zz"));
        assert_eq!(query(&req, "end").as_deref(), Some("%4"));
        assert_eq!(query(&req, "none"), None);
    }
}
