//! The page's API (documented in `docs/ui-api.md`): each route reads or changes the campaign and
//! answers JSON. Anything that touches the disk or the network runs on a blocking thread, so the
//! page's other requests and the progress stream never wait behind it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures_lite::{FutureExt, stream};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use super::http::{self, Body, download, error, json_body, json_response, query};
use super::lint;
use super::runner::{self, Hub, Options, Password};
use super::workspace::{Settings, Workspace};

/// Everything the routes share.
pub(crate) struct App {
    pub ws: Arc<Workspace>,
    pub hub: Arc<Hub>,
    pub settings: Mutex<Settings>,
    pub password: Mutex<Password>,
    /// The recipients file as read, kept so that each state call does not read and parse it
    /// again; replaced with the file.
    pub recipients: Mutex<Option<Arc<Loaded>>>,
    /// The SIZE the server offered at the last connection test.
    pub size_limit: Mutex<Option<u64>>,
    pub options: Options,
    pub token: String,
    /// Where the page is served (for the Host check).
    pub addr: SocketAddr,
}

/// A recipients file, read and parsed once.
pub(crate) struct Loaded {
    pub recipients: mailmerge::Recipients,
    /// Its state object (`recipients` in `GET /api/state`).
    pub json: Value,
}

impl Loaded {
    /// Parses the CSV bytes of the file the user named `name`.
    pub(crate) fn parse(bytes: &[u8], name: &str) -> Result<Loaded, String> {
        let recipients = lint::read_csv(bytes)?;
        let json = lint::recipients_json(name, &recipients, &Default::default());
        Ok(Loaded { recipients, json })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl App {
    fn settings(&self) -> Settings {
        lock(&self.settings).clone()
    }

    fn password(&self) -> Password {
        lock(&self.password).clone()
    }

    /// The recipients as uploaded, if any and readable.
    fn recipients(&self) -> Option<Arc<Loaded>> {
        lock(&self.recipients).clone()
    }

    /// The whole state the page renders from.
    fn state(&self) -> Value {
        let mut settings = serde_json::to_value(self.settings()).unwrap_or_default();
        settings["server"]["password_set"] = json!(self.password().is_set());
        let recipients = self.recipients().map(|l| l.json.clone());
        let attachments: Vec<Value> = self
            .ws
            .attachments()
            .into_iter()
            .map(|(name, size)| json!({"name": name, "size": size}))
            .collect();
        json!({
            "settings": settings,
            "recipients": recipients,
            "attachments": attachments,
            "campaign": self.hub.to_json(),
            "dir": self.ws.dir().display().to_string(),
        })
    }
}

/// Runs `f` on a blocking thread with the app.
async fn off_loop<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&App) -> T + Send + 'static,
) -> T {
    let app = app.clone();
    blocking::unblock(move || f(&app)).await
}

fn ok_state(app: &App) -> Response<Body> {
    json_response(StatusCode::OK, &app.state())
}

