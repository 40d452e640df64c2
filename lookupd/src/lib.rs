//! nsqlookupd library (work in progress).
