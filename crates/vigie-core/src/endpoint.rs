//! The names of HTTP endpoints: the request method in front of the route.
//!
//! The JavaScript SDKs name a server transaction `GET /invoices/:id`; the Python SDK names it
//! by route alone (`/invoices/{id}`) and sends the method in the event's `request`. Named the
//! same way, a route's GET and POST are two endpoints on the Performance page, as they are two
//! pieces of code, whichever SDK sent them. A rule written for the bare route still watches
//! every method of it ([`route`]).

/// The methods an endpoint's name may start with.
const METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE",
];

/// The method at the start of `name` (`"GET /x"` → `GET`), if it has one.
fn method_of(name: &str) -> Option<&str> {
    let (head, _) = name.split_once(' ')?;
    METHODS.contains(&head).then_some(head)
}

/// `name` with `method` in front, unless it has a method already or `method` is not one
/// (in any case: SDKs send `GET`, a hand-made event may send `get`).
pub fn named(method: Option<&str>, name: &str) -> String {
    let method = method.map(str::to_ascii_uppercase);
    match method {
        Some(m) if method_of(name).is_none() && METHODS.contains(&m.as_str()) => {
            format!("{m} {name}")
        }
        _ => name.to_string(),
    }
}

/// `name` without the method in front: the route (`"GET /x"` → `/x`; `/x` stays).
pub fn route(name: &str) -> &str {
    match method_of(name) {
        Some(m) => name[m.len() + 1..].trim_start(),
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_goes_in_front_once() {
        assert_eq!(named(Some("GET"), "/invoices/{id}"), "GET /invoices/{id}");
        assert_eq!(named(Some("post"), "/invoices"), "POST /invoices");
        assert_eq!(named(Some("GET"), "GET /users/:id"), "GET /users/:id");
        assert_eq!(named(None, "/invoices"), "/invoices");
        assert_eq!(named(Some("BREW"), "/pot"), "/pot", "not an HTTP method");
        assert_eq!(
            named(Some("GET"), "Get Reports"),
            "GET Get Reports",
            "case kept"
        );
    }

    #[test]
    fn the_route_is_the_name_without_its_method() {
        assert_eq!(route("GET /invoices/{id}"), "/invoices/{id}");
        assert_eq!(route("/invoices/{id}"), "/invoices/{id}");
        assert_eq!(route("GETTER /x"), "GETTER /x");
        assert_eq!(route("send_invoices"), "send_invoices");
    }
}
