//! The pure parts of the NSQ daemons' HTTP APIs, shared by nsqd and nsqlookupd: Go
//! `net/url` query and path decoding ([`query`]), httprouter-style route resolution
//! ([`router`]) and the V1 response conventions ([`response`]).
//!
//! Nothing here touches sockets or an HTTP library's types: methods are `&str` names,
//! statuses plain numbers, and each daemon turns the results into its own responses.

pub mod query;
pub mod response;
pub mod router;
