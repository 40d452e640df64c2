//! Route resolution as julienschmidt/httprouter does it for nsqd and nsqlookupd: exact
//! method matches, `:name` parameters, trailing-slash and case-fixing redirects
//! (`RedirectTrailingSlash`, `RedirectFixedPath`), 405 with an `Allow` list
//! (`HandleMethodNotAllowed`) and automatic OPTIONS answers.
//!
//! Each daemon keeps its own route table and handlers; this module only decides where a
//! request goes. Methods are compared by name, so HEAD is not GET.

/// One route: the method name, the path pattern and what the daemon dispatches to. A
/// `:name` pattern segment matches any one non-empty path segment.
pub type RouteEntry<'a, T> = (&'a str, &'a str, T);

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<T> {
    /// Handle it with this target; the `:name` segment's value if the pattern has one.
    Handle(T, Option<String>),
    /// Redirect to this path (the query string is added by [`redirect`]).
    Redirect(String),
    /// Answer OPTIONS with this `Allow` list.
    Options(String),
    /// Answer 405 with this `Allow` list.
    MethodNotAllowed(String),
    /// Answer 404.
    NotFound,
}

/// A daemon's route table.
#[derive(Debug, Clone, Copy)]
pub struct Router<'a, T> {
    routes: &'a [RouteEntry<'a, T>],
}

impl<'a, T: Copy> Router<'a, T> {
    pub const fn new(routes: &'a [RouteEntry<'a, T>]) -> Router<'a, T> {
        Router { routes }
    }

    /// Resolves a request for the (already percent-decoded) `path`.
    pub fn route(&self, method: &str, path: &str) -> Route<T> {
        for (rm, pattern, target) in self.routes {
            if *rm == method {
                if let Some(param) = match_pattern(pattern, path, false) {
                    return Route::Handle(*target, param);
                }
            }
        }
        let method_has_routes = self.routes.iter().any(|(rm, _, _)| *rm == method);
        if method_has_routes && method != "CONNECT" && path != "/" {
            if let Some(fixed) = self.fixed_path(method, path) {
                return Route::Redirect(fixed);
            }
        }
        match self.allowed_methods(path, method) {
            Some(allow) if method == "OPTIONS" => Route::Options(allow),
            Some(allow) => Route::MethodNotAllowed(allow),
            None => Route::NotFound,
        }
    }

    /// httprouter's `Allow` list: the other methods routed at `path`, plus OPTIONS,
    /// sorted; `None` when no other method is.
    pub fn allowed_methods(&self, path: &str, method: &str) -> Option<String> {
        let mut allowed: Vec<&str> = self
            .routes
            .iter()
            .filter(|(rm, pattern, _)| {
                *rm != method && match_pattern(pattern, path, false).is_some()
            })
            .map(|(rm, _, _)| *rm)
            .collect();
        if allowed.is_empty() {
            return None;
        }
        allowed.push("OPTIONS");
        allowed.sort_unstable();
        allowed.dedup();
        Some(allowed.join(", "))
    }

    /// httprouter's redirect target: the cleaned path, matched case-insensitively and
    /// with or without a trailing slash, against this method's routes; `None` if nothing
    /// matches or the fix is the path itself.
    pub fn fixed_path(&self, method: &str, path: &str) -> Option<String> {
        let cleaned = clean_path(path);
        let trimmed = match cleaned.strip_suffix('/') {
            Some(t) if !t.is_empty() => t,
            _ => cleaned.as_str(),
        };
        self.routes
            .iter()
            .filter(|(rm, _, _)| *rm == method)
            .find_map(|(_, pattern, _)| {
                match_pattern(pattern, trimmed, true).map(|p| fill_pattern(pattern, p.as_deref()))
            })
            .filter(|fixed| fixed != path)
    }
}

