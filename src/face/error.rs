//! What can go wrong in the face pipeline, in its own terms; the actions map these to Tencent's error codes
//! (`impl From<FaceError> for ApiError` in `actions::errors`), as they do for the store's errors.

/// Why an image could not be read or a model call did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FaceError {
    #[error("no image was given")]
    ImageEmpty,
    #[error("the image is larger than 5 MB after base64 encoding")]
    ImageTooLarge,
    #[error("{0}")]
    NotDecodable(String),
    #[error("the image is {width}x{height} pixels; {limit}")]
    ResolutionTooHigh {
        width: u32,
        height: u32,
        limit: String,
    },
    #[error("the image is {width}x{height}; its short side must be at least {min} px")]
    ResolutionTooSmall { width: u32, height: u32, min: u32 },
    #[error("{0}")]
    UrlIllegal(String),
    #[error("{0}")]
    Download(String),
    /// A model call failed: a bug or a broken model file, never the caller's fault.
    #[error("inference failed: {0:#}")]
    Inference(anyhow::Error),
    /// The pipeline is shutting down, or one of its threads died.
    #[error("{0}")]
    Unavailable(String),
}

impl FaceError {
    pub fn inference(e: impl Into<anyhow::Error>) -> Self {
        Self::Inference(e.into())
    }
}

impl From<crate::admission::Closed> for FaceError {
    fn from(e: crate::admission::Closed) -> Self {
        Self::Unavailable(e.to_string())
    }
}
