use super::ErrorCode;

/// An error answered to the client as `{"Response": {"Error": {"Code", "Message"}, "RequestId"}}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// An error whose message is the meaning the specification gives for the code.
    pub fn code(code: ErrorCode) -> Self {
        Self::new(code, code.meaning())
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }

    /// An action the service behind the trait leaves out (only tests' stubs do).
    pub fn not_implemented(action: &str) -> Self {
        Self::new(
            ErrorCode::UnsupportedOperation,
            format!("The action `{action}` is not implemented by this service."),
        )
    }

    pub fn invalid_action(action: &str) -> Self {
        Self::new(
            ErrorCode::InvalidAction,
            format!("The action `{action}` does not exist for service `iai`."),
        )
    }

    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            ErrorCode::MissingParameter,
            format!("The request is missing a required parameter `{name}`."),
        )
    }

    pub fn invalid_type(name: &str) -> Self {
        Self::new(
            ErrorCode::InvalidParameter,
            format!("The value type of parameter `{name}` is not valid."),
        )
    }
}
