//! Alignment: the least-squares similarity transform (rotation, uniform scale, translation) that carries the
//! five detected landmarks onto a recognition model's template, and a bilinear warp of the image through it.

use image::{Rgb, RgbImage};

/// `[a, -b, tx; b, a, ty]` stored as `[a, b, tx, ty]`: dst = [[a, -b], [b, a]] * src + t.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    /// Least squares over point pairs (closed form of Umeyama's method without reflection).
    pub fn estimate(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Self {
        let n = src.len() as f32;
        let mean = |pts: &[[f32; 2]]| {
            let (sx, sy) = pts
                .iter()
                .fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
            [sx / n, sy / n]
        };
        let (ms, md) = (mean(src), mean(dst));
        let (mut dot, mut cross, mut norm) = (0.0, 0.0, 0.0);
        for (s, d) in src.iter().zip(dst) {
            let (px, py) = (s[0] - ms[0], s[1] - ms[1]);
            let (qx, qy) = (d[0] - md[0], d[1] - md[1]);
            dot += px * qx + py * qy;
            cross += px * qy - py * qx;
            norm += px * px + py * py;
        }
        let norm = norm.max(f32::EPSILON);
        let (a, b) = (dot / norm, cross / norm);
        Self {
            a,
            b,
            tx: md[0] - (a * ms[0] - b * ms[1]),
            ty: md[1] - (b * ms[0] + a * ms[1]),
        }
    }

    pub fn apply(&self, p: [f32; 2]) -> [f32; 2] {
        [
            self.a * p[0] - self.b * p[1] + self.tx,
            self.b * p[0] + self.a * p[1] + self.ty,
        ]
    }

    pub fn inverse(&self) -> Self {
        let det = (self.a * self.a + self.b * self.b).max(f32::EPSILON);
        let (a, b) = (self.a / det, -self.b / det);
        Self {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        }
    }
}

/// The `size` x `size` crop that `transform` maps the image onto (pixels outside the image are black).
pub fn warp(image: &RgbImage, transform: &Similarity, size: u32) -> RgbImage {
    let back = transform.inverse();
    RgbImage::from_fn(size, size, |u, v| {
        // Pixel centres: output pixel (u, v) covers [u, u+1); sample the source at its centre.
        let [x, y] = back.apply([u as f32 + 0.5, v as f32 + 0.5]);
        bilinear(image, x - 0.5, y - 0.5)
    })
}

/// A square crop of `side` image pixels around `centre`, turned by `angle` radians (so that a line at that
/// angle in the image comes out level), scaled to `size` x `size`; with the transform from image to crop
/// coordinates. Large faces are first shrunk with an area filter so the bilinear warp does not alias.
pub fn upright_square(
    image: &RgbImage,
    centre: [f32; 2],
    side: f32,
    angle: f32,
    size: u32,
) -> anyhow::Result<(RgbImage, Similarity)> {
    let side = side.max(1.0);
    let scale = size as f32 / side;
    let half = size as f32 / 2.0;
    // crop = R(-angle) * scale * (p - centre) + size / 2
    let centred = |centre: [f32; 2], scale: f32| {
        let (cos, sin) = (angle.cos() * scale, angle.sin() * scale);
        Similarity {
            a: cos,
            b: -sin,
            tx: half - (cos * centre[0] + sin * centre[1]),
            ty: half - (-sin * centre[0] + cos * centre[1]),
        }
    };
    let to_crop = centred(centre, scale);
    if scale >= 0.5 {
        return Ok((warp(image, &to_crop, size), to_crop));
    }
    // Shrink the region the square can reach (its circumscribed box) to about twice the output scale.
    let reach = side * std::f32::consts::FRAC_1_SQRT_2 + 1.0;
    let (w, h) = (image.width() as f32, image.height() as f32);
    let x0 = (centre[0] - reach).floor().clamp(0.0, w - 1.0);
    let y0 = (centre[1] - reach).floor().clamp(0.0, h - 1.0);
    let x1 = (centre[0] + reach).ceil().clamp(x0 + 1.0, w);
    let y1 = (centre[1] + reach).ceil().clamp(y0 + 1.0, h);
    let region = image::imageops::crop_imm(
        image,
        x0 as u32,
        y0 as u32,
        (x1 - x0) as u32,
        (y1 - y0) as u32,
    )
    .to_image();
    let shrink = 2.0 * scale;
    let (rw, rh) = (
        ((region.width() as f32 * shrink).round() as u32).max(1),
        ((region.height() as f32 * shrink).round() as u32).max(1),
    );
    let small = super::detect::resize_bilinear(&region, rw, rh)?;
    // Region pixel q = (p - (x0, y0)) * (rw / region width); then the rest of the mapping.
    let (sx, sy) = (
        rw as f32 / region.width() as f32,
        rh as f32 / region.height() as f32,
    );
    let shrink = (sx + sy) / 2.0;
    let small_centre = [(centre[0] - x0) * shrink, (centre[1] - y0) * shrink];
    let small_to_crop = centred(small_centre, scale / shrink);
    Ok((warp(&small, &small_to_crop, size), to_crop))
}

