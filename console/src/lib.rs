//! The management console behind `hvcert serve`: one process serving a JSON API and
//! server-rendered web pages over a SQLite store of hosts, runs (imported `hvcert.report/v1`
//! reports with their cases) and VMs (run as `hvcert run` child processes).
//!
//! Layout: [`migrations`], [`store`], [`store_certify`], [`store_imports`] (the database),
//! [`imports`] (reports, probe documents, fleet reports, packages and report folders in),
//! [`backend`] (what the certify crate provides) and [`certruns`] (certify runs in a worker
//! thread), [`vms`] (VM requests, limits and processes), [`http`] (the server: binding
//! rules, token, body limits; [`tls`] in front of it), [`api`] and [`api_lists`] (JSON routes), [`pages`] and
//! [`pages_certify`], [`pages_imports`] (HTML), [`sse`] (the live console stream). The API is documented in
//! docs/console-api.md and, as OpenAPI, in console/openapi.json (served at
//! `/api/openapi.json`; a test checks real answers against it).
pub mod api;
pub mod api_lists;
pub mod backend;
pub mod certruns;
pub mod http;
pub mod imports;
pub mod migrations;
pub mod pages;
pub mod pages_certify;
pub mod pages_imports;
pub mod sse;
pub mod store;
pub mod store_certify;
pub mod store_imports;
pub mod tls;
pub mod vms;

pub use http::{Config, Server};

/// An error answer: an HTTP status and the reason, sent as `{"error": reason}` (API) or
/// a short page (HTML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code (4xx: the request's fault, 5xx: the server's).
    pub status: u16,
    /// What was wrong, for a person.
    pub message: String,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// A 500 from an internal error.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::new(500, e.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}
