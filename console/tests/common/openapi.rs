//! Checks the server's real answers against the hand-kept console/openapi.json: the
//! response schema of the documented path, method and status, with the subset of the
//! schema language the document uses ($ref, type, nullable, properties, required,
//! additionalProperties, items, enum). Records which operations were checked, so a test
//! can require that every documented one was. Shared with tests/e2e/serve_api.rs.
#![allow(dead_code)]
use std::collections::BTreeSet;
use std::sync::Mutex;

use serde_json::Value;

/// The document and the operations checked so far.
pub struct OpenApi {
    doc: Value,
    seen: Mutex<BTreeSet<(String, String)>>,
}

impl OpenApi {
    /// The document as the server serves it (`GET /api/openapi.json`).
    pub fn new(doc: Value) -> OpenApi {
        OpenApi {
            doc,
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    /// The documented path template `path` (query removed) matches, if any.
    pub fn template(&self, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or(path);
        let want: Vec<&str> = path.split('/').collect();
        self.doc["paths"].as_object()?.keys().find_map(|t| {
            let parts: Vec<&str> = t.split('/').collect();
            let same = parts.len() == want.len()
                && parts
                    .iter()
                    .zip(&want)
                    .all(|(p, w)| p == w || (p.starts_with('{') && !w.is_empty()));
            same.then(|| t.clone())
        })
    }

    /// Checks one answer; panics with the reason when it does not match the document.
    pub fn check(&self, method: &str, path: &str, status: u16, body: &[u8]) {
        if let Err(e) = self.try_check(method, path, status, body) {
            panic!(
                "{method} {path} -> {status} does not match console/openapi.json: {e}\n{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// [`OpenApi::check`] as a result (tests of the checker itself).
    pub fn try_check(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &[u8],
    ) -> Result<(), String> {
        let t = self
            .template(path)
            .ok_or_else(|| format!("path {path} is not documented"))?;
        let m = method.to_ascii_lowercase();
        let op = &self.doc["paths"][&t][&m];
        if op.is_null() {
            return Err(format!("{method} {t} is not documented"));
        }
        let resp = &op["responses"][status.to_string()];
        if resp.is_null() {
            return Err(format!("status {status} of {method} {t} is not documented"));
        }
        self.seen.lock().unwrap().insert((m, t));
        let Some(schema) = resp["content"]["application/json"].get("schema") else {
            return Ok(()); // not JSON (event stream, archive)
        };
        let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        self.validate(schema, &v, "$")
    }

    /// Every documented operation not checked yet.
    pub fn unchecked(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        let mut out = Vec::new();
        for (t, ops) in self.doc["paths"].as_object().unwrap() {
            for m in ops.as_object().unwrap().keys() {
                if !seen.contains(&(m.clone(), t.clone())) {
                    out.push(format!("{} {t}", m.to_ascii_uppercase()));
                }
            }
        }
        out
    }

    fn resolve<'a>(&'a self, s: &'a Value) -> &'a Value {
        match s.get("$ref").and_then(|r| r.as_str()) {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap();
                &self.doc["components"]["schemas"][name]
            }
            None => s,
        }
    }

    /// `v` against `schema`; the error names where (`$.items[0].id`).
    pub fn validate(&self, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
        let s = self.resolve(schema);
        if s.is_null() {
            return Err(format!("{at}: dangling $ref {schema}"));
        }
        if v.is_null() && s["nullable"] == true {
            return Ok(());
        }
        let ty = s.get("type").and_then(|t| t.as_str());
        let ok = match ty {
            None => true,
            Some("object") => v.is_object(),
            Some("array") => v.is_array(),
            Some("string") => v.is_string(),
            Some("integer") => v.is_i64() || v.is_u64(),
            Some("number") => v.is_number(),
            Some("boolean") => v.is_boolean(),
            Some(other) => return Err(format!("{at}: unknown type {other} in the document")),
        };
        if !ok {
            return Err(format!("{at}: {v} is not of type {}", ty.unwrap_or("?")));
        }
        if let Some(e) = s.get("enum").and_then(|e| e.as_array()) {
            if !e.contains(v) {
                return Err(format!("{at}: {v} is not one of {e:?}"));
            }
        }
        if let Some(items) = s.get("items") {
            for (i, x) in v.as_array().into_iter().flatten().enumerate() {
                self.validate(items, x, &format!("{at}[{i}]"))?;
            }
        }
        if let Some(o) = v.as_object().filter(|_| ty == Some("object")) {
            let props = s.get("properties").and_then(|p| p.as_object());
            for r in s["required"].as_array().into_iter().flatten() {
                let r = r.as_str().unwrap();
                if !o.contains_key(r) {
                    return Err(format!("{at}: required field {r} is missing"));
                }
            }
            for (k, x) in o {
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => self.validate(ps, x, &format!("{at}.{k}"))?,
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            return Err(format!("{at}: field {k} is not documented"))
                        }
                        Some(extra @ Value::Object(_)) => {
                            self.validate(extra, x, &format!("{at}.{k}"))?
                        }
                        _ => {}
                    },
                }
            }
        }
        Ok(())
    }
}
