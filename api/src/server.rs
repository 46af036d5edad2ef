//! The HTTP server: GraphQL over HTTP (POST and GET), GraphiQL for
//! browsers, subscriptions over WebSocket (`graphql-transport-ws`),
//! health, readiness and Prometheus metrics. `app` builds the router so
//! tests can drive it; `Server::start` binds and runs it.

use std::net::SocketAddr;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Router;
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{RawQuery, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use rapport_domain::Language;
use rapport_store::{EventStore, LedgerHead, LedgerLocation};
use tokio::sync::{Semaphore, oneshot, watch};

use crate::graphql::auth::SocketToken;
use crate::graphql::errors::Code;
use crate::graphql::phases::{Ran, ensure_code};
use crate::graphql::{ApiSchema, ConnectionSubscriptions, build_schema};
use crate::metrics::Metrics;
use crate::state::{AppState, LEDGER_WALKS_MAX, PrincipalSubscriptions};
use rapport_app::Core;
use rapport_app::clock::{SharedClock, system_clock};
use rapport_app::tokens::{Principal, TokenStore};

/// WebSocket connections open at once; more are refused with 503.
pub const WEBSOCKETS_MAX: usize = 1_024;
/// Messages queued for one WebSocket client before its subscriptions wait.
const WEBSOCKET_QUEUED_MAX: usize = 64;
/// How often the server reloads tokens another process created or revoked.
const TOKEN_REFRESH: Duration = Duration::from_millis(250);
/// How often an open WebSocket's token is checked again.
const TOKEN_RECHECK: Duration = Duration::from_millis(250);
/// `graphql-transport-ws` close code for a client no longer allowed in.
const CLOSE_FORBIDDEN: u16 = 4403;
/// How long a new WebSocket has to send an accepted `connection_init`.
const WEBSOCKET_INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// `graphql-transport-ws` close code for a connection_init that never came.
const CLOSE_INIT_TIMEOUT: u16 = 4408;

/// Connections served at once; further ones wait in the listen queue.
pub const CONNECTIONS_MAX: usize = 4_096;
/// Time a client has to send a request's headers, also while a kept-alive
/// connection sits idle.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a request's body has to arrive once its headers have.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stop waits for the requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// The largest request body accepted.
pub const BODY_BYTES_MAX: usize = 1 << 20;
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

#[derive(Clone, Debug)]
pub struct Settings {
    pub store: LedgerLocation,
    pub listen: SocketAddr,
}

#[derive(Clone)]
struct App {
    state: Arc<AppState>,
    schema: ApiSchema,
    websockets: Arc<Semaphore>,
}

fn error_body(code: Code, message: &str) -> serde_json::Value {
    serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] })
}

fn json_response(status: StatusCode, content_type: &'static str, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        bytes,
    )
        .into_response()
}

fn wants_graphql_response_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains(GRAPHQL_RESPONSE_JSON))
}

fn content_type(headers: &HeaderMap) -> &'static str {
    if wants_graphql_response_json(headers) {
        "application/graphql-response+json; charset=utf-8"
    } else {
        "application/json"
    }
}

fn refuse(headers: &HeaderMap, status: StatusCode, code: Code, message: &str) -> Response {
    json_response(status, content_type(headers), &error_body(code, message))
}