pub(crate) async fn route(app: Arc<App>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    match (req.method().as_str(), path.as_str()) {
        ("GET", "/api/state") => off_loop(&app, ok_state).await,
        ("PUT", "/api/settings") => match json_body(req).await {
            Ok(patch) => off_loop(&app, move |app| put_settings(app, patch)).await,
            Err(r) => r,
        },
        ("POST", "/api/server/test") => {
            off_loop(&app, |app| {
                let answer =
                    super::probe::test_connection(&app.settings(), &app.password(), &app.options);
                if let Some(size) = answer["offered"]["size"].as_u64().filter(|s| *s > 0) {
                    *lock(&app.size_limit) = Some(size);
                }
                json_response(StatusCode::OK, &answer)
            })
            .await
        }
        ("POST", "/api/recipients") => {
            let name = query(&req, "name").unwrap_or_else(|| "recipients.csv".into());
            match http::body(req).await {
                Ok(bytes) => off_loop(&app, move |app| put_recipients(app, &bytes, &name)).await,
                Err(r) => r,
            }
        }
        ("POST", "/api/recipients/path") => match json_body(req).await {
            Ok(v) => {
                let Some(path) = v["path"].as_str().map(str::to_owned) else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "no path given",
                        Some("type the CSV file's full path"),
                    );
                };
                off_loop(&app, move |app| recipients_from_path(app, &path)).await
            }
            Err(r) => r,
        },
        ("POST", "/api/attachments") => {
            let Some(name) = query(&req, "name") else {
                return error(StatusCode::BAD_REQUEST, "no file name given", None);
            };
            match http::body(req).await {
                Ok(bytes) => {
                    off_loop(&app, move |app| {
                        match app.ws.add_attachment(&name, &bytes) {
                            Ok(()) => ok_state(app),
                            Err(e) => error(
                                StatusCode::UNPROCESSABLE_ENTITY,
                                &format!("{e:#}"),
                                Some("rename the file to a plain name and upload it again"),
                            ),
                        }
                    })
                    .await
                }
                Err(r) => r,
            }
        }
        ("DELETE", "/api/attachments") => {
            let name = query(&req, "name").unwrap_or_default();
            off_loop(&app, move |app| match app.ws.remove_attachment(&name) {
                Ok(()) => {
                    lock(&app.settings).message.attach.retain(|n| *n != name);
                    let _ = app.ws.save_settings(&app.settings());
                    ok_state(app)
                }
                Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, &format!("{e:#}"), None),
            })
            .await
        }
        ("POST", "/api/check") => off_loop(&app, check).await,
        ("GET", "/api/preview") => {
            let n = query(&req, "n").and_then(|n| n.parse::<usize>().ok());
            let Some(n) = n else {
                return error(StatusCode::BAD_REQUEST, "which row? give its number", None);
            };
            off_loop(&app, move |app| preview(app, n)).await
        }
        ("POST", "/api/test-send") => match json_body(req).await {
            Ok(v) => {
                let n = v["n"].as_u64().unwrap_or(1) as usize;
                let to = v["to"].as_str().unwrap_or_default().to_owned();
                off_loop(&app, move |app| {
                    let answer = runner::test_send(
                        &app.ws,
                        &app.settings(),
                        &app.password(),
                        &app.options,
                        n,
                        &to,
                    );
                    json_response(StatusCode::OK, &answer)
                })
                .await
            }
            Err(r) => r,
        },
        ("POST", "/api/send") => {
            off_loop(&app, |app| {
                match runner::start(
                    &app.hub,
                    &app.ws,
                    &app.settings(),
                    &app.password(),
                    &app.options,
                ) {
                    Ok(()) => ok_state(app),
                    Err((409, why)) => error(StatusCode::CONFLICT, &why, None),
                    Err((422, why)) => error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        &why,
                        Some("fix this, then press Send again"),
                    ),
                    Err((_, why)) => error(StatusCode::INTERNAL_SERVER_ERROR, &why, None),
                }
            })
            .await
        }
        ("POST", "/api/pause") => {
            off_loop(&app, |app| {
                app.hub.halt(&app.ws, false);
                ok_state(app)
            })
            .await
        }
        ("POST", "/api/stop") => {
            off_loop(&app, |app| {
                app.hub.halt(&app.ws, true);
                ok_state(app)
            })
            .await
        }
        ("GET", "/api/events") => events(&app, &req),
        ("GET", "/api/results.csv") => {
            off_loop(&app, |app| {
                download(runner::results_csv(&app.hub, &app.ws), "results.csv")
            })
            .await
        }
        ("GET", "/api/failed.csv") => {
            off_loop(&app, |app| {
                let loaded = app.recipients();
                match runner::failed_csv(&app.hub, loaded.as_ref().map(|l| &l.recipients)) {
                    Ok(bytes) => download(bytes, "failed-rows.csv"),
                    Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}"), None),
                }
            })
            .await
        }
        _ => error(StatusCode::NOT_FOUND, "no such API call", None),
    }
}

/// Merges a partial settings object into the settings; the password is taken out first and
/// kept in memory only.
fn put_settings(app: &App, mut patch: Value) -> Response<Body> {
    if let Some(p) = patch
        .get_mut("server")
        .and_then(Value::as_object_mut)
        .and_then(|s| s.remove("password"))
    {
        *lock(&app.password) = Password::new(p.as_str().unwrap_or_default());
    }
    let mut merged = serde_json::to_value(app.settings()).unwrap_or_default();
    merge(&mut merged, patch);
    let settings: Settings = match serde_json::from_value(merged) {
        Ok(s) => s,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("these settings cannot be used: {e}"),
                None,
            );
        }
    };
    if let Err(why) = settings.validate() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, &why, None);
    }
    if let Err(e) = app.ws.save_settings(&settings) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}"), None);
    }
    *lock(&app.settings) = settings;
    ok_state(app)
}

