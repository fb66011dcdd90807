//! The `muster` binary on a store in a temporary directory: what every CLI
//! test file drives it with. Each test file uses its own part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use muster_core::Store;
use serde_json::Value;

pub struct Muster {
    /// The test's directory, holding the store and any files it writes.
    pub dir: tempfile::TempDir,
}

impl Muster {
    pub fn new() -> Muster {
        Muster {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.path().join("office.store")
    }

    /// The store itself, for what the CLI cannot do (drop it before the
    /// next command).
    pub fn store(&self) -> Store {
        Store::open(self.store_path()).unwrap()
    }

    /// Writes a file into the test's directory; returns its path as text.
    pub fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_muster"))
            .arg("--store")
            .arg(self.store_path())
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with_stderr(args).0
    }

    /// Runs a command that must succeed; returns stdout and stderr.
    pub fn ok_with_stderr(&self, args: &[&str]) -> (String, String) {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "muster {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// Runs a command that must fail with exit 1; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        self.fails_with(1, args)
    }

    /// Runs a command that must fail with `code`, printing nothing on
    /// stdout; returns its stderr.
    pub fn fails_with(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "muster {args:?} should fail with {code}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout.is_empty());
        String::from_utf8(out.stderr).unwrap()
    }
}