/// The language the caller's `Accept-Language` prefers, English if none.
fn language_of(headers: &HeaderMap) -> Language {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
        .and_then(Language::from_accept_language)
        .unwrap_or_default()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

impl App {
    /// The caller, or the response that refuses them.
    fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, Box<Response>> {
        let Some(token) = bearer(headers) else {
            let message = "send Authorization: Bearer <token>";
            return Err(Box::new(refuse(
                headers,
                StatusCode::UNAUTHORIZED,
                Code::Unauthenticated,
                message,
            )));
        };
        self.state.tokens.authenticate(token).ok_or_else(|| {
            let message = "the token is unknown or revoked";
            Box::new(refuse(
                headers,
                StatusCode::UNAUTHORIZED,
                Code::Unauthenticated,
                message,
            ))
        })
    }

    async fn execute(&self, headers: &HeaderMap, request: async_graphql::Request, principal: Principal) -> Response {
        // A missing or misspelt `query` parameter is not a GraphQL request.
        if request.query.trim().is_empty() {
            return refuse(
                headers,
                StatusCode::BAD_REQUEST,
                Code::BadInput,
                "the request has no query",
            );
        }
        let ran = Arc::new(Ran::default());
        let mut response = self
            .schema
            .execute(
                request
                    .data(principal)
                    .data(language_of(headers))
                    .data(Arc::clone(&ran)),
            )
            .await;
        for error in &mut response.errors {
            ensure_code(error);
        }
        let mut body = serde_json::to_value(&response).unwrap_or_default();
        // A request refused before it ran (syntax, validation, limits) has
        // no `data` entry; with the new media type it is also a 400, while
        // application/json clients always get 200.
        let status = if ran.get() {
            StatusCode::OK
        } else {
            if let Some(fields) = body.as_object_mut() {
                fields.remove("data");
            }
            if wants_graphql_response_json(headers) {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            }
        };
        json_response(status, content_type(headers), &body)
    }
}

/// Whether a POST says its body is JSON (any charset parameter allowed).
fn is_json_body(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media_type| media_type.trim().eq_ignore_ascii_case("application/json"))
}

async fn graphql_post(State(app): State<App>, headers: HeaderMap, request: Request) -> Response {
    let principal = match app.authenticate(&headers) {
        Ok(principal) => principal,
        Err(refusal) => return *refusal,
    };
    if !is_json_body(&headers) {
        let message = "send the request as Content-Type: application/json";
        return refuse(&headers, StatusCode::UNSUPPORTED_MEDIA_TYPE, Code::BadInput, message);
    }
    let body = match tokio::time::timeout(
        BODY_READ_TIMEOUT,
        axum::body::to_bytes(request.into_body(), BODY_BYTES_MAX),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            let message = format!("the request body is over {BODY_BYTES_MAX} bytes");
            return refuse(&headers, StatusCode::PAYLOAD_TOO_LARGE, Code::LimitExceeded, &message);
        }
        Err(_) => {
            let message = format!(
                "the request body did not arrive within {} s",
                BODY_READ_TIMEOUT.as_secs()
            );
            return refuse(&headers, StatusCode::REQUEST_TIMEOUT, Code::LimitExceeded, &message);
        }
    };
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            let message = format!("the body is not a GraphQL request in JSON: {error}");
            return refuse(&headers, StatusCode::BAD_REQUEST, Code::BadInput, &message);
        }
    };
    app.execute(&headers, request, principal).await
}

fn is_mutation(query: &str) -> bool {
    async_graphql::parser::parse_query(query).is_ok_and(|document| {
        document
            .operations
            .iter()
            .any(|(_, operation)| operation.node.ty == async_graphql::parser::types::OperationType::Mutation)
    })
}

async fn graphql_get(State(app): State<App>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if browser && query.is_none() {
        return crate::console::graphiql_page(&headers).await;
    }
    let principal = match app.authenticate(&headers) {
        Ok(principal) => principal,
        Err(refusal) => return *refusal,
    };
    let request = match async_graphql::http::parse_query_string(query.as_deref().unwrap_or_default()) {
        Ok(request) => request,
        Err(error) => return refuse(&headers, StatusCode::BAD_REQUEST, Code::BadInput, &error.to_string()),
    };
    if is_mutation(&request.query) {
        let mut response = refuse(
            &headers,
            StatusCode::METHOD_NOT_ALLOWED,
            Code::BadInput,
            "mutations must be sent with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    app.execute(&headers, request, principal).await
}

fn token_of_init(payload: &serde_json::Value) -> Option<String> {
    ["Authorization", "authorization"]
        .iter()
        .find_map(|key| payload.get(key).and_then(|value| value.as_str()))
        .map(|value| value.strip_prefix("Bearer ").unwrap_or(value).trim().to_owned())
}

async fn graphql_ws(
    State(app): State<App>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Ok(permit) = Arc::clone(&app.websockets).try_acquire_owned() else {
        let message =
            format!("{WEBSOCKETS_MAX} WebSocket connections are open, the most this server holds; try again later");
        return refuse(&headers, StatusCode::SERVICE_UNAVAILABLE, Code::LimitExceeded, &message);
    };
    // The token may come as a header or, from browsers, in connection_init.
    let header_token = bearer(&headers).map(str::to_owned);
    let language = language_of(&headers);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            serve_socket(app, socket, protocol, header_token, language).await;
            drop(permit);
        })
}

