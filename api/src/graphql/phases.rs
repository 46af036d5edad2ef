//! What happens to a request before it runs: parsing, validation and the
//! request's limits. Errors raised there get their code from the phase
//! that raised them (never from their wording), and the server learns
//! whether the request ran at all (GraphQL over HTTP answers a request that
//! never ran with 400 and no `data` entry). Parsed documents are kept by
//! their text: clients send the same few queries with new variables, and
//! parsing was a third of the server's work on the `gate` query.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextSubscribe, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Variables};
use futures::StreamExt;
use futures::stream::BoxStream;

use super::errors::Code;
use super::{COMPLEXITY_MAX, DEPTH_MAX};

/// Set once a request reaches execution; put in each request's data.
#[derive(Debug, Default)]
pub struct Ran(AtomicBool);

impl Ran {
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The query text a schema keeps parsed documents for, in bytes at most;
/// past it the store starts again empty (a client sending ever new
/// queries costs parsing, as without the store, and no more memory).
const PARSED_TEXT_BYTES_MAX: usize = 256 * 1024;
/// Longer queries are parsed each time: they are rare, and would crowd out
/// the common ones.
const PARSED_QUERY_BYTES_MAX: usize = 8 * 1024;

/// Documents that parsed, by their text.
#[derive(Debug, Default)]
struct ParsedQueries {
    documents: HashMap<String, Arc<ExecutableDocument>>,
    text_bytes: usize,
}

impl ParsedQueries {
    fn keep(&mut self, query: &str, document: &ExecutableDocument) {
        if query.len() > PARSED_QUERY_BYTES_MAX {
            return;
        }
        if self.text_bytes + query.len() > PARSED_TEXT_BYTES_MAX {
            self.documents.clear();
            self.text_bytes = 0;
        }
        if self
            .documents
            .insert(query.to_owned(), Arc::new(document.clone()))
            .is_none()
        {
            self.text_bytes += query.len();
        }
    }
}

/// Installs the phase hooks on a schema.
#[derive(Debug, Default)]
pub struct Phases {
    parsed: Arc<Mutex<ParsedQueries>>,
}

impl ExtensionFactory for Phases {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(PhaseHooks {
            parsed: Arc::clone(&self.parsed),
        })
    }
}

/// The hooks of one request.
#[derive(Debug)]
struct PhaseHooks {
    parsed: Arc<Mutex<ParsedQueries>>,
}

fn coded(mut error: ServerError, code: Code) -> ServerError {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code.as_str());
    error
}

/// Our own errors all carry a code; the only ones that come without are
/// async-graphql's refusals of the request itself (an input value it could
/// not coerce, an unknown operation): the caller's input, refused.
pub fn ensure_code(error: &mut ServerError) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", Code::BadInput.as_str());
    }
}

fn over_limit(message: String) -> ServerError {
    coded(ServerError::new(message, None), Code::LimitExceeded)
}

#[async_trait::async_trait]
impl Extension for PhaseHooks {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let kept = self
            .parsed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .documents
            .get(query)
            .cloned();
        if let Some(document) = kept {
            return Ok((*document).clone());
        }
        let parsed = next.run(ctx, query, variables).await;
        if let Ok(document) = &parsed {
            self.parsed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .keep(query, document);
        }
        parsed.map_err(|error| {
            // A document that parses on its own (or fails only the
            // parser's own nesting guard) was refused for its nesting, not
            // for its syntax.
            let code = match async_graphql::parser::parse_query(query) {
                Ok(_) | Err(async_graphql::parser::Error::RecursionLimitExceeded) => Code::LimitExceeded,
                Err(_) => Code::BadInput,
            };
            coded(error, code)
        })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|error| coded(error, Code::BadInput))
                .collect::<Vec<_>>()
        })?;
        if result.depth > DEPTH_MAX {
            let message = format!(
                "the query is nested {} deep, over the limit of {DEPTH_MAX}",
                result.depth
            );
            return Err(vec![over_limit(message)]);
        }
        if result.complexity > COMPLEXITY_MAX {
            let message = format!(
                "the query costs {}, over the limit of {COMPLEXITY_MAX}; ask for fewer fields or smaller pages",
                result.complexity
            );
            return Err(vec![over_limit(message)]);
        }
        Ok(result)
    }

    /// Every answer on a subscription (WebSocket) carries codes too.
    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream)
            .map(|mut response| {
                response.errors.iter_mut().for_each(ensure_code);
                response
            })
            .boxed()
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let Some(ran) = ctx.data_opt::<Arc<Ran>>() {
            ran.0.store(true, Ordering::Relaxed);
        }
        next.run(ctx, operation_name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(query: &str) -> ExecutableDocument {
        async_graphql::parser::parse_query(query).expect("a query")
    }

    #[test]
    fn kept_documents_never_hold_more_text_than_the_limit() {
        let mut parsed = ParsedQueries::default();
        for n in 0..20_000 {
            let query = format!("{{ a{n}: __typename }}");
            parsed.keep(&query, &document(&query));
            assert!(parsed.text_bytes <= PARSED_TEXT_BYTES_MAX);
            assert_eq!(
                parsed.text_bytes,
                parsed.documents.keys().map(String::len).sum::<usize>()
            );
        }
        assert!(!parsed.documents.is_empty());
    }

    #[test]
    fn a_long_query_is_parsed_each_time_not_kept() {
        let mut parsed = ParsedQueries::default();
        let fields: Vec<String> = (0..1_000).map(|n| format!("a{n}: __typename")).collect();
        let query = format!("{{ {} }}", fields.join(" "));
        assert!(query.len() > PARSED_QUERY_BYTES_MAX);
        parsed.keep(&query, &document(&query));
        assert!(parsed.documents.is_empty());
        let short = "{ __typename }";
        parsed.keep(short, &document(short));
        parsed.keep(short, &document(short));
        assert_eq!((parsed.documents.len(), parsed.text_bytes), (1, short.len()));
    }
}