fn bilinear(image: &RgbImage, x: f32, y: f32) -> Rgb<u8> {
    let (w, h) = (image.width() as i64, image.height() as i64);
    let (x0, y0) = (x.floor() as i64, y.floor() as i64);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let pixel = |px: i64, py: i64| -> [f32; 3] {
        if px < 0 || py < 0 || px >= w || py >= h {
            [0.0; 3]
        } else {
            let p = image.get_pixel(px as u32, py as u32);
            [p[0] as f32, p[1] as f32, p[2] as f32]
        }
    };
    let (p00, p10, p01, p11) = (
        pixel(x0, y0),
        pixel(x0 + 1, y0),
        pixel(x0, y0 + 1),
        pixel(x0 + 1, y0 + 1),
    );
    let mut out = [0u8; 3];
    for c in 0..3 {
        let top = p00[c] * (1.0 - fx) + p10[c] * fx;
        let bottom = p01[c] * (1.0 - fx) + p11[c] * fx;
        out[c] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
    }
    Rgb(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_similarity() {
        let truth = Similarity {
            a: 0.8,
            b: 0.3,
            tx: 12.0,
            ty: -4.0,
        };
        let src = [
            [10.0, 10.0],
            [50.0, 12.0],
            [30.0, 30.0],
            [15.0, 50.0],
            [45.0, 52.0],
        ];
        let dst: Vec<[f32; 2]> = src.iter().map(|&p| truth.apply(p)).collect();
        let est = Similarity::estimate(&src, &dst);
        for (got, want) in [
            (est.a, truth.a),
            (est.b, truth.b),
            (est.tx, truth.tx),
            (est.ty, truth.ty),
        ] {
            assert!((got - want).abs() < 1e-3, "{est:?}");
        }
        let round_trip = est.inverse().apply(est.apply([7.0, 9.0]));
        assert!((round_trip[0] - 7.0).abs() < 1e-3 && (round_trip[1] - 9.0).abs() < 1e-3);
    }

    #[test]
    fn upright_square_maps_its_centre_to_the_middle_and_levels_the_angle() {
        let image = RgbImage::from_fn(400, 300, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 0]));
        for side in [40.0, 300.0] {
            let angle = 0.3f32;
            let (crop, to_crop) = upright_square(&image, [200.0, 150.0], side, angle, 64).unwrap();
            assert_eq!(crop.dimensions(), (64, 64));
            let mid = to_crop.apply([200.0, 150.0]);
            assert!((mid[0] - 32.0).abs() < 1e-3 && (mid[1] - 32.0).abs() < 1e-3);
            // A point along the angle from the centre lands on the crop's horizontal middle line.
            let along = to_crop.apply([200.0 + 10.0 * angle.cos(), 150.0 + 10.0 * angle.sin()]);
            assert!((along[1] - 32.0).abs() < 1e-3 && along[0] > 32.0);
            // The shrunk path samples the same place as the direct warp: the crop centre's colour.
            let p = crop.get_pixel(32, 32);
            assert!(
                (i32::from(p[0]) - 200).abs() <= 3 && (i32::from(p[1]) - 150).abs() <= 3,
                "{p:?}"
            );
        }
    }

    #[test]
    fn warping_with_the_identity_copies_the_image() {
        let image = RgbImage::from_fn(8, 8, |x, y| Rgb([(x * 30) as u8, (y * 30) as u8, 7]));
        let out = warp(
            &image,
            &Similarity {
                a: 1.0,
                b: 0.0,
                tx: 0.0,
                ty: 0.0,
            },
            8,
        );
        assert_eq!(out, image);
    }
}