/// Serves one `graphql-transport-ws` connection, and closes it with 4403
/// as soon as its token is revoked.
async fn serve_socket(
    app: App,
    socket: WebSocket,
    protocol: GraphQLProtocol,
    header_token: Option<String>,
    language: Language,
) {
    let (mut to_client, from_client) = socket.split();
    let (outgoing, mut queued) = futures::channel::mpsc::channel::<Message>(WEBSOCKET_QUEUED_MAX);
    let accepted: Arc<OnceLock<(String, Principal)>> = Arc::default();
    let on_init = {
        let state = Arc::clone(&app.state);
        let accepted = Arc::clone(&accepted);
        move |payload: serde_json::Value| async move {
            let candidates = [token_of_init(&payload), header_token].into_iter().flatten();
            let found = candidates
                .filter_map(|token| {
                    let principal = state.tokens.authenticate(&token)?;
                    Some((token, principal))
                })
                .next();
            let Some((token, principal)) = found else {
                return Err(async_graphql::Error::new(
                    "UNAUTHENTICATED: a valid bearer token is required",
                ));
            };
            let mut data = Data::default();
            data.insert(principal.clone());
            data.insert(language);
            data.insert(SocketToken(token.clone()));
            data.insert(ConnectionSubscriptions::default());
            let _ = accepted.set((token, principal));
            Ok(data)
        }
    };
    let serving = GraphQLWebSocket::new_with_pair(outgoing, from_client, app.schema.clone(), protocol)
        .on_connection_init(on_init)
        .serve();
    futures::pin_mut!(serving);
    let mut served = false;
    let opened = Instant::now();
    let mut recheck = tokio::time::interval(TOKEN_RECHECK);
    loop {
        tokio::select! {
            () = &mut serving, if !served => served = true,
            message = queued.next() => match message {
                Some(message) => {
                    if to_client.send(message).await.is_err() {
                        return;
                    }
                }
                // The protocol has ended and everything it sent is out.
                None => return,
            },
            _ = recheck.tick() => {
                let Some((token, principal)) = accepted.get() else {
                    // A socket that never signs in would hold its place forever.
                    if opened.elapsed() >= WEBSOCKET_INIT_TIMEOUT {
                        let close = CloseFrame { code: CLOSE_INIT_TIMEOUT, reason: "connection_init did not come in time".into() };
                        let _ = to_client.send(Message::Close(Some(close))).await;
                        return;
                    }
                    continue;
                };
                if app.state.tokens.authenticate(token).is_none() {
                    tracing::warn!(name = %principal.name, role = %principal.role, "refused: the token was revoked; closing its WebSocket");
                    let close = CloseFrame { code: CLOSE_FORBIDDEN, reason: "the token was revoked".into() };
                    let _ = to_client.send(Message::Close(Some(close))).await;
                    return;
                }
            }
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// How long `/readyz` waits for the read model to reach the ledger's head.
const READY_CATCH_UP: Duration = Duration::from_secs(2);

async fn readyz(State(app): State<App>) -> Response {
    if let Some(failure) = app.state.core.live.failure() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("projections stopped: {failure}\n"),
        )
            .into_response();
    }
    match app.state.core.store.head().await {
        Ok(head) if app.state.core.live.position() >= head.last_position => "ready\n".into_response(),
        // On a cluster other nodes' commits reach this one a moment later:
        // ready when the read model gets there within `READY_CATCH_UP`.
        Ok(LedgerHead {
            last_position: Some(head),
            ..
        }) if tokio::time::timeout(READY_CATCH_UP, app.state.core.live.wait_for(head))
            .await
            .is_ok_and(|reached| reached.is_ok()) =>
        {
            "ready\n".into_response()
        }
        Ok(_) => (StatusCode::SERVICE_UNAVAILABLE, "projections are catching up\n").into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the ledger is unavailable: {error}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(app): State<App>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.state.metrics.render(),
    )
        .into_response()
}

async fn measure(State(app): State<App>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let span = tracing::info_span!("request", method = %request.method(), path = %request.uri().path());
    let response = {
        let _entered = span.enter();
        next.run(request).await
    };
    app.state
        .metrics
        .record_request(response.status().as_u16(), started.elapsed());
    response
}

/// The router, for the server and for tests.
pub fn app(state: Arc<AppState>) -> Router {
    let app = App {
        schema: build_schema(Arc::clone(&state)),
        state,
        websockets: Arc::new(Semaphore::new(WEBSOCKETS_MAX)),
    };
    Router::new()
        .route("/", get(crate::console::console_page))
        .route("/assets/{*path}", get(crate::console::asset))
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "application/json")],
                not_found_body(),
            )
        })
        .layer(middleware::from_fn_with_state(app.clone(), measure))
        .with_state(app)
}

