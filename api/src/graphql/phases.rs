//! What happens to a request before it runs: parsing, validation and the
//! request's limits. Errors raised there get their code from the phase
//! that raised them (never from their wording), and the server learns
//! whether the request ran at all (GraphQL over HTTP answers a request that
//! never ran with 400 and no `data` entry).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Installs the phase hooks on a schema.
#[derive(Debug)]
pub struct Phases;

impl ExtensionFactory for Phases {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Phases)
    }
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
impl Extension for Phases {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|error| {
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
