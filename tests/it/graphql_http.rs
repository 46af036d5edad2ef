//! The GraphQL-over-HTTP server audits of the `graphql-http` npm package
//! (`serverAudits` in its src/audits/server.ts, 1.22.4, commit 08b4ed2),
//! every one of them, MUST, SHOULD and MAY, as Rust tests. The package's
//! own `auditServer` cannot be pointed at rapport: its requests carry no
//! token, and ours refuses those with a 401 before looking at anything
//! else; nor is Node on the CI machines. So each test sends the audit's
//! request, with the auditor's (read-only) token added, and asserts what
//! the audit asserts. A test's doc comment is the audit's id and wording,
//! and its name ends with the id (`cargo test 9abe`).
//!
//! The package leaves 39AA, EE52 and BC58 as TODOs, outside `serverAudits`;
//! they are not here (api.rs checks the 401s that BC58 is about).

use std::fmt;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::TestServer;

const JSON: &str = "application/json";
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";
/// Whose token every audit request carries.
const WHO: &str = "auditor";
const TYPENAME: &str = "{ __typename }";
const TYPE_BY_NAME: &str = "query Type($name: String!) { __type(name: $name) { name } }";
/// A document that does not parse.
const UNPARSABLE: &str = "{";
/// A field that does not exist, as the audits write it (a name cannot
/// start with a digit, so this fails to parse before it could validate).
const NO_SUCH_FIELD: &str = "{ 8f31403dfe404bccbb0e835f2629c6a7 }";
const NOT_JSON: &str = "{ \"not a JSON";

/// What the server answered to one audit request.
struct Reply {
    status: StatusCode,
    content_type: String,
    body: String,
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}) {}", self.status, self.content_type, self.body)
    }
}

/// The audits' assertions (graphql-http's `ressert`), with its reasons.
impl Reply {
    #[track_caller]
    fn status_is(&self, code: u16) {
        assert_eq!(
            self.status.as_u16(),
            code,
            "the response status code is not {code}: {self}"
        );
    }

    #[track_caller]
    fn status_between(&self, min: u16, max: u16) {
        assert!(
            (min..=max).contains(&self.status.as_u16()),
            "the response status is not between {min} and {max}: {self}"
        );
    }

    #[track_caller]
    fn content_type_contains(&self, part: &str) {
        assert!(
            self.content_type.contains(part),
            "the response header content-type does not contain {part}: {self}"
        );
    }

    /// The body read as an execution result has no `key` property.
    #[track_caller]
    fn lacks(&self, key: &str) {
        let result: Value =
            serde_json::from_str(&self.body).unwrap_or_else(|error| panic!("the body is not JSON ({error}): {self}"));
        assert!(
            result.get(key).is_none(),
            "the execution result has a property \"{key}\": {self}"
        );
    }
}

/// Sends one request to `/graphql` on a fresh server, with `params` in the
/// URL, and `accept`, `content_type` and `body` only when given. Like
/// `fetch` under Node, which graphql-http uses, reqwest sends
/// `Accept: */*` when a request sets none. The body is decoded strictly,
/// so every audit also checks 82A3 (graphql-http's own 82A3 decodes with a
/// lenient `TextDecoder`, which never fails).
async fn send(
    method: Method,
    params: &[(&str, &str)],
    accept: Option<&str>,
    content_type: Option<&str>,
    body: Option<String>,
) -> Reply {
    let server = TestServer::start().await;
    let mut url = server.url("/graphql");
    if !params.is_empty() {
        url = format!("{url}?{}", form_urlencoded(params));
    }
    let mut request = server.client.request(method, url).bearer_auth(&server.tokens[WHO]);
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default();
    let bytes = response.bytes().await.expect("a body");
    let body = String::from_utf8(bytes.to_vec())
        .unwrap_or_else(|_| panic!("82A3 MUST use utf-8 encoding when responding: the {status} body is not UTF-8"));
    Reply {
        status,
        content_type,
        body,
    }
}

/// The audits' usual request: a POST of `body` as `application/json`.
async fn post(accept: Option<&str>, body: &Value) -> Reply {
    send(Method::POST, &[], accept, Some(JSON), Some(body.to_string())).await
}

