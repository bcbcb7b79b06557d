//! A browser-like client of the key console's router: it keeps the session cookie,
//! reads the form token from pages, and posts forms.

use axum::body::Body;
use axum::Router;
use http::{header, Request, Response, StatusCode};
use http_body_util::BodyExt;
use keygate::console::{Console, SessionGrant};
use tower::ServiceExt;

/// A response, its body read.
pub struct Page {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn location(&self) -> &str {
        self.header("location").expect("a redirect")
    }

    /// The form token the page's forms carry.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form token on the page");
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    /// The secret shown on the page, if any.
    pub fn secret(&self) -> Option<String> {
        let at = self.body.find("id=\"secret\"")?;
        let rest = &self.body[at..];
        let start = rest.find('>')? + 1;
        let end = rest.find("</output>")?;
        Some(rest[start..end].to_owned())
    }
}

/// One browser on the console.
pub struct ConsoleClient {
    pub app: Router,
    pub cookie: Option<String>,
}

impl ConsoleClient {
    /// The console's router mounted at `/console`, not signed in.
    pub fn new(console: &Console) -> Self {
        Self {
            app: Router::new().nest("/console", console.router()),
            cookie: None,
        }
    }

    /// A client signed in through a fresh session for `grant`.
    pub async fn signed_in(console: &Console, grant: SessionGrant) -> Self {
        let mut client = Self::new(console);
        let link = console.session(grant);
        let page = client.get(link.expose_path()).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        client
    }

    pub async fn send(&mut self, req: Request<Body>) -> Page {
        let res: Response<Body> = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        if let Some(set) = headers.get(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let value = set.split(';').next().unwrap().to_owned();
            self.cookie = (!value.ends_with('=')).then_some(value);
        }
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    fn with_cookie(&self, b: http::request::Builder) -> http::request::Builder {
        match &self.cookie {
            Some(c) => b.header(header::COOKIE, c),
            None => b,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self
            .with_cookie(Request::get(path))
            .body(Body::empty())
            .unwrap();
        self.send(req).await
    }

    /// Posts `fields` as a form, exactly as given (no form token added).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let req = self
            .with_cookie(Request::post(path))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.send(req).await
    }

    /// Posts `fields` with the form token read from `from` (a page path).
    pub async fn post(&mut self, from: &str, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.get(from).await.csrf();
        let mut all = vec![("csrf", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }
}
