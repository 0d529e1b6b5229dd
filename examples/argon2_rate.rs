//! How many argon2id verifications per second this machine does with N threads, each reusing
//! its own memory (the most the service could ever do). `scripts/bench-logins` divides the
//! service's logins per second by this figure.
//!
//!     cargo run --release --example argon2_rate -- THREADS SECONDS [MEMORY_KIB ITERATIONS PARALLELISM]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Block, Params, Version};

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric arguments"))
        .collect();
    let arg = |i: usize, default: u64| args.get(i).copied().unwrap_or(default);
    let threads = arg(0, 1) as usize;
    let seconds = arg(1, 5);
    let params = Params::new(
        arg(2, 19_456) as u32,
        arg(3, 2) as u32,
        arg(4, 1) as u32,
        None,
    )
    .expect("valid argon2 parameters");

    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (done, count, start, params) =
                (done.clone(), count.clone(), start.clone(), params.clone());
            std::thread::spawn(move || {
                let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
                let mut memory = vec![Block::new(); params.block_count()];
                let mut out = [0u8; 32];
                start.wait();
                while !done.load(Ordering::Relaxed) {
                    argon2
                        .hash_password_into_with_memory(
                            b"correct horse battery",
                            b"a sixteen b salt",
                            &mut out,
                            &mut memory,
                        )
                        .expect("argon2");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    done.store(true, Ordering::Relaxed);
    let hashes = count.load(Ordering::Relaxed);
    let elapsed = began.elapsed().as_secs_f64();
    for w in workers {
        w.join().expect("worker");
    }
    println!("{:.1}", hashes as f64 / elapsed);
}
