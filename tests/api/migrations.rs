//! The two migration folders must stay in step: same versions, same names.

use std::path::Path;

fn migrations(dialect: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    names.sort();
    names
}

#[test]
fn sqlite_and_postgres_migrations_have_the_same_versions_and_names() {
    let sqlite = migrations("sqlite");
    let postgres = migrations("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres);
}
