//! The face pipeline in process, next to baselines measured in the same run: the bare YuNet model call on an
//! already prepared 640x640 input, and the embedding of the network that was 3.0 before MobileFaceNet (dlib's,
//! now 2.0). Ratios to read: decode + detect, and detect + align + embed (CompareFace's work for one image),
//! over YuNet; MobileFaceNet's embedding, with and without the mirror image, over dlib's. One thread per model
//! call, as the server runs them by default. Then the attribute models for one face beside the face mesh
//! (which every analysed face runs): AgeGenderNet, and the 64x64 mini-Xception of the emotion model, the same
//! network and input as the gender model AgeGenderNet replaced. Last, detection in a photo without a face
//! (the padded second pass runs) beside one with a face (it does not).
//! Needs `models/` (tools/fetch_models.py) and ../shared/faces.
//! `cargo bench --bench pipeline`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use iai_server::face::embed::{DLIB_128, MOBILEFACENET_192, Recognition};
use iai_server::face::image_input::decode_bytes;
use iai_server::face::runtime::{Manifest, Model};
use iai_server::face::{FacePipeline, ModelVersion, PipelineConfig};

fn bench_pipeline(c: &mut Criterion) {
    let threads = 1;
    let pipeline = FacePipeline::load(
        Path::new("models"),
        &PipelineConfig::one_call_at_a_time(Vec::new()),
    )
    .expect("models/ must be filled: python3 tools/fetch_models.py");
    let manifest = Manifest::load(Path::new("models")).unwrap();
    let yunet = Model::load(
        pipeline.environment(),
        &manifest,
        "yunet_n_dynamic.onnx",
        threads,
    )
    .unwrap();
    let bytes = std::fs::read("../shared/faces/edge_cases/formats/syn_face.png")
        .expect("../shared/faces is needed");

    let mut group = c.benchmark_group("pipeline");
    group.sample_size(30);
    let input = (vec![1, 3, 640, 640], vec![100f32; 3 * 640 * 640]);
    group.bench_function("baseline: YuNet model call, 640x640", |b| {
        b.iter(|| black_box(yunet.run(input.clone()).unwrap()))
    });
    group.bench_function("decode + detect (348x522 PNG)", |b| {
        b.iter(|| {
            let decoded = decode_bytes(black_box(&bytes)).unwrap();
            black_box(pipeline.detect_blocking(&decoded.image, false).unwrap())
        })
    });
    let decoded = decode_bytes(&bytes).unwrap();
    group.bench_function("detect + align + embed 3.0", |b| {
        b.iter(|| {
            let faces = pipeline.detect_blocking(&decoded.image, false).unwrap();
            black_box(
                pipeline
                    .embed_blocking(&decoded.image, &faces[0], ModelVersion::V3)
                    .unwrap(),
            )
        })
    });
    let faces = pipeline.detect_blocking(&decoded.image, false).unwrap();
    let landmarks = faces[0].landmarks;
    let embed = |spec: &Recognition, mirror: bool| {
        let embedder = pipeline.embedder_for(spec).unwrap();
        let crop = embedder.align(&decoded.image, &landmarks);
        embedder.embed_aligned_with(&crop, mirror).unwrap()
    };
    group.bench_function("align + embed: dlib 128 (3.0 until now; baseline)", |b| {
        b.iter(|| black_box(embed(&DLIB_128, DLIB_128.mirror)))
    });
    group.bench_function(
        "align + embed: MobileFaceNet 192 with its mirror image",
        |b| b.iter(|| black_box(embed(&MOBILEFACENET_192, true))),
    );
    group.bench_function("align + embed: MobileFaceNet 192, one pass", |b| {
        b.iter(|| black_box(embed(&MOBILEFACENET_192, false)))
    });
    let face = &faces[0];
    let attributes = pipeline.attribute_models();
    group.bench_function("attributes: face mesh (baseline)", |b| {
        b.iter(|| black_box(pipeline.mesh_blocking(&decoded.image, face).unwrap()))
    });
    group.bench_function(
        "attributes: mini-Xception 64x64 (emotion; the replaced gender model's network)",
        |b| b.iter(|| black_box(attributes.emotions(&decoded.image, face).unwrap())),
    );
    group.bench_function("attributes: AgeGenderNet 112x112 (age and gender)", |b| {
        b.iter(|| black_box(attributes.age_gender(&decoded.image, face).unwrap()))
    });
    let no_face = decode_bytes(
        &std::fs::read("../shared/faces/edge_cases/no_face/syn_grey_640x480.jpg").unwrap(),
    )
    .unwrap();
    group.bench_function("detect: 640x480 with a face (one pass)", |b| {
        // The face photo on a grey 640x480 canvas: the same detector input as the photo without one.
        let mut with_face = image::RgbImage::from_pixel(640, 480, image::Rgb([128, 128, 128]));
        let photo = image::imageops::resize(
            &decoded.image,
            320,
            480,
            image::imageops::FilterType::Triangle,
        );
        image::imageops::replace(&mut with_face, &photo, 160, 0);
        b.iter(|| black_box(pipeline.detect_blocking(&with_face, false).unwrap()))
    });
    group.bench_function(
        "detect: 640x480 without a face (the padded second pass runs)",
        |b| b.iter(|| black_box(pipeline.detect_blocking(&no_face.image, false).unwrap())),
    );
    group.finish();
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);
