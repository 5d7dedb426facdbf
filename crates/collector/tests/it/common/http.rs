//! The tests' HTTP client: reqwest's blocking client, whose every answer is
//! read whole and checked against the OpenAPI document
//! ([`super::openapi::assert_documented`]) before the test sees it. It has
//! the methods of reqwest's that the tests use, with the same signatures.

use std::convert::Infallible;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::openapi;

#[derive(Clone, Debug, Default)]
pub struct Client(reqwest::blocking::Client);

impl Client {
    pub fn new() -> Client {
        Client(reqwest::blocking::Client::new())
    }

    pub fn builder() -> ClientBuilder {
        ClientBuilder(reqwest::blocking::Client::builder())
    }

    pub fn get(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        RequestBuilder(self.0.get(url))
    }

    pub fn post(&self, url: impl reqwest::IntoUrl) -> RequestBuilder {
        RequestBuilder(self.0.post(url))
    }

    pub fn request(&self, method: Method, url: impl reqwest::IntoUrl) -> RequestBuilder {
        RequestBuilder(self.0.request(method, url))
    }
}

/// `reqwest::blocking::get`, checked.
pub fn get(url: impl reqwest::IntoUrl) -> reqwest::Result<Response> {
    Client::new().get(url).send()
}

pub struct ClientBuilder(reqwest::blocking::ClientBuilder);

impl ClientBuilder {
    pub fn user_agent(self, value: &str) -> ClientBuilder {
        ClientBuilder(self.0.user_agent(value.to_owned()))
    }

    pub fn timeout(self, timeout: Duration) -> ClientBuilder {
        ClientBuilder(self.0.timeout(timeout))
    }

    pub fn redirect(self, policy: reqwest::redirect::Policy) -> ClientBuilder {
        ClientBuilder(self.0.redirect(policy))
    }

    pub fn pool_max_idle_per_host(self, max: usize) -> ClientBuilder {
        ClientBuilder(self.0.pool_max_idle_per_host(max))
    }

    pub fn build(self) -> reqwest::Result<Client> {
        self.0.build().map(Client)
    }
}

pub struct RequestBuilder(reqwest::blocking::RequestBuilder);

impl RequestBuilder {
    pub fn header<K, V>(self, key: K, value: V) -> RequestBuilder
    where
        HeaderName: TryFrom<K>,
        <HeaderName as TryFrom<K>>::Error: Into<http::Error>,
        HeaderValue: TryFrom<V>,
        <HeaderValue as TryFrom<V>>::Error: Into<http::Error>,
    {
        RequestBuilder(self.0.header(key, value))
    }

    pub fn headers(self, headers: HeaderMap) -> RequestBuilder {
        RequestBuilder(self.0.headers(headers))
    }

    pub fn body(self, body: impl Into<reqwest::blocking::Body>) -> RequestBuilder {
        RequestBuilder(self.0.body(body))
    }

    pub fn json<T: Serialize + ?Sized>(self, json: &T) -> RequestBuilder {
        RequestBuilder(self.0.json(json))
    }

    pub fn bearer_auth(self, token: impl std::fmt::Display) -> RequestBuilder {
        RequestBuilder(self.0.bearer_auth(token))
    }

    pub fn timeout(self, timeout: Duration) -> RequestBuilder {
        RequestBuilder(self.0.timeout(timeout))
    }

    /// Sends the request and reads the whole answer, then checks it against
    /// the document (a mismatch panics: the test fails).
    pub fn send(self) -> reqwest::Result<Response> {
        let (client, request) = self.0.build_split();
        let request = request?;
        let method = request.method().clone();
        let answer = client.execute(request)?;
        let (status, headers, url) = (answer.status(), answer.headers().clone(), answer.url().clone());
        let body = answer.bytes()?.to_vec();
        let content_type = headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        openapi::assert_documented(method.as_str(), url.path(), status.as_u16(), content_type, &body);
        Ok(Response { status, headers, url, body })
    }
}

/// An answer, read whole.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    url: Url,
    body: Vec<u8>,
}

impl Response {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The body as text (lossily, as reqwest decodes it).
    pub fn text(self) -> Result<String, Infallible> {
        Ok(String::from_utf8_lossy(&self.body).into_owned())
    }

    pub fn json<T: DeserializeOwned>(self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.body)
    }

    pub fn bytes(self) -> Result<Vec<u8>, Infallible> {
        Ok(self.body)
    }
}
