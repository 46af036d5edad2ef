//! The console and GraphiQL, served from the binary: every page, script,
//! style and font is embedded, so a browser on an intranet with no CDN
//! needs nothing beyond this server. Pages carry a strict
//! Content-Security-Policy; text is sent gzip- or brotli-compressed, each
//! form made once per process when first asked for (GraphiQL's script, the
//! largest, takes a few tenths of a second; a server that is never opened
//! in a browser never spends them).

use std::io::Write as _;
use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// How long a browser may keep an asset before asking again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caching {
    /// The path names the version (vendored files): keep it a year.
    Versioned,
    /// Ours, changed with every release: ask again each time (an ETag
    /// makes the answer a short 304 when nothing changed).
    Revalidate,
}

#[derive(Debug)]
struct Asset {
    path: &'static str,
    media_type: &'static str,
    bytes: &'static [u8],
    caching: Caching,
}

macro_rules! asset {
    ($path:literal, $file:literal, $media_type:expr, $caching:ident) => {
        Asset {
            path: $path,
            media_type: $media_type,
            bytes: include_bytes!(concat!("../assets/", $file)),
            caching: Caching::$caching,
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JSON: &str = "application/json";

/// The console's page at `/`.
const CONSOLE_PAGE: usize = 0;
/// GraphiQL's page, at `/graphql` for browsers.
const GRAPHIQL_PAGE: usize = 1;

static ASSETS: [Asset; 13] = [
    asset!("/", "console/index.html", HTML, Revalidate),
    asset!("/graphql", "graphiql/index.html", HTML, Revalidate),
    asset!("console.js", "console/console.js", JS, Revalidate),
    asset!("console.css", "console/console.css", CSS, Revalidate),
    asset!("icon.svg", "console/icon.svg", "image/svg+xml", Revalidate),
    asset!("words/en.json", "console/words/en.json", JSON, Revalidate),
    asset!("words/zh.json", "console/words/zh.json", JSON, Revalidate),
    asset!("graphiql/start.js", "graphiql/start.js", JS, Revalidate),
    asset!("graphiql/start.css", "graphiql/start.css", CSS, Revalidate),
    asset!("vendor/graphiql-3.8.3.min.js", "vendor/graphiql.min.js", JS, Versioned),
    asset!(
        "vendor/graphiql-3.8.3.min.css",
        "vendor/graphiql.min.css",
        CSS,
        Versioned
    ),
    asset!(
        "vendor/react-18.3.1.min.js",
        "vendor/react.production.min.js",
        JS,
        Versioned
    ),
    asset!(
        "vendor/react-dom-18.3.1.min.js",
        "vendor/react-dom.production.min.js",
        JS,
        Versioned
    ),
];
/// Each asset's ETag and compressed forms, in the order of `ASSETS`.
static ENCODED: [Encoded; ASSETS.len()] = [const { Encoded::new() }; ASSETS.len()];

/// The policy of the console: scripts, styles, fonts and connections
/// (the API and its WebSocket) from this server only; no frames of others.
const CONSOLE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";
/// GraphiQL's editor styles itself at run time (emotion inserts `<style>`
/// elements) and its fonts are data URLs; its scripts stay strict.
const GRAPHIQL_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'self'";

/// Text smaller than this goes out as it is: compressing saves nothing.
const COMPRESS_FROM_BYTES: usize = 1_024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

/// An asset's ETag and compressed forms, each made once.
#[derive(Debug)]
struct Encoded {
    etag: OnceLock<String>,
    brotli: OnceLock<Vec<u8>>,
    gzip: OnceLock<Vec<u8>>,
}

impl Encoded {
    const fn new() -> Self {
        Encoded {
            etag: OnceLock::new(),
            brotli: OnceLock::new(),
            gzip: OnceLock::new(),
        }
    }
}

/// One of `ASSETS`, by its place.
#[derive(Clone, Copy, Debug)]
struct Served(usize);

impl Served {
    fn find(path: &str) -> Option<Served> {
        ASSETS.iter().position(|asset| asset.path == path).map(Served)
    }

    fn asset(self) -> &'static Asset {
        &ASSETS[self.0]
    }

    fn etag(self) -> &'static str {
        ENCODED[self.0].etag.get_or_init(|| {
            let digest = Sha256::digest(self.asset().bytes);
            format!("\"{}\"", hex::encode(&digest[..12]))
        })
    }

    fn body(self, encoding: Encoding) -> &'static [u8] {
        let (asset, forms) = (self.asset(), &ENCODED[self.0]);
        match encoding {
            Encoding::Identity => asset.bytes,
            Encoding::Brotli => forms.brotli.get_or_init(|| {
                let mut out = Vec::with_capacity(asset.bytes.len() / 4);
                let params = brotli::enc::BrotliEncoderParams {
                    quality: 5,
                    ..Default::default()
                };
                // Writing into memory cannot fail; an empty result is sent
                // as identity below.
                let _ = brotli::BrotliCompress(&mut &asset.bytes[..], &mut out, &params);
                out
            }),
            Encoding::Gzip => forms.gzip.get_or_init(|| {
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                let _ = encoder.write_all(asset.bytes);
                encoder.finish().unwrap_or_default()
            }),
        }
    }

    /// The body in `encoding` if it is made already.
    fn ready(self, encoding: Encoding) -> Option<&'static [u8]> {
        let forms = &ENCODED[self.0];
        match encoding {
            Encoding::Identity => Some(self.asset().bytes),
            Encoding::Brotli => forms.brotli.get().map(Vec::as_slice),
            Encoding::Gzip => forms.gzip.get().map(Vec::as_slice),
        }
    }

    fn compressible(self) -> bool {
        self.asset().bytes.len() >= COMPRESS_FROM_BYTES
    }
}

