//! Image input (SPEC.md §7.1-7.2): base64 `Image` bytes to an RGB image, refusing with Tencent's codes:
//! base64 over 5 MiB `FailedOperation.ImageSizeExceed`; undecodable or not PNG/JPEG/BMP (GIF is refused,
//! as by Tencent) `FailedOperation.ImageDecodeFailed`; over the pixel limit `FailedOperation.ImageResolutionExceed`,
//! checked from the header before any pixel is decoded (decompression bombs); short side under 64 px
//! `FailedOperation.ImageResolutionTooSmall`. EXIF orientation is applied. The header is read first
//! (`probe`) so that the memory the decoding will take can be admitted before it is spent.

use std::io::Cursor;

use base64::Engine;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

use super::error::FaceError;
use crate::admission::Ticket;

/// Tencent measures every image as base64, 5 MB at most.
pub const MAX_BASE64_BYTES: usize = 5 * 1024 * 1024;
pub const MIN_SHORT_SIDE: u32 = 64;
/// Larger than any photo a camera makes (7360x4912 = 36 Mpx), far below a decompression bomb.
pub const MAX_PIXELS: u64 = 64_000_000;
pub const MAX_SIDE: u32 = 16_384;

/// A decoded image, the format it came in (some limits depend on it), and the memory admission that pays
/// for its pixels (given back when the image is dropped).
pub struct Decoded {
    pub image: RgbImage,
    pub format: ImageFormat,
    /// Declared after `image`, so it is dropped after the pixels are freed.
    pub ticket: Option<Ticket>,
}

/// What the header says about an image, read before any pixel is decoded.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    /// The decoder's own buffer (its colour type, e.g. 16-bit RGBA is 8 bytes a pixel).
    native_bytes: u64,
    /// Whether the native buffer is already 8-bit RGB (no conversion copy).
    native_is_rgb8: bool,
    /// Whether EXIF asks for a turn or flip (one more copy of the native buffer while it is applied).
    reoriented: bool,
}

impl Probe {
    /// The most memory decoding and then working on the image can hold at once: while decoding, the native
    /// buffer (twice while EXIF orientation is applied) plus the RGB conversion; afterwards the RGB image
    /// and `working_copies` more of it (turned copies for NeedRotateDetection).
    pub fn peak_bytes(&self, working_copies: u64) -> u64 {
        let rgb = u64::from(self.width) * u64::from(self.height) * 3;
        let native = self.native_bytes * if self.reoriented { 2 } else { 1 };
        let decoding = native + if self.native_is_rgb8 { 0 } else { rgb };
        decoding.max(rgb * (1 + working_copies))
    }
}

/// The file bytes of a base64 `Image`.
pub fn base64_bytes(text: &str) -> Result<Vec<u8>, FaceError> {
    if text.is_empty() {
        return Err(FaceError::ImageEmpty);
    }
    if text.len() > MAX_BASE64_BYTES {
        return Err(FaceError::ImageTooLarge);
    }
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| FaceError::NotDecodable("Image is not valid base64.".into()))
}

fn failed(why: impl std::fmt::Display) -> FaceError {
    FaceError::NotDecodable(format!("Image decode failed: {why}."))
}

/// Check the format and size limits from the header alone (decompression bombs never get decoded).
pub fn probe(bytes: &[u8]) -> Result<Probe, FaceError> {
    if bytes.len().div_ceil(3) * 4 > MAX_BASE64_BYTES {
        return Err(FaceError::ImageTooLarge);
    }
    if bytes.is_empty() {
        return Err(FaceError::ImageEmpty);
    }
    let format = image::guess_format(bytes).map_err(|_| failed("unknown image format"))?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Bmp
    ) {
        return Err(failed(format!(
            "{format:?} is not supported; use JPG, PNG or BMP"
        )));
    }
    let mut decoder = ImageReader::with_format(Cursor::new(bytes), format)
        .into_decoder()
        .map_err(failed)?;
    let (width, height) = decoder.dimensions();
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(FaceError::ResolutionTooHigh {
            width,
            height,
            limit: format!("at most {MAX_PIXELS} pixels are accepted"),
        });
    }
    let reoriented = decoder
        .orientation()
        .is_ok_and(|o| o != image::metadata::Orientation::NoTransforms);
    Ok(Probe {
        format,
        width,
        height,
        native_bytes: decoder.total_bytes(),
        native_is_rgb8: decoder.color_type() == image::ColorType::Rgb8,
        reoriented,
    })
}

/// Decode an image whose header `probe` accepted, applying EXIF orientation.
pub fn decode_probed(bytes: &[u8], probe: &Probe) -> Result<RgbImage, FaceError> {
    let mut decoder = ImageReader::with_format(Cursor::new(bytes), probe.format)
        .into_decoder()
        .map_err(failed)?;
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(failed)?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    if image.width().min(image.height()) < MIN_SHORT_SIDE {
        return Err(FaceError::ResolutionTooSmall {
            width: image.width(),
            height: image.height(),
            min: MIN_SHORT_SIDE,
        });
    }
    Ok(image.into_rgb8())
}

/// Probe and decode in one step, without admission (benches and tests; the server goes through
/// `FacePipeline::decode`).
pub fn decode_bytes(bytes: &[u8]) -> Result<Decoded, FaceError> {
    let probe = probe(bytes)?;
    Ok(Decoded {
        image: decode_probed(bytes, &probe)?,
        format: probe.format,
        ticket: None,
    })
}

pub fn decode_base64(text: &str) -> Result<Decoded, FaceError> {
    decode_bytes(&base64_bytes(text)?)
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
        let gif = decode_bytes(&encode(&img, ImageFormat::Gif));
        assert!(matches!(gif, Err(FaceError::NotDecodable(_))));
        assert!(matches!(
            decode_bytes(b"not an image"),
            Err(FaceError::NotDecodable(_))
        ));
        let small = DynamicImage::ImageRgb8(RgbImage::new(80, 63));
        assert!(matches!(
            decode_bytes(&encode(&small, ImageFormat::Png)),
            Err(FaceError::ResolutionTooSmall { .. })
        ));
        assert!(matches!(decode_base64(""), Err(FaceError::ImageEmpty)));
        assert!(matches!(
            decode_base64("@@@"),
            Err(FaceError::NotDecodable(_))
        ));
        assert!(matches!(
            decode_base64(&"A".repeat(MAX_BASE64_BYTES + 4)),
            Err(FaceError::ImageTooLarge)
        ));
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
                err,
                FaceError::ResolutionTooHigh { .. } | FaceError::NotDecodable(_)
            ),
            "{err:?}"
        );
    }

    #[test]
    fn the_admitted_peak_covers_conversion_and_working_copies() {
        let grey = DynamicImage::ImageLuma8(image::GrayImage::new(100, 100));
        let probe = probe(&encode(&grey, ImageFormat::Png)).unwrap();
        // 10,000 grey bytes plus the 30,000-byte RGB conversion while decoding.
        assert_eq!(probe.peak_bytes(0), 40_000);
        // With a turned copy kept beside the image, two RGB images.
        assert_eq!(probe.peak_bytes(1), 60_000);
        let rgb = DynamicImage::ImageRgb8(RgbImage::new(100, 100));
        assert_eq!(
            super::probe(&encode(&rgb, ImageFormat::Png))
                .unwrap()
                .peak_bytes(0),
            30_000
        );
    }
}