/// A GET with `params` in the URL, as `url.searchParams.set` puts them.
async fn get(accept: Option<&str>, params: &[(&str, &str)]) -> Reply {
    send(Method::GET, params, accept, None, None).await
}

/// `{ "query": "{ __typename }" }`, the audits' trivial request.
fn typename() -> Value {
    json!({ "query": TYPENAME })
}

/// `params` as `URLSearchParams` writes them (the
/// application/x-www-form-urlencoded serializer): every byte but `*-._`,
/// digits and letters is percent-encoded, and a space is `+`.
fn form_urlencoded(params: &[(&str, &str)]) -> String {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|byte| match byte {
                b'*' | b'-' | b'.' | b'_' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' => char::from(byte).to_string(),
                b' ' => "+".to_owned(),
                _ => format!("%{byte:02X}"),
            })
            .collect()
    };
    params
        .iter()
        .map(|&(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The LKJ, 6C0, 476 and 58B audits: `parameter` set to a value of the
/// wrong type (beside the trivial query, unless it is the query).
async fn a_wrong_type_is_a_400(parameter: &str, invalid: Value) {
    let mut body = typename();
    body[parameter] = invalid;
    post(None, &body).await.status_is(400);
}

/// The 94B and 022 audits: `parameter` set to null beside the trivial query.
async fn null_is_allowed(parameter: &str, accept: &str) {
    let mut body = typename();
    body[parameter] = Value::Null;
    let reply = post(Some(accept), &body).await;
    reply.status_is(200);
    reply.lacks("errors");
}

// Media types

/// 22EB: SHOULD accept application/graphql-response+json and match the content-type
#[tokio::test]
async fn graphql_response_json_is_accepted_and_answered_in_kind_22eb() {
    let reply = post(Some(GRAPHQL_RESPONSE_JSON), &typename()).await;
    reply.status_is(200);
    reply.content_type_contains(GRAPHQL_RESPONSE_JSON);
}

/// 4655: MUST accept application/json and match the content-type
#[tokio::test]
async fn application_json_is_accepted_and_answered_in_kind_4655() {
    let reply = post(Some(JSON), &typename()).await;
    reply.status_is(200);
    reply.content_type_contains(JSON);
}

/// 47DE: SHOULD accept */* and use application/json for the content-type
#[tokio::test]
async fn any_media_type_is_accepted_and_answered_in_application_json_47de() {
    let reply = post(Some("*/*"), &typename()).await;
    reply.status_is(200);
    reply.content_type_contains(JSON);
}

/// 80D8: SHOULD assume application/json content-type when accept is missing
/// (the header reqwest then sends, `*/*`, is also what `fetch` sends)
#[tokio::test]
async fn a_request_accepting_nothing_in_particular_is_answered_in_application_json_80d8() {
    let reply = post(None, &typename()).await;
    reply.status_is(200);
    reply.content_type_contains(JSON);
}

/// 82A3: MUST use utf-8 encoding when responding (`send` decodes strictly)
#[tokio::test]
async fn responses_are_utf8_82a3() {
    post(None, &typename()).await.status_is(200);
}

/// BF61: MUST accept utf-8 encoded request
#[tokio::test]
async fn a_request_in_utf8_is_accepted_bf61() {
    let body = json!({ "query": "{ __type(name: \"Run🏃Swim🏊\") { name } }" });
    let reply = send(
        Method::POST,
        &[],
        None,
        Some("application/json; charset=utf-8"),
        Some(body.to_string()),
    )
    .await;
    reply.status_is(200);
}

/// 78D5: MUST assume utf-8 in request if encoding is unspecified
#[tokio::test]
async fn a_request_without_a_charset_is_read_as_utf8_78d5() {
    post(None, &typename()).await.status_is(200);
}

// Requests

/// 2C94: MUST accept POST requests
#[tokio::test]
async fn post_requests_are_accepted_2c94() {
    post(None, &typename()).await.status_is(200);
}

/// 5A70: MAY accept application/x-www-form-urlencoded formatted GET requests
#[tokio::test]
async fn a_get_with_the_query_in_the_url_is_accepted_5a70() {
    get(None, &[("query", TYPENAME)]).await.status_is(200);
}

/// 9C48: MAY NOT allow executing mutations on GET requests
#[tokio::test]
async fn a_mutation_sent_with_get_is_refused_with_a_4xx_9c48() {
    get(Some(GRAPHQL_RESPONSE_JSON), &[("query", "mutation { __typename }")])
        .await
        .status_between(400, 499);
}

/// 9ABE: SHOULD respond with 4xx status code if content-type is not supplied on POST requests
#[tokio::test]
async fn a_post_without_a_content_type_is_refused_with_a_4xx_9abe() {
    send(Method::POST, &[], None, None, Some(typename().to_string()))
        .await
        .status_between(400, 499);
}

/// 03D4: MUST accept application/json POST requests
#[tokio::test]
async fn application_json_posts_are_accepted_03d4() {
    post(None, &typename()).await.status_is(200);
}

/// A5BF: MAY use 400 status code when request body is missing on POST
#[tokio::test]
async fn a_post_without_a_body_is_a_400_a5bf() {
    send(Method::POST, &[], None, Some(JSON), None).await.status_is(400);
}

// Request parameters

/// 423L: MAY use 400 status code on missing {query} parameter
#[tokio::test]
async fn a_request_without_a_query_is_a_400_423l() {
    post(Some(GRAPHQL_RESPONSE_JSON), &json!({ "notquery": TYPENAME }))
        .await
        .status_is(400);
}

/// LKJ0: MAY use 400 status code on object {query} parameter
#[tokio::test]
async fn an_object_query_is_a_400_lkj0() {
    a_wrong_type_is_a_400("query", json!({ "obj": "ect" })).await;
}

/// LKJ1: MAY use 400 status code on number {query} parameter
#[tokio::test]
async fn a_number_query_is_a_400_lkj1() {
    a_wrong_type_is_a_400("query", json!(0)).await;
}

/// LKJ2: MAY use 400 status code on boolean {query} parameter
#[tokio::test]
async fn a_boolean_query_is_a_400_lkj2() {
    a_wrong_type_is_a_400("query", json!(false)).await;
}

/// LKJ3: MAY use 400 status code on array {query} parameter
#[tokio::test]
async fn an_array_query_is_a_400_lkj3() {
    a_wrong_type_is_a_400("query", json!(["array"])).await;
}

/// 34A2: SHOULD allow string {query} parameter when accepting application/graphql-response+json
#[tokio::test]
async fn a_string_query_is_allowed_accepting_graphql_response_json_34a2() {
    post(Some(GRAPHQL_RESPONSE_JSON), &typename()).await.status_is(200);
}

/// 13EE: MUST allow string {query} parameter when accepting application/json
#[tokio::test]
async fn a_string_query_is_allowed_accepting_json_13ee() {
    let reply = post(Some(JSON), &typename()).await;
    reply.status_is(200);
    reply.lacks("errors");
}

/// 6C00: MAY use 400 status code on object {operationName} parameter
#[tokio::test]
async fn an_object_operation_name_is_a_400_6c00() {
    a_wrong_type_is_a_400("operationName", json!({ "obj": "ect" })).await;
}

/// 6C01: MAY use 400 status code on number {operationName} parameter
#[tokio::test]
async fn a_number_operation_name_is_a_400_6c01() {
    a_wrong_type_is_a_400("operationName", json!(0)).await;
}

/// 6C02: MAY use 400 status code on boolean {operationName} parameter
#[tokio::test]
async fn a_boolean_operation_name_is_a_400_6c02() {
    a_wrong_type_is_a_400("operationName", json!(false)).await;
}

/// 6C03: MAY use 400 status code on array {operationName} parameter
#[tokio::test]
async fn an_array_operation_name_is_a_400_6c03() {
    a_wrong_type_is_a_400("operationName", json!(["array"])).await;
}

/// 8161: SHOULD allow string {operationName} parameter when accepting application/graphql-response+json
#[tokio::test]
async fn a_string_operation_name_is_allowed_accepting_graphql_response_json_8161() {
    let body = json!({ "operationName": "Query", "query": "query Query { __typename }" });
    post(Some(GRAPHQL_RESPONSE_JSON), &body).await.status_is(200);
}

/// B8B3: MUST allow string {operationName} parameter when accepting application/json
#[tokio::test]
async fn a_string_operation_name_is_allowed_accepting_json_b8b3() {
    let body = json!({ "operationName": "Query", "query": "query Query { __typename }" });
    let reply = post(Some(JSON), &body).await;
    reply.status_is(200);
    reply.lacks("errors");
}

/// 94B0: SHOULD allow null {variables} parameter when accepting application/graphql-response+json
#[tokio::test]
async fn null_variables_are_allowed_accepting_graphql_response_json_94b0() {
    null_is_allowed("variables", GRAPHQL_RESPONSE_JSON).await;
}

/// 0220: MUST allow null {variables} parameter when accepting application/json
#[tokio::test]
async fn null_variables_are_allowed_accepting_json_0220() {
    null_is_allowed("variables", JSON).await;
}

/// 94B1: SHOULD allow null {operationName} parameter when accepting application/graphql-response+json
#[tokio::test]
async fn a_null_operation_name_is_allowed_accepting_graphql_response_json_94b1() {
    null_is_allowed("operationName", GRAPHQL_RESPONSE_JSON).await;
}

/// 0221: MUST allow null {operationName} parameter when accepting application/json
#[tokio::test]
async fn a_null_operation_name_is_allowed_accepting_json_0221() {
    null_is_allowed("operationName", JSON).await;
}

/// 94B2: SHOULD allow null {extensions} parameter when accepting application/graphql-response+json
#[tokio::test]
async fn null_extensions_are_allowed_accepting_graphql_response_json_94b2() {
    null_is_allowed("extensions", GRAPHQL_RESPONSE_JSON).await;
}

/// 0222: MUST allow null {extensions} parameter when accepting application/json
#[tokio::test]
async fn null_extensions_are_allowed_accepting_json_0222() {
    null_is_allowed("extensions", JSON).await;
}

/// 4760: MAY use 400 status code on string {variables} parameter
#[tokio::test]
async fn string_variables_are_a_400_4760() {
    a_wrong_type_is_a_400("variables", json!("string")).await;
}

/// 4761: MAY use 400 status code on number {variables} parameter
#[tokio::test]
async fn number_variables_are_a_400_4761() {
    a_wrong_type_is_a_400("variables", json!(0)).await;
}

/// 4762: MAY use 400 status code on boolean {variables} parameter
#[tokio::test]
async fn boolean_variables_are_a_400_4762() {
    a_wrong_type_is_a_400("variables", json!(false)).await;
}

/// 4763: MAY use 400 status code on array {variables} parameter
#[tokio::test]
async fn array_variables_are_a_400_4763() {
    a_wrong_type_is_a_400("variables", json!(["array"])).await;
}

/// 2EA1: SHOULD allow map {variables} parameter when accepting application/graphql-response+json
#[tokio::test]
async fn map_variables_are_allowed_accepting_graphql_response_json_2ea1() {
    let body = json!({ "query": TYPE_BY_NAME, "variables": { "name": "sometype" } });
    post(Some(GRAPHQL_RESPONSE_JSON), &body).await.status_is(200);
}

/// 28B9: MUST allow map {variables} parameter when accepting application/json
#[tokio::test]
async fn map_variables_are_allowed_accepting_json_28b9() {
    let body = json!({ "query": TYPE_BY_NAME, "variables": { "name": "sometype" } });
    let reply = post(Some(JSON), &body).await;
    reply.status_is(200);
    reply.lacks("errors");
}

/// The D6D5 and 6A70 audits: a GET with variables as URL-encoded JSON.
async fn url_encoded_variables_are_allowed(accept: &str) {
    let variables = json!({ "name": "sometype" }).to_string();
    let reply = get(
        Some(accept),
        &[("query", TYPE_BY_NAME), ("variables", variables.as_str())],
    )
    .await;
    reply.status_is(200);
    reply.lacks("errors");
}

/// D6D5: MAY allow URL-encoded JSON string {variables} parameter in GETs when accepting application/graphql-response+json
#[tokio::test]
async fn url_encoded_json_variables_are_allowed_in_a_get_accepting_graphql_response_json_d6d5() {
    url_encoded_variables_are_allowed(GRAPHQL_RESPONSE_JSON).await;
}

/// 6A70: MAY allow URL-encoded JSON string {variables} parameter in GETs when accepting application/json
#[tokio::test]
async fn url_encoded_json_variables_are_allowed_in_a_get_accepting_json_6a70() {
    url_encoded_variables_are_allowed(JSON).await;
}

/// 58B0: MAY use 400 status code on string {extensions} parameter
#[tokio::test]
async fn string_extensions_are_a_400_58b0() {
    a_wrong_type_is_a_400("extensions", json!("string")).await;
}

/// 58B1: MAY use 400 status code on number {extensions} parameter
#[tokio::test]
async fn number_extensions_are_a_400_58b1() {
    a_wrong_type_is_a_400("extensions", json!(0)).await;
}

/// 58B2: MAY use 400 status code on boolean {extensions} parameter
#[tokio::test]
async fn boolean_extensions_are_a_400_58b2() {
    a_wrong_type_is_a_400("extensions", json!(false)).await;
}

/// 58B3: MAY use 400 status code on array {extensions} parameter
#[tokio::test]
async fn array_extensions_are_a_400_58b3() {
    a_wrong_type_is_a_400("extensions", json!(["array"])).await;
}

/// 428F: SHOULD allow map {extensions} parameter when accepting application/graphql-response+json
#[tokio::test]
async fn map_extensions_are_allowed_accepting_graphql_response_json_428f() {
    let body = json!({ "query": TYPENAME, "extensions": { "some": "value" } });
    post(Some(GRAPHQL_RESPONSE_JSON), &body).await.status_is(200);
}

/// 1B7A: MUST allow map {extensions} parameter when accepting application/json
#[tokio::test]
async fn map_extensions_are_allowed_accepting_json_1b7a() {
    let body = json!({ "query": TYPENAME, "extensions": { "some": "value" } });
    let reply = post(Some(JSON), &body).await;
    reply.status_is(200);
    reply.lacks("errors");
}

/// A POST whose body is not JSON, accepting `accept`.
async fn post_not_json(accept: &str) -> Reply {
    send(Method::POST, &[], Some(accept), Some(JSON), Some(NOT_JSON.to_owned())).await
}

/// B6DC: MAY use 2xx, 4xx, or 5xx status codes on JSON parsing failure when accepting application/json
#[tokio::test]
async fn a_body_that_is_not_json_gets_a_2xx_4xx_or_5xx_accepting_json_b6dc() {
    let reply = post_not_json(JSON).await;
    assert!(
        reply.status.is_success() || reply.status.is_client_error() || reply.status.is_server_error(),
        "the response status is not between any of [200, 299], [400, 499], [500, 599]: {reply}"
    );
}

/// BCF8: SHOULD use 400 status code on JSON parsing failure when accepting application/json
#[tokio::test]
async fn a_body_that_is_not_json_is_a_400_accepting_json_bcf8() {
    post_not_json(JSON).await.status_is(400);
}

/// B7N8: SHOULD use 400 status code on JSON parsing failure when accepting application/graphql-response+json
#[tokio::test]
async fn a_body_that_is_not_json_is_a_400_accepting_graphql_response_json_b7n8() {
    post_not_json(GRAPHQL_RESPONSE_JSON).await.status_is(400);
}

/// 8764: MAY use 4xx or 5xx status codes if parameters are invalid
#[tokio::test]
async fn a_misspelt_query_parameter_is_a_4xx_or_5xx_8764() {
    post(None, &json!({ "qeury": TYPENAME })).await.status_between(400, 599);
}

/// 3E3A: MAY use 400 status code if parameters are invalid
#[tokio::test]
async fn a_misspelt_query_parameter_is_a_400_3e3a() {
    post(None, &json!({ "qeury": TYPENAME })).await.status_is(400);
}

// Responses in application/json

/// 572B: SHOULD use 200 status code on document parsing failure when accepting application/json
#[tokio::test]
async fn a_document_that_does_not_parse_is_a_200_accepting_json_572b() {
    post(Some(JSON), &json!({ "query": UNPARSABLE })).await.status_is(200);
}

/// FDE2: SHOULD use 200 status code on document validation failure when accepting application/json
#[tokio::test]
async fn a_document_that_does_not_validate_is_a_200_accepting_json_fde2() {
    post(Some(JSON), &json!({ "query": NO_SUCH_FIELD }))
        .await
        .status_is(200);
}

/// The 7B9B and 86EE audits: a null for a non-null variable.
async fn post_uncoercible_variables(accept: &str) -> Reply {
    let body = json!({ "query": "query CoerceFailure($id: ID!){ __typename }", "variables": { "id": null } });
    post(Some(accept), &body).await
}

/// 7B9B: SHOULD use a status code of 200 on variable coercion failure when accepting application/json
#[tokio::test]
async fn variables_that_do_not_coerce_are_a_200_accepting_json_7b9b() {
    post_uncoercible_variables(JSON).await.status_is(200);
}

// Responses in application/graphql-response+json

/// 865D: SHOULD use 4xx or 5xx status codes on document parsing failure when accepting application/graphql-response+json
#[tokio::test]
async fn a_document_that_does_not_parse_is_a_4xx_or_5xx_accepting_graphql_response_json_865d() {
    post(Some(GRAPHQL_RESPONSE_JSON), &json!({ "query": UNPARSABLE }))
        .await
        .status_between(400, 599);
}

/// 556A: SHOULD use 400 status code on document parsing failure when accepting application/graphql-response+json
#[tokio::test]
async fn a_document_that_does_not_parse_is_a_400_accepting_graphql_response_json_556a() {
    post(Some(GRAPHQL_RESPONSE_JSON), &json!({ "query": UNPARSABLE }))
        .await
        .status_is(400);
}

/// D586: SHOULD not contain the data entry on document parsing failure when accepting application/graphql-response+json
#[tokio::test]
async fn a_document_that_does_not_parse_has_no_data_entry_accepting_graphql_response_json_d586() {
    post(Some(GRAPHQL_RESPONSE_JSON), &json!({ "query": UNPARSABLE }))
        .await
        .lacks("data");
}

/// 51FE: SHOULD use 4xx or 5xx status codes on document validation failure when accepting application/graphql-response+json
#[tokio::test]
async fn a_document_that_does_not_validate_is_a_4xx_or_5xx_accepting_graphql_response_json_51fe() {
    post(Some(GRAPHQL_RESPONSE_JSON), &json!({ "query": NO_SUCH_FIELD }))
        .await
        .status_between(400, 599);
}

/// 74FF: SHOULD use 400 status code on document validation failure when accepting application/graphql-response+json
#[tokio::test]
async fn a_document_that_does_not_validate_is_a_400_accepting_graphql_response_json_74ff() {
    post(Some(GRAPHQL_RESPONSE_JSON), &json!({ "query": NO_SUCH_FIELD }))
        .await
        .status_is(400);
}

/// 5E5B: SHOULD not contain the data entry on document validation failure when accepting application/graphql-response+json
#[tokio::test]
async fn a_document_that_does_not_validate_has_no_data_entry_accepting_graphql_response_json_5e5b() {
    post(Some(GRAPHQL_RESPONSE_JSON), &json!({ "query": NO_SUCH_FIELD }))
        .await
        .lacks("data");
}

/// 86EE: SHOULD use a status code of 400 on variable coercion failure when accepting application/graphql-response+json
#[tokio::test]
async fn variables_that_do_not_coerce_are_a_400_accepting_graphql_response_json_86ee() {
    post_uncoercible_variables(GRAPHQL_RESPONSE_JSON).await.status_is(400);
}