/// JSON merge (RFC 7396, without deletion): objects merge key by key, anything else replaces.
fn merge(into: &mut Value, patch: Value) {
    match (into, patch) {
        (Value::Object(into), Value::Object(patch)) => {
            for (k, v) in patch {
                merge(into.entry(k).or_insert(Value::Null), v);
            }
        }
        (into, patch) => *into = patch,
    }
}

fn put_recipients(app: &App, bytes: &[u8], name: &str) -> Response<Body> {
    if app.hub.is_going() {
        return error(
            StatusCode::CONFLICT,
            "a run is going: pause or stop it before changing the recipients",
            None,
        );
    }
    let name = std::path::Path::new(name)
        .file_name()
        .map_or("recipients.csv".into(), |n| {
            n.to_string_lossy().into_owned()
        });
    let loaded = match Loaded::parse(bytes, &name) {
        Ok(l) => l,
        Err(why) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("this CSV cannot be used: {why}"),
                Some(
                    "save it from your spreadsheet as CSV with a header row and a column of email addresses",
                ),
            );
        }
    };
    if let Err(e) = app.ws.replace_csv(bytes, &name) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e:#}"), None);
    }
    let r = &loaded.recipients;
    app.hub.reset(r.rows.len() + r.skipped.len());
    *lock(&app.recipients) = Some(Arc::new(loaded));
    ok_state(app)
}

fn recipients_from_path(app: &App, path: &str) -> Response<Body> {
    let path = std::path::Path::new(path.trim());
    match std::fs::metadata(path) {
        Ok(m) if m.len() > http::MAX_UPLOAD as u64 => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the file is larger than 10 MB, which is more than buzon ui takes",
                Some("split the CSV"),
            );
        }
        _ => {}
    }
    match std::fs::read(path) {
        Ok(bytes) => put_recipients(app, &bytes, &path.display().to_string()),
        Err(e) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("cannot read {}: {e}", path.display()),
            Some("give the full path of a CSV file on the machine running buzon ui"),
        ),
    }
}

fn check(app: &App) -> Response<Body> {
    let Some(loaded) = app.recipients() else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no recipients yet",
            Some("upload a CSV in Recipients"),
        );
    };
    let limit = lock(&app.size_limit).unwrap_or(lint::DEFAULT_SIZE_LIMIT);
    let c = lint::check(
        &app.settings(),
        &loaded.recipients,
        &app.ws.attachments_dir(),
        limit,
    );
    json_response(StatusCode::OK, &c.to_json())
}

fn preview(app: &App, n: usize) -> Response<Body> {
    let Some(loaded) = app.recipients() else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no recipients yet",
            Some("upload a CSV in Recipients"),
        );
    };
    let load = lint::attachment_loader(app.ws.attachments_dir());
    let r = &loaded.recipients;
    match lint::preview(&app.settings(), r, n, &load, &app.options.helo) {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(why) => error(StatusCode::UNPROCESSABLE_ENTITY, &why, None),
    }
}

/// The progress stream: the campaign and every outcome after `Last-Event-ID` (or `since`),
/// then each change as it comes; a comment every 15 seconds finds closed tabs.
fn events(app: &Arc<App>, req: &Request<Incoming>) -> Response<Body> {
    let since = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query(req, "since"))
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let start = (app.hub.clone(), since, String::new());
    let frames = stream::unfold(start, |(hub, mut since, mut shown)| async move {
        loop {
            let (campaign, new, listener) = hub.since(since);
            let mut out = String::new();
            let campaign = campaign.to_string();
            if campaign != shown {
                out.push_str(&format!("event: campaign\ndata: {campaign}\n\n"));
                shown = campaign;
            }
            for r in new {
                let seq = r["seq"].as_u64().unwrap_or(since);
                out.push_str(&format!("id: {seq}\nevent: result\ndata: {r}\n\n"));
                since = since.max(seq);
            }
            if !out.is_empty() {
                return Some((Ok(Frame::data(Bytes::from(out))), (hub, since, shown)));
            }
            let changed = async {
                listener.await;
                true
            };
            let quiet = async {
                async_io::Timer::after(Duration::from_secs(15)).await;
                false
            };
            if !changed.or(quiet).await {
                return Some((
                    Ok(Frame::data(Bytes::from_static(b": still here\n\n"))),
                    (hub, since, shown),
                ));
            }
        }
    });
    let body: Body = BodyExt::boxed(StreamBody::new(frames));
    let mut r = Response::new(body);
    http::secure(&mut r);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r
}
