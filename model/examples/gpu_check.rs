//! The GPU check (issue: the model's GPU backend): on a machine with a GPU,
//! the same demo-model weights on the CPU (flex) and on the GPU give the
//! same logits (within 1e-3), and the inference and training benchmark of
//! the default network (384² views) on both. JSON on stdout. The same check
//! serves burn's LibTorch CPU backend (`tch`, `scripts/tch.sh`).
//!
//! ```sh
//! cargo run --release -p osteo-model --example gpu_check --features gpu-cuda      # or gpu-wgpu
//! ```

#[cfg(not(any(feature = "gpu-cuda", feature = "gpu-wgpu", feature = "cpu-tch")))]
fn main() {
    eprintln!("build with --features gpu-cuda, gpu-wgpu or cpu-tch");
    std::process::exit(2);
}

#[cfg(any(feature = "gpu-cuda", feature = "gpu-wgpu", feature = "cpu-tch"))]
fn main() {
    use burn::module::Module;
    use burn::tensor::Device;
    use osteo_model::{bench, card, demo, net::NetConfig};
    use serde_json::json;

    let backend = std::env::args().nth(1).unwrap_or_else(|| {
        if cfg!(feature = "gpu-cuda") {
            "cuda".into()
        } else if cfg!(feature = "gpu-wgpu") {
            "wgpu".into()
        } else {
            "tch".into()
        }
    });
    let gpu = osteo_model::device(&backend).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2);
    });
    let cpu = Device::flex();
    let fail = |what: &str, e: osteo_model::ModelError| -> ! {
        println!(
            "{}",
            json!({ "backend": backend, "error": format!("{what}: {e}") })
        );
        std::process::exit(1);
    };
    // Parity: the demo model's weights on both devices.
    let models = std::env::temp_dir().join(format!("osteo-gpu-check-{}", std::process::id()));
    let dir = demo::install(&models).unwrap_or_else(|e| fail("installing the demo model", e));
    let config = demo::net();
    let load = |device: &Device| {
        config
            .init(device)
            .and_then(|n| {
                n.try_load_file(dir.join(card::WEIGHTS))
                    .map_err(osteo_model::ModelError::backend)
            })
            .map(|n| n.valid())
    };
    let on_cpu = load(&cpu).unwrap_or_else(|e| fail("loading on the CPU", e));
    let on_gpu = load(&gpu).unwrap_or_else(|e| fail("loading on the GPU", e));
    let max_diff = bench::parity(&on_cpu, &cpu, &on_gpu, &gpu, &config, 8)
        .unwrap_or_else(|e| fail("parity", e));

    // Speed of the default network (384², two views) on both.
    let default = NetConfig::new();
    let mut speed = serde_json::Map::new();
    for (name, device) in [("gpu", &gpu), ("cpu_flex", &cpu)] {
        let net = bench::fresh(&default, device).unwrap_or_else(|e| fail("network", e));
        let inference = bench::inference(&net, &default, 2, 20, device)
            .unwrap_or_else(|e| fail("inference", e));
        let training =
            bench::training_step(&default, 8, 2, 5, device).unwrap_or_else(|e| fail("training", e));
        speed.insert(
            name.into(),
            json!({
                "inference_ms_per_case": inference,
                "train_step_ms_batch_8_cases": training,
                "train_images_per_second": 16.0 / (training.mean / 1e3),
            }),
        );
    }
    let _ = std::fs::remove_dir_all(&models);
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "backend": backend,
            "parity": { "model": config, "cases": 8, "max_abs_logit_difference": max_diff, "within_1e-3": max_diff <= 1e-3 },
            "speed_384px_two_views": speed,
            "peak_rss_mib": bench::peak_rss_mib(),
            "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        }))
        .unwrap_or_default()
    );
    if max_diff > 1e-3 {
        std::process::exit(1);
    }
}
