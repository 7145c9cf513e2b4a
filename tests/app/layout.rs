//! The source's shape, checked on every run: platform names stay in their folders, and imports
//! run one way, down the layers the architecture section of the README draws.

use std::path::{Path, PathBuf};

/// The app's top-level modules, lowest first: a module may import only from layers below its
/// own. Features (analysis, experiments, sync, then writeback) sit above the platforms, the
/// queue and the inbox, which know none of them; the composition root (`app`) is above them all.
const LAYERS: &[&[&str]] = &[
    &["secrets", "signed"],
    &["model"],
    &["store"],
    &["triggers", "queue", "metrics"],
    &["settings", "platforms"],
    &["config"],
    &["keys", "telemetry"],
    &["ingest"],
    &["state"],
    &["analysis", "experiments", "sync"],
    &["writeback"],
    &["routes"],
    &["admin"],
    &["app"],
    &["server"],
    &["cli"],
    &["lib", "main"],
];

const PLATFORM_NAMES: &[&str] = &["shopify", "ecwid"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's code: without comments and without its unit tests (which may reach anywhere).
fn code(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .enumerate()
        .map(|(i, l)| (i + 1, l.split("//").next().unwrap_or("").to_string()))
        .collect()
}

/// The top-level module a file of `src/` belongs to.
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(root().join("src")).unwrap();
    let first = rel.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

#[test]
fn platform_names_stay_in_their_folders() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("core/src"), &mut files);
    let platforms = root().join("src/platforms");
    let registry = platforms.join("mod.rs");
    let mut found = Vec::new();
    for file in &files {
        // A platform's own folder names it; so may the one list that registers them all.
        let own_folder = PLATFORM_NAMES
            .iter()
            .any(|name| file.starts_with(platforms.join(name)));
        if own_folder {
            continue;
        }
        let mut in_list = false;
        for (n, line) in code(file) {
            if *file == registry {
                if line.trim_start().starts_with("registered! {") {
                    in_list = true;
                    continue;
                }
                if in_list {
                    in_list = line.trim() != "}";
                    continue;
                }
            }
            let lower = line.to_ascii_lowercase();
            if PLATFORM_NAMES.iter().any(|name| lower.contains(name)) {
                found.push(format!("{}:{n}: {}", file.display(), line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "code outside src/platforms/<name>/ names a platform:\n{}",
        found.join("\n")
    );
}

#[test]
fn imports_run_down_the_layers() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let import = regex::Regex::new(r"crate::([a-z_]+)").unwrap();
    let mut up = Vec::new();
    for file in &files {
        let module = module_of(file);
        let Some(own) = layer_of(&module) else {
            panic!("{}: module {module} has no layer in LAYERS", file.display());
        };
        for (n, line) in code(file) {
            for m in import.captures_iter(&line) {
                let target = &m[1];
                if target == module || target == "core" {
                    continue;
                }
                match layer_of(target) {
                    Some(l) if l < own => {}
                    _ => up.push(format!("{}:{n}: {module} imports {target}", file.display())),
                }
            }
        }
    }
    assert!(
        up.is_empty(),
        "imports that run up or sideways:\n{}",
        up.join("\n")
    );
}

/// One platform's folder does not reach into another's.
#[test]
fn platforms_do_not_reach_into_each_other() {
    let mut found = Vec::new();
    for name in PLATFORM_NAMES {
        let mut files = Vec::new();
        rust_files(&root().join("src/platforms").join(name), &mut files);
        for file in &files {
            for (n, line) in code(file) {
                for other in PLATFORM_NAMES.iter().filter(|o| *o != name) {
                    if line.contains(&format!("platforms::{other}"))
                        || line.contains(&format!("super::{other}"))
                    {
                        found.push(format!("{}:{n}: {}", file.display(), line.trim()));
                    }
                }
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// The checks above would notice: a platform name in generic code, and an import up.
#[test]
fn the_checks_see_what_they_look_for() {
    let line = "    let flavour = lifecycle_sandbox::ecwid::Platform::Ecwid;";
    assert!(
        PLATFORM_NAMES
            .iter()
            .any(|n| line.to_ascii_lowercase().contains(n))
    );
    let (queue, sync) = (layer_of("queue").unwrap(), layer_of("sync").unwrap());
    assert!(queue < sync, "the queue knows no feature");
    assert!(layer_of("platforms").unwrap() < layer_of("writeback").unwrap());
    assert!(layer_of("app").unwrap() > layer_of("admin").unwrap());
}