/// Opens the ledger, its tokens and projections, on the system clock.
pub async fn open_state(location: impl Into<LedgerLocation>) -> anyhow::Result<Arc<AppState>> {
    open_state_on(location, system_clock()).await
}

/// As `open_state`, on `clock`. The tokens are this node's own, kept
/// beside the ledger file (or the cluster location's `local` path).
pub async fn open_state_on(location: impl Into<LedgerLocation>, clock: SharedClock) -> anyhow::Result<Arc<AppState>> {
    let location = location.into();
    let core = Core::open(&location, clock)
        .await
        .with_context(|| format!("opening the ledger {location}"))?;
    let tokens = Arc::new(TokenStore::open(location.local_path())?);
    tokens.keep_fresh(TOKEN_REFRESH);
    Ok(Arc::new(AppState {
        core,
        tokens,
        metrics: Metrics::default(),
        last_replay: Mutex::new(None),
        ledger_walks: Semaphore::new(LEDGER_WALKS_MAX),
        subscriptions: PrincipalSubscriptions::default(),
    }))
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    pub address: SocketAddr,
    pub state: Arc<AppState>,
    stop: oneshot::Sender<()>,
    running: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub async fn start(settings: &Settings) -> anyhow::Result<Server> {
        let state = open_state(&settings.store).await?;
        Self::start_with(state, settings.listen).await
    }

    pub async fn start_with(state: Arc<AppState>, listen: SocketAddr) -> anyhow::Result<Server> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let address = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let router = app(Arc::clone(&state));
        let running = tokio::spawn(serve(listener, router, stopped));
        Ok(Server {
            address,
            state,
            stop,
            running,
        })
    }

    /// Stops accepting requests, waits for those in flight to finish, then
    /// snapshots the read model so that the next start folds only what is
    /// recorded after (a snapshot that cannot be written costs that start
    /// time, nothing else).
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.running.await.context("the server task")??;
        if let Err(error) = self.state.core.live.save_snapshot().await {
            tracing::warn!(%error, "the read-model snapshot was not written");
        }
        Ok(())
    }
}

/// Serves HTTP/1.1 (with upgrades, for WebSockets) until `stopped`: at most
/// `CONNECTIONS_MAX` connections at once, each given `HEADER_READ_TIMEOUT`
/// to send a request's headers (so idle and half-sent connections close).
/// A stop finishes the requests in flight, waiting `SHUTDOWN_GRACE` at most.
async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    stopped: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let (closing, _) = watch::channel(false);
    let mut served = tokio::task::JoinSet::new();
    futures::pin_mut!(stopped);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => permit,
            _ = &mut stopped => break,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stopped => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, say: wait instead of spinning.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let mut closing = closing.subscribe();
        served.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let connection = builder
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades();
            futures::pin_mut!(connection);
            let stop_asked = async move {
                // Closed (the server is gone) counts as asked.
                let _ = closing.wait_for(|closing| *closing).await;
            };
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stop_asked => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        while served.try_join_next().is_some() {}
    }
    let _ = closing.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async { while served.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            open = served.len(),
            "stopping with connections still open after the grace period"
        );
        served.abort_all();
    }
    Ok(())
}

/// Runs until SIGINT or SIGTERM, then finishes in-flight requests (and
/// their appends) before returning.
pub async fn run_until_signal(server: Server) -> anyhow::Result<()> {
    let interrupted = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminated = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminated = std::future::pending::<()>();
    tokio::select! {
        _ = interrupted => {}
        _ = terminated => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
    server.stop().await
}

/// The body of a 404 for anything else, in the API's error shape.
fn not_found_body() -> Body {
    Body::from(serde_json::to_vec(&error_body(Code::NotFound, "no such endpoint")).unwrap_or_default())
}
