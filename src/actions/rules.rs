//! Value rules shared by several actions (SPEC.md §7.1): identifiers, text lengths, model versions, paging.

pub use crate::api::ids::{check_group_id, check_id};
use crate::api::{ApiError, ErrorCode};

pub const MAX_GROUPS: u64 = 100_000;
pub const MAX_GROUP_EX_DESCRIPTIONS: usize = 5;
pub const DEFAULT_FACE_MODEL_VERSION: &str = "3.0";

pub fn check_person_id(id: &str) -> Result<(), ApiError> {
    check_id(
        id,
        ErrorCode::InvalidParameterValuePersonIdTooLong,
        ErrorCode::InvalidParameterValuePersonIdIllegal,
    )
}

/// The values as Tencent lists them: one string per custom field of the group, "" when unset.
pub fn listed_values(values: &[Option<String>], field_count: usize) -> Vec<String> {
    (0..field_count)
        .map(|i| values.get(i).cloned().flatten().unwrap_or_default())
        .collect()
}

/// Free text of `min..=max` characters without control characters.
pub fn check_text(
    text: &str,
    min: usize,
    max: usize,
    too_long: ErrorCode,
    illegal: ErrorCode,
) -> Result<(), ApiError> {
    let chars = text.chars().count();
    if chars > max {
        return Err(ApiError::code(too_long));
    }
    if chars < min || text.chars().any(char::is_control) {
        return Err(ApiError::code(illegal));
    }
    Ok(())
}

pub fn check_group_name(name: &str) -> Result<(), ApiError> {
    check_text(
        name,
        1,
        60,
        ErrorCode::InvalidParameterValueGroupNameTooLong,
        ErrorCode::InvalidParameterValueGroupNameIllegal,
    )
}

pub fn check_tag(tag: &str) -> Result<(), ApiError> {
    check_text(
        tag,
        0,
        40,
        ErrorCode::InvalidParameterValueGroupTagTooLong,
        ErrorCode::InvalidParameterValueGroupTagIllegal,
    )
}

/// A custom field name: 1-30 characters, letters (CJK included), digits, `-` and `_`.
pub fn check_ex_description_name(name: &str) -> Result<(), ApiError> {
    if name.chars().count() > 30 {
        return Err(ApiError::code(
            ErrorCode::InvalidParameterValueGroupExDescriptionsNameTooLong,
        ));
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::code(
            ErrorCode::InvalidParameterValueGroupExDescriptionsNameIllegal,
        ));
    }
    Ok(())
}

/// `"2.0"` or `"3.0"`; absent means the default, 3.0.
pub fn face_model_version(requested: Option<&str>) -> Result<String, ApiError> {
    match requested {
        None => Ok(DEFAULT_FACE_MODEL_VERSION.to_owned()),
        Some(v @ ("2.0" | "3.0")) => Ok(v.to_owned()),
        Some(other) => Err(ApiError::new(
            ErrorCode::InvalidParameterValueFaceModelVersionIllegal,
            format!("FaceModelVersion `{other}` is not supported; use \"2.0\" or \"3.0\"."),
        )),
    }
}

/// A checked page request: Limit 1..=max (default 10), Offset within the list (default 0).
/// A list's `Limit`: 10 when absent, else 1 to `max_limit` (`InvalidParameterValue.LimitExceed`).
pub fn check_limit(limit: Option<u64>, max_limit: u64) -> Result<u64, ApiError> {
    let limit = limit.unwrap_or(10);
    if limit == 0 || limit > max_limit {
        return Err(ApiError::new(
            ErrorCode::InvalidParameterValueLimitExceed,
            format!("Limit must be between 1 and {max_limit}."),
        ));
    }
    Ok(limit)
}

pub struct Page {
    pub offset: u64,
    pub limit: u64,
}

impl Page {
    pub fn new(
        offset: Option<u64>,
        limit: Option<u64>,
        max_limit: u64,
        total: u64,
    ) -> Result<Self, ApiError> {
        let limit = check_limit(limit, max_limit)?;
        let offset = offset.unwrap_or(0);
        if offset > 0 && offset >= total {
            return Err(ApiError::new(
                ErrorCode::InvalidParameterValueOffsetExceed,
                format!("Offset {offset} is past the end of the list ({total} items)."),
            ));
        }
        Ok(Self { offset, limit })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids() {
        assert!(check_group_id("Tencent-SZ_01%@#&").is_ok());
        assert_eq!(
            check_group_id("").unwrap_err().code,
            ErrorCode::InvalidParameterValueGroupIdIllegal
        );
        assert_eq!(
            check_group_id("a b").unwrap_err().code,
            ErrorCode::InvalidParameterValueGroupIdIllegal
        );
        assert_eq!(
            check_group_id("组").unwrap_err().code,
            ErrorCode::InvalidParameterValueGroupIdIllegal
        );
        assert!(check_group_id(&"a".repeat(64)).is_ok());
        assert_eq!(
            check_group_id(&"a".repeat(65)).unwrap_err().code,
            ErrorCode::InvalidParameterValueGroupIdTooLong
        );
    }

    #[test]
    fn names_count_characters_not_bytes() {
        assert!(check_group_name(&"员".repeat(60)).is_ok());
        assert_eq!(
            check_group_name(&"员".repeat(61)).unwrap_err().code,
            ErrorCode::InvalidParameterValueGroupNameTooLong
        );
        assert_eq!(
            check_group_name("").unwrap_err().code,
            ErrorCode::InvalidParameterValueGroupNameIllegal
        );
        assert!(check_ex_description_name("部门_名-1").is_ok());
        assert!(check_ex_description_name("a b").is_err());
    }

    #[test]
    fn paging() {
        assert_eq!(Page::new(None, None, 1000, 0).unwrap().limit, 10);
        assert!(Page::new(Some(0), Some(1000), 1000, 0).is_ok());
        assert_eq!(
            Page::new(None, Some(1001), 1000, 5).err().unwrap().code,
            ErrorCode::InvalidParameterValueLimitExceed
        );
        assert_eq!(
            Page::new(None, Some(0), 1000, 5).err().unwrap().code,
            ErrorCode::InvalidParameterValueLimitExceed
        );
        assert_eq!(
            Page::new(Some(5), None, 1000, 5).err().unwrap().code,
            ErrorCode::InvalidParameterValueOffsetExceed
        );
        assert!(Page::new(Some(4), None, 1000, 5).is_ok());
    }
}