/// Matches `path` against a route pattern; `Some(param)` on a match, with the value of
/// the pattern's `:name` segment if it has one.
pub fn match_pattern(pattern: &str, path: &str, ignore_case: bool) -> Option<Option<String>> {
    let mut param = None;
    let mut want = pattern.split('/');
    let mut got = path.split('/');
    loop {
        match (want.next(), got.next()) {
            (None, None) => return Some(param),
            (Some(w), Some(g)) => {
                if w.starts_with(':') {
                    if g.is_empty() {
                        return None;
                    }
                    param = Some(g.to_string());
                } else if !(w == g || ignore_case && w.eq_ignore_ascii_case(g)) {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// The path a route pattern names once its parameter is filled in.
fn fill_pattern(pattern: &str, param: Option<&str>) -> String {
    match (pattern.split_once("/:"), param) {
        (Some((prefix, _)), Some(p)) => format!("{prefix}/{p}"),
        _ => pattern.to_string(),
    }
}

/// Go's `path.Clean` keeping a trailing slash, rooted at `/` (httprouter's `CleanPath`).
pub fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if path.ends_with('/') && out.len() > 1 {
        out.push('/');
    }
    out
}

/// A redirect response as Go's `http.Redirect` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// 301 Moved Permanently (GET) rather than 307 Temporary Redirect.
    pub permanent: bool,
    /// The `Location` header: the target path plus the original raw query.
    pub location: String,
    /// The body: Go's little HTML link for GET, empty otherwise.
    pub body: String,
    /// The `Content-Type` header, set for GET only.
    pub content_type: Option<&'static str>,
}

impl Redirect {
    /// The status code.
    pub fn status(&self) -> u16 {
        if self.permanent {
            301
        } else {
            307
        }
    }
}

/// httprouter's redirect to `to`, keeping the raw query: 301 for GET (with Go's little
/// HTML body), 307 for other methods.
pub fn redirect(method: &str, to: &str, raw_query: Option<&str>) -> Redirect {
    let mut location = to.to_string();
    if let Some(q) = raw_query {
        location.push('?');
        location.push_str(q);
    }
    if method == "GET" {
        let href = location
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&#34;")
            .replace('\'', "&#39;");
        Redirect {
            permanent: true,
            body: format!("<a href=\"{href}\">Moved Permanently</a>.\n\n"),
            location,
            content_type: Some(super::response::HTML_CONTENT_TYPE),
        }
    } else {
        Redirect {
            permanent: false,
            location,
            body: String::new(),
            content_type: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTER: Router<'static, u8> = Router::new(&[
        ("GET", "/ping", 1),
        ("POST", "/pub", 2),
        ("GET", "/stats", 3),
        ("GET", "/lookup", 4),
        ("POST", "/topic/create", 5),
        ("GET", "/config/:opt", 6),
        ("PUT", "/config/:opt", 7),
    ]);

    fn handled(method: &str, path: &str) -> Option<(u8, Option<String>)> {
        match ROUTER.route(method, path) {
            Route::Handle(t, p) => Some((t, p)),
            _ => None,
        }
    }

    #[test]
    fn routes_and_params() {
        assert_eq!(handled("GET", "/ping"), Some((1, None)));
        assert_eq!(
            handled("PUT", "/config/log_level"),
            Some((7, Some("log_level".into())))
        );
        assert!(handled("GET", "/config/").is_none());
        assert!(handled("GET", "/config/a/b").is_none());
        assert!(handled("HEAD", "/ping").is_none());
        assert!(handled("GET", "/Ping").is_none());
    }

    #[test]
    fn not_found_not_allowed_options_redirects() {
        assert_eq!(ROUTER.route("GET", "/nope"), Route::NotFound);
        assert_eq!(
            ROUTER.route("GET", "/pub"),
            Route::MethodNotAllowed("OPTIONS, POST".into())
        );
        assert_eq!(
            ROUTER.route("POST", "/config/x"),
            Route::MethodNotAllowed("GET, OPTIONS, PUT".into())
        );
        assert_eq!(
            ROUTER.route("HEAD", "/ping"),
            Route::MethodNotAllowed("GET, OPTIONS".into())
        );
        assert_eq!(
            ROUTER.route("OPTIONS", "/stats"),
            Route::Options("GET, OPTIONS".into())
        );
        assert_eq!(
            ROUTER.route("GET", "/PING/"),
            Route::Redirect("/ping".into())
        );
        assert_eq!(
            ROUTER.route("GET", "/Config/Opt/"),
            Route::Redirect("/config/Opt".into())
        );
        assert_eq!(ROUTER.route("OPTIONS", "/nope"), Route::NotFound);
        // No redirects for CONNECT, for `/`, or for a method without routes.
        assert_eq!(ROUTER.route("CONNECT", "/PING"), Route::NotFound);
        assert_eq!(ROUTER.route("DELETE", "/PING"), Route::NotFound);
        assert_eq!(ROUTER.route("GET", "/"), Route::NotFound);
    }

    #[test]
    fn allow_lists_like_httprouter() {
        assert_eq!(
            ROUTER.allowed_methods("/lookup", "POST").as_deref(),
            Some("GET, OPTIONS")
        );
        assert_eq!(
            ROUTER.allowed_methods("/topic/create", "GET").as_deref(),
            Some("OPTIONS, POST")
        );
        assert_eq!(ROUTER.allowed_methods("/nope", "GET"), None);
    }

    #[test]
    fn path_fixing() {
        assert_eq!(clean_path("//a/./b/../c/"), "/a/c/");
        assert_eq!(clean_path(""), "/");
        assert_eq!(clean_path("/../a"), "/a");
        assert_eq!(ROUTER.fixed_path("GET", "/ping/").as_deref(), Some("/ping"));
        assert_eq!(ROUTER.fixed_path("GET", "/PING").as_deref(), Some("/ping"));
        assert_eq!(
            ROUTER.fixed_path("GET", "//lookup").as_deref(),
            Some("/lookup")
        );
        assert_eq!(ROUTER.fixed_path("GET", "/topic/create/"), None);
        assert_eq!(
            ROUTER.fixed_path("POST", "/Topic/Create").as_deref(),
            Some("/topic/create")
        );
        assert_eq!(ROUTER.fixed_path("GET", "/nope"), None);
        assert_eq!(ROUTER.fixed_path("GET", "/ping"), None);
    }

    #[test]
    fn patterns() {
        assert_eq!(
            match_pattern("/a/:b", "/a/x", false),
            Some(Some("x".into()))
        );
        assert_eq!(match_pattern("/a/:b", "/A/x", false), None);
        assert_eq!(match_pattern("/a/:b", "/A/x", true), Some(Some("x".into())));
        assert_eq!(match_pattern("/a", "/a/", false), None);
        assert_eq!(fill_pattern("/config/:opt", Some("X")), "/config/X");
        assert_eq!(fill_pattern("/ping", None), "/ping");
    }

    #[test]
    fn redirects_like_go() {
        let get = redirect("GET", "/ping", Some("a=1&b=<"));
        assert_eq!(get.status(), 301);
        assert_eq!(get.location, "/ping?a=1&b=<");
        assert_eq!(
            get.body,
            "<a href=\"/ping?a=1&amp;b=&lt;\">Moved Permanently</a>.\n\n"
        );
        assert_eq!(get.content_type, Some("text/html; charset=utf-8"));
        let post = redirect("POST", "/pub", None);
        assert_eq!(
            post,
            Redirect {
                permanent: false,
                location: "/pub".into(),
                body: String::new(),
                content_type: None,
            }
        );
        assert_eq!(post.status(), 307);
    }
}
