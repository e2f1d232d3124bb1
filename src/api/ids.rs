//! Identifier formats that both the wire's authorisation (before an action runs) and the actions check,
//! with the error codes Tencent answers.

use super::{ApiError, ErrorCode};

/// GroupId and PersonId: letters, digits and `-%@#&_`, 1 to 64 bytes.
pub fn check_id(id: &str, too_long: ErrorCode, illegal: ErrorCode) -> Result<(), ApiError> {
    if id.len() > 64 {
        return Err(ApiError::code(too_long));
    }
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-%@#&_".contains(&b))
    {
        return Err(ApiError::code(illegal));
    }
    Ok(())
}

pub fn check_group_id(id: &str) -> Result<(), ApiError> {
    check_id(
        id,
        ErrorCode::InvalidParameterValueGroupIdTooLong,
        ErrorCode::InvalidParameterValueGroupIdIllegal,
    )
}
