//! The app's own keys: the one that encrypts stored tokens (`LIFECYCLE_ENCRYPTION_KEY`) and the
//! one that signs the admin's session cookie (`LIFECYCLE_SESSION_KEY`). Neither is derived
//! from a platform's client secret.
//!
//! A key given in the environment is used as it is. Without one, local use (a SQLite database)
//! generates it once into the data directory (a file readable by its owner only) and reads it
//! back on every later start, so a restart still decrypts its tokens and honours its sessions.
//! A PostgreSQL database is a production one, shared by instances that must agree on their
//! keys: there the keys must be given, and the app refuses to start without them.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::secrets::Cipher;

pub const ENCRYPTION_VAR: &str = "LIFECYCLE_ENCRYPTION_KEY";
pub const SESSION_VAR: &str = "LIFECYCLE_SESSION_KEY";
pub const ENCRYPTION_FILE: &str = "encryption.key";
pub const SESSION_FILE: &str = "session.key";
/// The shortest session key accepted, in characters.
pub const MIN_SESSION_KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{var} must be set when DATABASE_URL is PostgreSQL: a production database needs a key that every instance shares and that survives restarts (generate one with `openssl rand -base64 32`)"
    )]
    Required { var: &'static str },
    #[error("cannot read or create the key file {}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin} is not a valid key: {why}")]
    Invalid { origin: String, why: String },
}

/// The resolved keys.
pub struct Keys {
    /// The token encryption keys as `LIFECYCLE_ENCRYPTION_KEY` gives them (the first encrypts).
    pub cipher: Cipher,
    /// The session-cookie keys, the signing one first (later ones still verify).
    pub session: Vec<String>,
}

/// Whether the configured database is a production (PostgreSQL) one.
pub fn is_production(config: &Config) -> bool {
    let url = config.database_url();
    url.starts_with("postgres:") || url.starts_with("postgresql:")
}

/// The keys from the environment or, in local use, from the data directory.
pub fn resolve(config: &Config) -> Result<Keys, KeyError> {
    let production = is_production(config);
    let (encryption, origin) = key_value(
        config.encryption_key.as_deref(),
        ENCRYPTION_VAR,
        &config.data_dir.join(ENCRYPTION_FILE),
        production,
    )?;
    let cipher = Cipher::from_config(&encryption).map_err(|e| KeyError::Invalid {
        origin,
        why: e.to_string(),
    })?;
    let (session, origin) = key_value(
        config.session_key.as_deref(),
        SESSION_VAR,
        &config.data_dir.join(SESSION_FILE),
        production,
    )?;
    let session = session_keys(&session).map_err(|why| KeyError::Invalid { origin, why })?;
    Ok(Keys { cipher, session })
}

/// Comma-separated session keys, each long enough to be a key.
fn session_keys(value: &str) -> Result<Vec<String>, String> {
    let keys: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect();
    if keys.is_empty() {
        return Err("it is empty".into());
    }
    if keys.iter().any(|k| k.len() < MIN_SESSION_KEY_LEN) {
        return Err(format!(
            "each key must be at least {MIN_SESSION_KEY_LEN} characters (e.g. `openssl rand -base64 32`)"
        ));
    }
    Ok(keys)
}

/// The key's text and where it came from (for error messages, never the key itself).
fn key_value(
    explicit: Option<&str>,
    var: &'static str,
    file: &Path,
    production: bool,
) -> Result<(String, String), KeyError> {
    if let Some(value) = explicit.filter(|v| !v.trim().is_empty()) {
        return Ok((value.to_string(), var.to_string()));
    }
    if production {
        return Err(KeyError::Required { var });
    }
    let value = load_or_create(file).map_err(|source| KeyError::File {
        path: file.to_path_buf(),
        source,
    })?;
    Ok((value, format!("the key file {}", file.display())))
}

/// Reads the key file, or creates it with a new key (mode 0600) when there is none. Two
/// processes starting at once agree on one key: the file appears whole, by a hard link from a
/// private temporary file, and the loser reads the winner's.
pub fn load_or_create(file: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(file) {
        Ok(text) => return Ok(text.trim().to_string()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key = Cipher::generate_key();
    let tmp = file.with_extension(format!("tmp-{}", crate::secrets::random_secret(6)));
    let written = write_private(&tmp, &key).and_then(|()| std::fs::hard_link(&tmp, file));
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => {
            tracing::warn!(
                file = %file.display(),
                "generated a key into the data directory for local use; set the environment variable in production"
            );
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(file)?.trim().to_string())
        }
        Err(e) => Err(e),
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub").join("k.key");
        let first = load_or_create(&file).unwrap();
        assert!(Cipher::from_config(&first).is_ok());
        assert_eq!(load_or_create(&file).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(file.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("k.key")]);
    }

    #[test]
    fn session_keys_must_be_long() {
        assert!(session_keys("short").is_err());
        assert!(session_keys(" , ").is_err());
        let long = "k".repeat(MIN_SESSION_KEY_LEN);
        assert_eq!(
            session_keys(&format!("{long}, {long}x")).unwrap(),
            vec![long.clone(), format!("{long}x")]
        );
    }
}