/// The encoding the client weighs highest (`q`, default 1; `br` before
/// `gzip` on a tie, `*` for either); identity when it accepts neither.
fn negotiate(headers: &HeaderMap) -> Encoding {
    let Some(accepted) = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()) else {
        return Encoding::Identity;
    };
    let weight_of = |name: &str| {
        let mut named = None;
        let mut any = None;
        for entry in accepted.split(',') {
            let mut parts = entry.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let weight = parts
                .find_map(|p| {
                    let p = p.trim();
                    p.strip_prefix("q=").or_else(|| p.strip_prefix("Q="))
                })
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())
                .unwrap_or(0.0);
            if coding.eq_ignore_ascii_case(name) {
                named = Some(weight);
            } else if coding == "*" {
                any = Some(weight);
            }
        }
        named.or(any).unwrap_or(0.0)
    };
    let (brotli, gzip) = (weight_of("br"), weight_of("gzip"));
    if brotli > 0.0 && brotli >= gzip {
        Encoding::Brotli
    } else if gzip > 0.0 {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

impl Encoding {
    fn name(self) -> Option<&'static str> {
        match self {
            Encoding::Brotli => Some("br"),
            Encoding::Gzip => Some("gzip"),
            Encoding::Identity => None,
        }
    }
}

/// Whether `If-None-Match` names `etag` (compared weakly, as for a GET).
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
        })
}

async fn respond(served: Served, headers: &HeaderMap, vary: &'static str) -> Response {
    let asset = served.asset();
    let encoding = if served.compressible() {
        negotiate(headers)
    } else {
        Encoding::Identity
    };
    // Each encoding is a different body, so it has its own tag.
    let etag = match encoding.name() {
        Some(name) => format!("{}-{name}\"", served.etag().trim_end_matches('"')),
        None => served.etag().to_owned(),
    };
    let mut response_headers = HeaderMap::new();
    let caching = match asset.caching {
        Caching::Versioned => "public, max-age=31536000, immutable",
        Caching::Revalidate => "no-cache",
    };
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(caching));
    response_headers.insert(header::VARY, HeaderValue::from_static(vary));
    response_headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    if asset.media_type == HTML {
        let policy = if served.0 == GRAPHIQL_PAGE {
            GRAPHIQL_POLICY
        } else {
            CONSOLE_POLICY
        };
        response_headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(policy));
        response_headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
    if matches(headers, &etag) {
        return (StatusCode::NOT_MODIFIED, response_headers).into_response();
    }
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.media_type));
    // Compressing GraphiQL's script takes a few tenths of a second: off
    // the async workers, so that it holds up no other request.
    let body = match served.ready(encoding) {
        Some(body) => body,
        None => tokio::task::spawn_blocking(move || served.body(encoding))
            .await
            .unwrap_or(asset.bytes),
    };
    let (encoding, body) = if body.is_empty() && !asset.bytes.is_empty() {
        (Encoding::Identity, asset.bytes)
    } else {
        (encoding, body)
    };
    if let Some(name) = encoding.name() {
        response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
    }
    (StatusCode::OK, response_headers, body).into_response()
}

/// `GET /`: the console.
pub async fn console_page(headers: HeaderMap) -> Response {
    respond(Served(CONSOLE_PAGE), &headers, "Accept-Encoding").await
}

/// GraphiQL, for a browser asking `GET /graphql` for HTML (the same
/// address answers JSON to other clients, hence `Vary: Accept`).
pub async fn graphiql_page(headers: &HeaderMap) -> Response {
    respond(Served(GRAPHIQL_PAGE), headers, "Accept, Accept-Encoding").await
}

/// `GET /assets/{*path}`: a script, style, catalogue or vendored file.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    // The pages have their own routes, not one under /assets.
    match Served::find(&path).filter(|served| served.0 > GRAPHIQL_PAGE) {
        Some(served) => respond(served, &headers, "Accept-Encoding").await,
        None => (
            StatusCode::NOT_FOUND,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            "no such asset\n",
        )
            .into_response(),
    }
}
