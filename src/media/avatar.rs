//! Avatar pictures: decode an upload with a real image library (PNG, JPEG, WebP, GIF),
//! refuse what is not an image or would decompress into too many pixels, crop the centre
//! square and re-encode it as a 256 px PNG. Runs on a blocking thread (CPU-heavy).

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};

/// Side of every stored avatar, in pixels.
pub const SIZE: u32 = 256;
/// Largest upload, in bytes.
pub const MAX_BYTES: usize = 2 * 1024 * 1024;
/// Largest accepted width or height; beyond it an image is a decompression bomb.
pub const MAX_SIDE: u32 = 8192;

/// Why an upload was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AvatarError {
    /// Larger than [`MAX_BYTES`].
    #[error("the picture is larger than 2 MiB")]
    TooLarge,
    /// Not PNG, JPEG, WebP or GIF, or not a picture at all.
    #[error("the upload is not a PNG, JPEG, WebP or GIF picture")]
    NotAnImage,
    /// Wider or taller than [`MAX_SIDE`].
    #[error("the picture is larger than {MAX_SIDE}×{MAX_SIDE} pixels")]
    TooManyPixels,
    /// Recognised but could not be decoded (truncated, corrupt).
    #[error("the picture is damaged and cannot be read")]
    Damaged,
}

/// Decodes `bytes`, crops the centre square and returns it as a 256×256 PNG.
pub fn normalize(bytes: &[u8]) -> Result<Vec<u8>, AvatarError> {
    if bytes.len() > MAX_BYTES {
        return Err(AvatarError::TooLarge);
    }
    let format = image::guess_format(bytes).map_err(|_| AvatarError::NotAnImage)?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Gif) {
        return Err(AvatarError::NotAnImage);
    }
    // Read the header first: a bomb is refused before any pixel is allocated.
    let (w, h) =
        ImageReader::with_format(Cursor::new(bytes), format).into_dimensions().map_err(|_| AvatarError::Damaged)?;
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(AvatarError::TooManyPixels);
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => AvatarError::TooManyPixels,
        _ => AvatarError::Damaged,
    })?;
    let side = w.min(h);
    let square = img.crop_imm((w - side) / 2, (h - side) / 2, side, side);
    let small = square.resize_exact(SIZE, SIZE, image::imageops::FilterType::Lanczos3).to_rgba8();
    let mut out = Vec::new();
    small.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).map_err(|_| AvatarError::Damaged)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, RgbImage};

    fn encoded(w: u32, h: u32, format: ImageFormat) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 128])));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
    }

    fn side_of(png: &[u8]) -> (u32, u32) {
        let img = image::load_from_memory_with_format(png, ImageFormat::Png).unwrap();
        (img.width(), img.height())
    }

    #[test]
    fn png_jpeg_and_webp_come_out_as_square_256_px_png() {
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP, ImageFormat::Gif] {
            let out = normalize(&encoded(640, 300, format)).unwrap();
            assert_eq!(side_of(&out), (SIZE, SIZE), "{format:?}");
        }
    }

    #[test]
    fn text_truncated_and_huge_pictures_are_refused() {
        assert_eq!(normalize(b"hello, I am not a picture"), Err(AvatarError::NotAnImage));
        let png = encoded(300, 300, ImageFormat::Png);
        assert_eq!(normalize(&png[..png.len() / 2]), Err(AvatarError::Damaged));
        assert_eq!(normalize(&vec![0u8; MAX_BYTES + 1]), Err(AvatarError::TooLarge));
        assert_eq!(normalize(&huge_png_header(100_000, 100_000)), Err(AvatarError::TooManyPixels));
    }

    /// A PNG that claims enormous dimensions: a decompression bomb's header.
    fn huge_png_header(w: u32, h: u32) -> Vec<u8> {
        let mut png = encoded(1, 1, ImageFormat::Png);
        // IHDR data starts at byte 16: width, height (big endian); then fix the CRC.
        png[16..20].copy_from_slice(&w.to_be_bytes());
        png[20..24].copy_from_slice(&h.to_be_bytes());
        let crc = crc32fast::hash(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        png
    }
}
