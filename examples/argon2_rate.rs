//! How many argon2id verifications per second this machine does with N threads, each reusing
//! its own memory (the most the service could ever do), and how many per tick of CPU time.
//! `scripts/bench-logins` divides the service's logins by these figures.
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
        .map(|t| {
            let (done, count, start, params) =
                (done.clone(), count.clone(), start.clone(), params.clone());
            std::thread::spawn(move || {
                let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
                let mut memory = vec![Block::new(); params.block_count()];
                let mut out = [0u8; 32];
                start.wait();
                let mut n = 0u64;
                while !done.load(Ordering::Relaxed) {
                    // A different salt each time, as different accounts have: argon2id's
                    // memory accesses depend on it, and threads hashing identical inputs in
                    // lockstep contend for the same cache sets.
                    n += 1;
                    let salt = format!("salt-{t:04}-{n:016}");
                    argon2
                        .hash_password_into_with_memory(
                            b"correct horse battery",
                            salt.as_bytes(),
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
    let cpu_before = cpu_ticks();
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    done.store(true, Ordering::Relaxed);
    let hashes = count.load(Ordering::Relaxed);
    let elapsed = began.elapsed().as_secs_f64();
    let cpu_ticks = cpu_ticks() - cpu_before;
    for w in workers {
        w.join().expect("worker");
    }
    // Per second of wall time, and per tick of CPU time this process got (on a shared
    // machine the two differ).
    println!(
        "{:.1} {:.4}",
        hashes as f64 / elapsed,
        hashes as f64 / cpu_ticks as f64
    );
}

/// User + system CPU time of this process, in clock ticks (`/proc/self/stat`).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat format")
        .1
        .split_whitespace()
        .collect();
    let field = |i: usize| fields[i].parse::<u64>().expect("stat field");
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    field(11) + field(12)
}
