//! The `E_*` error codes of protocol V2 and whether each one closes the connection.
//!
//! nsqd v1.3.0 keeps the connection open only for `E_FIN_FAILED`, `E_REQ_FAILED` and
//! `E_TOUCH_FAILED`; every other error is sent and then the socket is closed. The
//! distinction lives in [`ErrorCode::is_fatal`] so no call site can get it wrong.

use std::fmt;

/// Every error code nsqd sends in an error frame (frame type 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    Invalid,
    BadProtocol,
    BadBody,
    BadTopic,
    BadChannel,
    BadMessage,
    PubFailed,
    MpubFailed,
    DpubFailed,
    FinFailed,
    ReqFailed,
    TouchFailed,
    SubFailed,
    IdentifyFailed,
    AuthDisabled,
    AuthFailed,
    AuthFirst,
    Unauthorized,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Invalid => "E_INVALID",
            ErrorCode::BadProtocol => "E_BAD_PROTOCOL",
            ErrorCode::BadBody => "E_BAD_BODY",
            ErrorCode::BadTopic => "E_BAD_TOPIC",
            ErrorCode::BadChannel => "E_BAD_CHANNEL",
            ErrorCode::BadMessage => "E_BAD_MESSAGE",
            ErrorCode::PubFailed => "E_PUB_FAILED",
            ErrorCode::MpubFailed => "E_MPUB_FAILED",
            ErrorCode::DpubFailed => "E_DPUB_FAILED",
            ErrorCode::FinFailed => "E_FIN_FAILED",
            ErrorCode::ReqFailed => "E_REQ_FAILED",
            ErrorCode::TouchFailed => "E_TOUCH_FAILED",
            ErrorCode::SubFailed => "E_SUB_FAILED",
            ErrorCode::IdentifyFailed => "E_IDENTIFY_FAILED",
            ErrorCode::AuthDisabled => "E_AUTH_DISABLED",
            ErrorCode::AuthFailed => "E_AUTH_FAILED",
            ErrorCode::AuthFirst => "E_AUTH_FIRST",
            ErrorCode::Unauthorized => "E_UNAUTHORIZED",
        }
    }

    /// Whether nsqd closes the connection after sending this error.
    pub fn is_fatal(self) -> bool {
        !matches!(
            self,
            ErrorCode::FinFailed | ErrorCode::ReqFailed | ErrorCode::TouchFailed
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error to report to a V2 client: `<CODE> <description>` in an error frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {description}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub description: String,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        ProtocolError {
            code,
            description: description.into(),
        }
    }

    /// `E_INVALID <description>`.
    pub fn invalid(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::Invalid, description)
    }

    pub fn is_fatal(&self) -> bool {
        self.code.is_fatal()
    }

    /// The body of the error frame.
    pub fn to_frame_body(&self) -> String {
        self.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_three_codes_keep_the_connection() {
        let non_fatal: Vec<_> = [
            ErrorCode::Invalid,
            ErrorCode::BadProtocol,
            ErrorCode::BadBody,
            ErrorCode::BadTopic,
            ErrorCode::BadChannel,
            ErrorCode::BadMessage,
            ErrorCode::PubFailed,
            ErrorCode::MpubFailed,
            ErrorCode::DpubFailed,
            ErrorCode::FinFailed,
            ErrorCode::ReqFailed,
            ErrorCode::TouchFailed,
            ErrorCode::SubFailed,
            ErrorCode::IdentifyFailed,
            ErrorCode::AuthDisabled,
            ErrorCode::AuthFailed,
            ErrorCode::AuthFirst,
            ErrorCode::Unauthorized,
        ]
        .into_iter()
        .filter(|c| !c.is_fatal())
        .collect();
        assert_eq!(
            non_fatal,
            vec![
                ErrorCode::FinFailed,
                ErrorCode::ReqFailed,
                ErrorCode::TouchFailed
            ]
        );
    }

    #[test]
    fn frame_body_is_code_space_text() {
        let e = ProtocolError::invalid("cannot SUB in current state");
        assert_eq!(e.to_frame_body(), "E_INVALID cannot SUB in current state");
    }
}
