//! Image input (SPEC.md §7.1-7.2): base64 `Image` bytes to an RGB image, refusing with Tencent's codes:
//! base64 over 5 MiB `FailedOperation.ImageSizeExceed`; undecodable or not PNG/JPEG/BMP (GIF is refused,
//! as by Tencent) `FailedOperation.ImageDecodeFailed`; over the pixel limit `FailedOperation.ImageResolutionExceed`,
//! checked from the header before any pixel is decoded (decompression bombs); short side under 64 px
//! `FailedOperation.ImageResolutionTooSmall`. EXIF orientation is applied.

use std::io::Cursor;

use base64::Engine;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

use crate::api::{ApiError, ErrorCode};

/// Tencent measures every image as base64, 5 MB at most.
pub const MAX_BASE64_BYTES: usize = 5 * 1024 * 1024;
pub const MIN_SHORT_SIDE: u32 = 64;
/// Larger than any photo a camera makes (7360x4912 = 36 Mpx), far below a decompression bomb.
pub const MAX_PIXELS: u64 = 64_000_000;
pub const MAX_SIDE: u32 = 16_384;

/// A decoded image and the format it came in (some limits depend on it).
pub struct Decoded {
    pub image: RgbImage,
    pub format: ImageFormat,
}

pub fn decode_base64(text: &str) -> Result<Decoded, ApiError> {
    if text.is_empty() {
        return Err(ApiError::code(ErrorCode::InvalidParameterValueImageEmpty));
    }
    if text.len() > MAX_BASE64_BYTES {
        return Err(ApiError::new(
            ErrorCode::FailedOperationImageSizeExceed,
            "The image is larger than 5 MB after base64 encoding.",
        ));
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let bytes = engine.decode(text.trim()).map_err(|_| {
        ApiError::new(
            ErrorCode::FailedOperationImageDecodeFailed,
            "Image is not valid base64.",
        )
    })?;
    decode_bytes(&bytes)
}

/// Decode raw file bytes (from base64 or a Url download).
pub fn decode_bytes(bytes: &[u8]) -> Result<Decoded, ApiError> {
    let base64_len = bytes.len().div_ceil(3) * 4;
    if base64_len > MAX_BASE64_BYTES {
        return Err(ApiError::new(
            ErrorCode::FailedOperationImageSizeExceed,
            "The image is larger than 5 MB after base64 encoding.",
        ));
    }
    let failed = |why: &str| {
        ApiError::new(
            ErrorCode::FailedOperationImageDecodeFailed,
            format!("Image decode failed: {why}."),
        )
    };
    if bytes.is_empty() {
        return Err(ApiError::code(ErrorCode::InvalidParameterValueImageEmpty));
    }
    let format = image::guess_format(bytes).map_err(|_| failed("unknown image format"))?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Bmp
    ) {
        return Err(failed(&format!(
            "{format:?} is not supported; use JPG, PNG or BMP"
        )));
    }
    let reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder = reader.into_decoder().map_err(|e| failed(&e.to_string()))?;
    let (width, height) = decoder.dimensions();
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ApiError::new(
            ErrorCode::FailedOperationImageResolutionExceed,
            format!(
                "The image is {width}x{height} pixels; at most {MAX_PIXELS} pixels are accepted."
            ),
        ));
    }
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| failed(&e.to_string()))?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    if image.width().min(image.height()) < MIN_SHORT_SIDE {
        return Err(ApiError::new(
            ErrorCode::FailedOperationImageResolutionTooSmall,
            format!(
                "The image is {}x{}; its short side must be at least {MIN_SHORT_SIDE} px.",
                image.width(),
                image.height()
            ),
        ));
    }
    Ok(Decoded {
        image: image.into_rgb8(),
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn decodes_the_accepted_formats_to_rgb() {
        let img =
            DynamicImage::ImageLuma8(image::GrayImage::from_pixel(80, 70, image::Luma([200])));
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::Bmp] {
            let decoded = decode_bytes(&encode(&img, format)).unwrap();
            assert_eq!(decoded.image.dimensions(), (80, 70));
            assert_eq!(decoded.format, format);
        }
    }

    #[test]
    fn refuses_gif_garbage_small_and_empty() {
        let img = DynamicImage::ImageRgb8(RgbImage::new(80, 80));
        assert_eq!(
            decode_bytes(&encode(&img, ImageFormat::Gif))
                .err()
                .unwrap()
                .code,
            ErrorCode::FailedOperationImageDecodeFailed
        );
        assert_eq!(
            decode_bytes(b"not an image").err().unwrap().code,
            ErrorCode::FailedOperationImageDecodeFailed
        );
        let small = DynamicImage::ImageRgb8(RgbImage::new(80, 63));
        assert_eq!(
            decode_bytes(&encode(&small, ImageFormat::Png))
                .err()
                .unwrap()
                .code,
            ErrorCode::FailedOperationImageResolutionTooSmall
        );
        assert_eq!(
            decode_base64("").err().unwrap().code,
            ErrorCode::InvalidParameterValueImageEmpty
        );
        assert_eq!(
            decode_base64("@@@").err().unwrap().code,
            ErrorCode::FailedOperationImageDecodeFailed
        );
        assert_eq!(
            decode_base64(&"A".repeat(MAX_BASE64_BYTES + 4))
                .err()
                .unwrap()
                .code,
            ErrorCode::FailedOperationImageSizeExceed
        );
    }

    #[test]
    fn refuses_a_decompression_bomb_from_its_header() {
        // A PNG header claiming 20000x20000 pixels, with no pixel data behind it.
        let mut png = encode(
            &DynamicImage::ImageRgb8(RgbImage::new(64, 64)),
            ImageFormat::Png,
        );
        png[16..20].copy_from_slice(&20000u32.to_be_bytes());
        png[20..24].copy_from_slice(&20000u32.to_be_bytes());
        let err = decode_bytes(&png).err().unwrap();
        assert!(
            matches!(
                err.code,
                ErrorCode::FailedOperationImageResolutionExceed
                    | ErrorCode::FailedOperationImageDecodeFailed
            ),
            "{err:?}"
        );
    }
}
