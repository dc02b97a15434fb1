//! A browser of the portal, for tests through the router: it keeps cookies, follows
//! nothing by itself, and reads pages as text.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::TestApp;

/// A browser of the portal: keeps cookies, follows nothing by itself.
pub struct Visitor<'a> {
    app: &'a TestApp,
    pub cookies: HashMap<String, String>,
    /// The client address a reverse proxy would forward.
    pub address: Option<&'static str>,
}

#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub content_type: String,
    pub text: String,
}

impl Page {
    /// The page, once it is known to be a `200 OK` (otherwise the test fails, showing
    /// the page).
    #[track_caller]
    pub fn assert_ok(self) -> Self {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        self
    }

    /// The text from the first `start` on (included) up to `end` (excluded).
    pub fn from(&self, start: &str, end: char) -> String {
        let at = self
            .text
            .find(start)
            .unwrap_or_else(|| panic!("no {start:?} on the page:\n{}", self.text));
        let rest = &self.text[at..];
        let stop = rest[start.len()..]
            .find(end)
            .map_or(rest.len(), |i| start.len() + i);
        rest[..stop].to_owned()
    }

    /// The text after the first `start` up to `end`.
    pub fn after(&self, start: &str, end: char) -> String {
        self.from(start, end)[start.len()..].to_owned()
    }

    /// The value of the first hidden `csrf` input.
    pub fn csrf(&self) -> String {
        self.after(r#"name="csrf" value=""#, '"')
    }

    pub fn assert_contains(&self, text: &str) {
        assert!(
            self.text.contains(text),
            "{text:?} is not on the page ({}):\n{}",
            self.status,
            self.text
        );
    }
}

impl<'a> Visitor<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: HashMap::new(),
            address: None,
        }
    }

    /// A visitor coming from `address` (through a proxy that says so).
    pub fn from(app: &'a TestApp, address: &'static str) -> Self {
        Self {
            address: Some(address),
            ..Self::new(app)
        }
    }

    pub async fn send(&mut self, request: axum::http::request::Builder, body: Body) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = if cookie.is_empty() {
            request
        } else {
            request.header(header::COOKIE, cookie)
        };
        let request = match self.address {
            Some(address) => request.header("x-forwarded-for", address),
            None => request,
        };
        let response = self
            .app
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        for value in response.headers().get_all(header::SET_COOKIE) {
            let value = value.to_str().unwrap();
            let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
            assert!(attributes.contains("HttpOnly"), "{value}");
            assert!(attributes.contains("SameSite=Lax"), "{value}");
            let (name, content) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), content.to_owned());
            }
        }
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            location,
            content_type,
            text: String::from_utf8(bytes.to_vec()).unwrap(),
        }
    }

    pub async fn get(&mut self, uri: &str) -> Page {
        self.send(Request::builder().uri(uri), Body::empty()).await
    }

    pub async fn post_form(&mut self, uri: &str, fields: &[(&str, &str)]) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(
            Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded"),
            Body::from(body),
        )
        .await
    }

    /// Posts the upload form: `fields` in order, then the file.
    pub async fn upload(&mut self, fields: &[(&str, &str)], file_name: &str, file: &str) -> Page {
        let boundary = "gridroll-test-boundary";
        let mut body = String::new();
        for (name, value) in fields {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: text/csv\r\n\r\n{file}\r\n--{boundary}--\r\n"
        ));
        self.send(
            Request::builder()
                .method(Method::POST)
                .uri("/portal/upload")
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                ),
            Body::from(body),
        )
        .await
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/portal/sign-in").await;
        let csrf = form.csrf();
        self.post_form(
            "/portal/sign-in",
            &[
                ("csrf", &csrf),
                ("email", email),
                ("password", password),
                ("next", "/portal"),
            ],
        )
        .await
    }

    /// The CSRF token of the signed-in session, as its pages carry it.
    pub async fn csrf(&mut self) -> String {
        self.get("/portal").await.csrf()
    }
}
