//! argon2id itself: hashing a new password and checking one against a stored PHC string, in
//! memory the caller provides ([`Scratch`]), so a hashing thread reuses one buffer instead of
//! asking the allocator for `argon2_memory_kib` per hash.
//!
//! Stored hashes are bounded before any work: their memory must fit the scratch buffer (the
//! configured `argon2_memory_kib`), which is what keeps the process within
//! `max_concurrent_hashes` × `argon2_memory_kib`. This module knows nothing of queues or threads.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Upper bounds on the time parameters of a stored hash we agree to verify. Memory is bounded
/// by the scratch buffer instead.
const MAX_ITERATIONS: u32 = 16;
const MAX_PARALLELISM: u32 = 16;

/// The allocator gives requests larger than this their own mapping and unmaps it on free
/// (glibc's ceiling for its sliding mmap threshold is 32 MiB on 64-bit targets; musl and
/// jemalloc also map large requests directly). Reserving at least this much means a released
/// buffer goes back to the system instead of staying in a per-thread heap, and only the
/// blocks argon2 touches become resident.
const DIRECT_MAPPING_BYTES: usize = 32 * 1024 * 1024 + 4096;

/// One hashing thread's argon2 memory: allocated on first use, reused for every hash while
/// there is work, released when the thread goes idle.
pub struct Scratch {
    blocks: Vec<Block>,
    /// The configured `argon2_memory_kib`, in 1 KiB blocks: the most any hash may use.
    limit: usize,
}

impl Scratch {
    pub fn new(memory_kib: u32) -> Self {
        Self {
            blocks: Vec::new(),
            limit: memory_kib as usize,
        }
    }

    /// The buffer, allocated if it is not.
    fn blocks(&mut self) -> &mut [Block] {
        if self.blocks.is_empty() {
            let reserve = self.limit.max(DIRECT_MAPPING_BYTES / Block::SIZE);
            let mut blocks = Vec::with_capacity(reserve);
            blocks.resize(self.limit, Block::new());
            self.blocks = blocks;
        }
        &mut self.blocks
    }

    /// Hands the buffer back to the allocator (and so to the system).
    pub fn release(&mut self) {
        self.blocks = Vec::new();
    }

    pub fn is_allocated(&self) -> bool {
        !self.blocks.is_empty()
    }

    /// The most memory, in KiB, a hash may ask for.
    pub fn limit_kib(&self) -> usize {
        self.limit
    }
}

fn argon2id(params: Params, version: Version) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, version, params)
}

/// Hashes a new password into a PHC string with a fresh random salt.
pub fn hash(params: &Params, password: &[u8], scratch: &mut Scratch) -> anyhow::Result<String> {
    let salt = argon2::password_hash::try_generate_salt()
        .map_err(|e| anyhow::anyhow!("the system's random source failed: {e}"))?;
    let salt = Salt::new(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2id(params.clone(), Version::V0x13)
        .hash_password_into_with_memory(password, &salt, &mut out, scratch.blocks())
        .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| anyhow::anyhow!("params: {e}"))?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Whether a stored argon2 PHC string (argon2id or argon2i) could be verified here: readable,
/// within the scratch buffer's memory and the time bounds. `Ok(false)` when it is not an argon2
/// string at all.
pub fn check_stored(stored: &str, memory_kib: u32) -> Result<bool, String> {
    if !(stored.starts_with("$argon2id$") || stored.starts_with("$argon2i$")) {
        return Ok(false);
    }
    let hash = PasswordHash::new(stored).map_err(|_| "an unreadable argon2 PHC string")?;
    let (Ok(params), Some(_), Some(_)) = (Params::try_from(&hash), hash.salt, hash.hash) else {
        return Err("an argon2 PHC string with unreadable parameters".to_owned());
    };
    hash.version
        .map_or(Ok(Version::V0x13), Version::try_from)
        .map_err(|_| "an argon2 PHC string with an unknown version")?;
    if params.m_cost() > memory_kib {
        return Err(format!(
            "an argon2 hash needing {} KiB, over passwords.argon2_memory_kib ({memory_kib})",
            params.m_cost()
        ));
    }
    if params.t_cost() > MAX_ITERATIONS || params.p_cost() > MAX_PARALLELISM {
        return Err(format!(
            "an argon2 hash with t={} p={}, over {MAX_ITERATIONS} and {MAX_PARALLELISM}",
            params.t_cost(),
            params.p_cost()
        ));
    }
    Ok(true)
}

/// The result of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verification {
    pub matches: bool,
    /// The stored hash is weaker than the current policy; re-hash it now that we know the
    /// password.
    pub needs_rehash: bool,
}

const MISMATCH: Verification = Verification {
    matches: false,
    needs_rehash: false,
};

