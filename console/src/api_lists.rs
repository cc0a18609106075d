//! Paged lists: `?limit=N&offset=M` on every list route, answered as one envelope
//! `{"items": [...], "total", "limit", "offset", "next"}` where `next` is the path of the
//! following page (absent on the last).
use serde::Serialize;

use crate::http::Req;
use crate::store::Page;
use crate::ApiError;

/// Items a list returns when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// Most items a list returns (a larger `limit` is a 400).
pub const MAX_LIMIT: usize = 500;
/// Largest `offset` accepted.
pub const MAX_OFFSET: usize = 1 << 40;

/// One page of a list.
#[derive(Debug, Serialize)]
pub struct List<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Items in the whole list.
    pub total: i64,
    /// The page size asked for.
    pub limit: usize,
    /// Items skipped before this page.
    pub offset: usize,
    /// Path of the next page, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

fn number(req: &Req, name: &str, default: usize, max: usize) -> Result<usize, ApiError> {
    match req.param(name) {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(ApiError::new(
                400,
                format!("{name}={v:?}: a whole number up to {max}"),
            )),
        },
    }
}

/// The page a request asks for (`limit` 1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`];
/// `offset` default 0).
pub fn page(req: &Req) -> Result<Page, ApiError> {
    let limit = number(req, "limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    if limit == 0 {
        return Err(ApiError::new(400, "limit=0: at least 1"));
    }
    Ok(Page {
        limit,
        offset: number(req, "offset", 0, MAX_OFFSET)?,
    })
}

/// The envelope for `items`, page `page` of `total`, with the next page's path (the
/// request's other parameters kept).
pub fn list<T>(req: &Req, page: Page, total: i64, items: Vec<T>) -> List<T> {
    let end = page.offset.saturating_add(items.len());
    let next = (!items.is_empty() && (end as i64) < total).then(|| {
        let mut q: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| k != "limit" && k != "offset")
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        q.push(format!("limit={}", page.limit));
        q.push(format!("offset={end}"));
        format!("{}?{}", req.path, q.join("&"))
    });
    List {
        items,
        total,
        limit: page.limit,
        offset: page.offset,
        next,
    }
}

/// Percent-encodes everything but unreserved characters.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(q: &str) -> Req {
        Req {
            method: "GET".into(),
            path: "/api/runs".into(),
            query: crate::http::parse_query(q),
            body: Vec::new(),
            content_type: None,
        }
    }

    #[test]
    fn pages_and_next_links() {
        assert_eq!(page(&req("")).unwrap(), Page::first(DEFAULT_LIMIT));
        assert_eq!(page(&req("limit=0")).unwrap_err().status, 400);
        assert_eq!(page(&req("limit=501")).unwrap_err().status, 400);
        assert_eq!(page(&req("offset=-1")).unwrap_err().status, 400);
        let r = req("host=a b&limit=2&offset=2");
        let p = page(&r).unwrap();
        let l = list(&r, p, 5, vec![1, 2]);
        assert_eq!(
            l.next.as_deref(),
            Some("/api/runs?host=a%20b&limit=2&offset=4")
        );
        assert!(list(&r, p, 4, vec![1, 2]).next.is_none());
        assert!(list(&r, p, 9, Vec::<i32>::new()).next.is_none());
    }
}
