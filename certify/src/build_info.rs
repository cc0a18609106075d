//! What this binary was built from, captured by build.rs at build time.

/// Version of the `certify` package (`hvcert --version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `git rev-parse HEAD` of the source tree when it was built (`-dirty` when tracked files
/// had local changes then), HVCERT_GIT_REVISION if that was set for the build, or
/// "unknown" when the tree was not a git checkout.
pub const GIT_REVISION: &str = env!("HVCERT_GIT_REVISION");

#[cfg(test)]
mod tests {
    #[test]
    fn revision_is_known_in_this_checkout() {
        // The tests run from the git checkout, so build.rs found a revision.
        let rev = super::GIT_REVISION.trim_end_matches("-dirty");
        assert!(
            rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit()),
            "{}",
            super::GIT_REVISION
        );
    }
}
