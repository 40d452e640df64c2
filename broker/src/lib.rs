//! nsqd library