/// Checks `password` against a stored PHC string. A hash that cannot be read, uses another
/// algorithm, or asks for more than the bounds is a mismatch (and an error in the log) without
/// running argon2.
pub fn verify(
    current: &Params,
    password: &[u8],
    stored: &str,
    scratch: &mut Scratch,
) -> Verification {
    let Ok(hash) = PasswordHash::new(stored) else {
        tracing::error!("a stored password hash is not a PHC string; the login fails");
        return MISMATCH;
    };
    let algorithm = if hash.algorithm == argon2::ARGON2ID_IDENT {
        Algorithm::Argon2id
    } else if hash.algorithm == argon2::ARGON2I_IDENT {
        // Imported from another system; replaced by argon2id once it matches.
        Algorithm::Argon2i
    } else {
        tracing::error!(algorithm = %hash.algorithm, "a stored password hash uses an unsupported algorithm");
        return MISMATCH;
    };
    let (Ok(stored_params), Some(salt), Some(expected)) =
        (Params::try_from(&hash), hash.salt, hash.hash)
    else {
        tracing::error!("a stored password hash has unreadable argon2 parameters");
        return MISMATCH;
    };
    let Ok(version) = hash.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        tracing::error!("a stored password hash has an unknown argon2 version");
        return MISMATCH;
    };
    if stored_params.m_cost() as usize > scratch.limit_kib() {
        tracing::error!(
            stored_memory_kib = stored_params.m_cost(),
            argon2_memory_kib = scratch.limit_kib(),
            "a stored password hash needs more memory than passwords.argon2_memory_kib allows; \
             the login fails (raise the setting back to verify it)"
        );
        return MISMATCH;
    }
    if stored_params.t_cost() > MAX_ITERATIONS || stored_params.p_cost() > MAX_PARALLELISM {
        tracing::error!("a stored password hash asks for more work than allowed; the login fails");
        return MISMATCH;
    }
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return MISMATCH;
    };
    let computed = Argon2::new(algorithm, version, stored_params.clone())
        .hash_password_into_with_memory(password, &salt, out, scratch.blocks());
    // `Output`'s equality is constant-time.
    let matches = computed.is_ok() && Output::new(out).is_ok_and(|out| out == expected);
    let needs_rehash = matches
        && (stored_params.m_cost() < current.m_cost()
            || stored_params.t_cost() < current.t_cost()
            || stored_params.p_cost() != current.p_cost()
            || version != Version::V0x13
            || algorithm != Algorithm::Argon2id);
    Verification {
        matches,
        needs_rehash,
    }
}

#[cfg(test)]
mod tests {
    use argon2::PasswordVerifier as _;

    use super::*;

    fn params(m: u32, t: u32, p: u32) -> Params {
        Params::new(m, t, p, None).unwrap()
    }

    #[test]
    fn a_hash_made_in_scratch_memory_is_a_standard_phc_string() {
        let mut scratch = Scratch::new(64);
        let hash = hash(&params(64, 1, 1), b"correct horse", &mut scratch).unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        // The crate's own verifier agrees, so the string is interoperable.
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong horse", &parsed)
                .is_err()
        );
    }

    #[test]
    fn a_hash_from_another_implementation_verifies_in_reused_memory() {
        // Made by the crate's allocating API, with two lanes and a smaller memory cost than
        // the scratch buffer holds, then checked twice in the same (dirty) buffer.
        let other = argon2::PasswordHasher::hash_password(
            &Argon2::new(Algorithm::Argon2id, Version::V0x13, params(32, 2, 2)),
            b"correct horse",
        )
        .unwrap()
        .to_string();
        let mut scratch = Scratch::new(64);
        let current = params(64, 1, 1);
        let first = verify(&current, b"correct horse", &other, &mut scratch);
        assert!(first.matches);
        assert!(first.needs_rehash, "m=32 and p=2 differ from the policy");
        assert!(!verify(&current, b"wrong horse", &other, &mut scratch).matches);
        assert!(verify(&current, b"correct horse", &other, &mut scratch).matches);
    }

    #[test]
    fn stored_hashes_asking_for_more_than_the_buffer_or_absurd_work_are_refused() {
        let mut scratch = Scratch::new(64);
        let bigger = argon2::PasswordHasher::hash_password(
            &Argon2::new(Algorithm::Argon2id, Version::V0x13, params(128, 1, 1)),
            b"x",
        )
        .unwrap()
        .to_string();
        assert!(!verify(&params(64, 1, 1), b"x", &bigger, &mut scratch).matches);
        assert!(!scratch.is_allocated(), "refused before any argon2 work");
        let slow = "$argon2id$v=19$m=64,t=17,p=1$c29tZXNhbHRzb21lc2FsdA$\
                    AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(!verify(&params(64, 1, 1), b"x", slow, &mut scratch).matches);
        assert!(!verify(&params(64, 1, 1), b"x", "not a phc string", &mut scratch).matches);
        assert!(
            !verify(
                &params(64, 1, 1),
                b"x",
                "$2b$10$abcdefghijklmnopqrstuv",
                &mut scratch
            )
            .matches
        );
        assert!(!scratch.is_allocated());
    }

    #[test]
    fn released_scratch_memory_is_allocated_again_on_the_next_hash() {
        let mut scratch = Scratch::new(64);
        let stored = hash(&params(64, 1, 1), b"pw", &mut scratch).unwrap();
        assert!(scratch.is_allocated());
        scratch.release();
        assert!(!scratch.is_allocated());
        assert!(verify(&params(64, 1, 1), b"pw", &stored, &mut scratch).matches);
    }
}
