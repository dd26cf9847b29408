//! The container image's start-up, without a Docker daemon: the Dockerfile's entrypoint, command
//! and environment are read from the file itself and run against a fresh directory (it starts
//! and writes its key-encryption key there) and an unwritable one (it stops at once, naming the
//! path). The image must create both directories for its own user.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn instructions() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                if !current.trim().is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
        }
    }
    out
}

/// The runtime stage's `ENV` settings.
fn image_env() -> Vec<(String, String)> {
    instructions()
        .iter()
        .filter_map(|i| i.strip_prefix("ENV "))
        .flat_map(|vars| vars.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

/// `ENTRYPOINT` followed by `CMD`, as exec-form JSON arrays.
fn image_command() -> Vec<String> {
    let json = |prefix: &str| -> Vec<String> {
        let i = instructions().into_iter().rfind(|i| i.starts_with(prefix)).unwrap();
        serde_json::from_str(i[prefix.len()..].trim()).unwrap()
    };
    [json("ENTRYPOINT "), json("CMD ")].concat()
}

/// Runs the image's command with its environment, `/var/lib/latchkey` moved to `root`.
fn run_image(root: &Path) -> (bool, String) {
    let command = image_command();
    assert_eq!(command[0], "latchkey");
    let bin = std::env::var("LATCHKEY_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_latchkey").to_owned());
    let mut cmd = Command::new(bin);
    cmd.args(&command[1..]).current_dir(std::env::temp_dir());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LATCHKEY_")) {
        cmd.env_remove(k);
    }
    for (k, v) in image_env() {
        cmd.env(k, v.replace("/var/lib/latchkey", &root.display().to_string()));
    }
    // Port 0: several tests run at once. Everything else is the image's.
    cmd.env("LATCHKEY_LISTEN", "127.0.0.1:0").env("RUST_LOG", "warn");
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let started = first.starts_with("Listening on");
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    (started, String::from_utf8_lossy(&out.stderr).into())
}

/// A directory of this test's own: the tests run in parallel, so none may clear another's.
fn temp_root(test: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("latchkey-image-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    root
}

#[test]
fn the_image_makes_its_directories_for_its_user() {
    let env = image_env();
    let dir = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap();
    let (data, keys) = (dir("LATCHKEY_DATA_DIR"), dir("LATCHKEY_KEYS_DIR"));
    let run = instructions().into_iter().filter(|i| i.starts_with("RUN ")).collect::<Vec<_>>().join("\n");
    assert!(run.contains(&format!("mkdir -p {data} {keys}")), "{run}");
    assert!(run.contains("chown -R latchkey:latchkey /var/lib/latchkey"), "{run}");
    assert!(instructions().contains(&"USER latchkey".to_owned()));
    // The compose file mounts the keys volume exactly there.
    let compose = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml")).unwrap();
    assert!(compose.contains(&format!("- keys:{keys}")), "{compose}");
}

#[test]
fn the_entrypoint_starts_on_a_fresh_directory() {
    let root = temp_root("fresh").join("fresh");
    let (started, stderr) = run_image(&root);
    assert!(started, "{stderr}");
    assert!(root.join("keys/kek").is_file(), "the development key-encryption key is written");
    assert!(root.join("data/latchkey.db").is_file());
    let _ = std::fs::remove_dir_all(root.parent().unwrap());
}

#[test]
fn the_entrypoint_names_the_directory_it_cannot_use() {
    let parent = temp_root("locked").join("locked");
    std::fs::create_dir_all(&parent).unwrap();
    let mut root = parent.join("volume");
    std::fs::create_dir_all(&root).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root writes anywhere: there, a read-only file system stands in for a volume owned by
    // another user.
    if std::fs::write(root.join("probe"), b"").is_ok() {
        root = PathBuf::from("/proc/latchkey-volume");
    }
    let (started, stderr) = run_image(&root);
    assert!(!started, "started on an unwritable directory");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("latchkey: data_dir") || last.starts_with("latchkey: keys_dir"), "{stderr}");
    assert!(last.contains(&root.display().to_string()), "the error names the path: {stderr}");
    let _ = std::fs::set_permissions(parent.join("volume"), std::fs::Permissions::from_mode(0o755));
    let _ = std::fs::remove_dir_all(parent.parent().unwrap());
}

/// The top-level entries a source file reads at compile time: the first path component of every
/// `include_str!`, `include_bytes!`, `migrate!` and `i18n!` argument under `src/`.
fn compile_time_inputs(dir: &Path, found: &mut std::collections::BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            compile_time_inputs(&path, found);
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for mac in ["include_str!(\"", "include_bytes!(\"", "migrate!(\"", "i18n!(\""] {
            for (at, _) in text.match_indices(mac) {
                let arg = &text[at + mac.len()..];
                let arg = &arg[..arg.find('"').unwrap()];
                // include_* paths are relative to the file, the others to the crate's root.
                let joined =
                    if mac.starts_with("include") { path.parent().unwrap().join(arg) } else { PathBuf::from(arg) };
                let root = Path::new(env!("CARGO_MANIFEST_DIR"));
                let relative = std::fs::canonicalize(root.join(&joined)).unwrap();
                let relative = relative.strip_prefix(std::fs::canonicalize(root).unwrap()).unwrap();
                found.insert(relative.components().next().unwrap().as_os_str().to_string_lossy().into_owned());
            }
        }
    }
}

#[test]
fn the_build_stage_copies_everything_the_build_reads() {
    let copied: Vec<String> = instructions()
        .iter()
        .filter_map(|i| i.strip_prefix("COPY "))
        .filter(|args| !args.starts_with("--from"))
        .flat_map(|args| {
            let mut words = args.split_whitespace().collect::<Vec<_>>();
            words.pop(); // the destination
            words.into_iter().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    let mut needed = std::collections::BTreeSet::new();
    compile_time_inputs(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut needed);
    assert!(needed.contains("templates") && needed.contains("locales"), "{needed:?}");
    // Cargo's own inputs: the manifest, the lock file, the build script and its link order.
    needed.extend(["Cargo.toml", "Cargo.lock", "build.rs", ".cargo", "src"].map(str::to_owned));
    let missing: Vec<_> = needed.iter().filter(|n| !copied.contains(n)).collect();
    assert!(missing.is_empty(), "the Dockerfile's build stage does not copy {missing:?}");
}
