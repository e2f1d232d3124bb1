//! The store's named operations on jobs, backend-neutral: callers outside `store/` use these and the
//! row types here, never a backend's.

use std::fmt;

// Transitional: the backend's rows and SQL, until every caller uses a named operation.
pub use super::sqlite::jobs::*;

/// What the writing transaction refused, on what it read (mapped to Tencent's codes by the caller).
#[derive(Debug)]
pub enum Refusal {}

impl fmt::Display for Refusal {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}
