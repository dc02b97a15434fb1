//! Profiles saved by `gridroll login`: a server and an API key under a name, in
//! `$XDG_CONFIG_HOME/gridroll/profiles.toml` (or `~/.config/gridroll/profiles.toml`),
//! written readable by its owner only. A file that others can read is refused rather
//! than used: the key in it acts for the partner.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use serde::{Deserialize, Serialize};

/// The profile used when none is named.
pub const DEFAULT: &str = "default";

/// One saved server and key.
#[derive(Clone, Serialize, Deserialize)]
pub struct Profile {
    pub url: String,
    pub key: String,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The file of profiles.
pub fn path() -> anyhow::Result<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .ok_or_else(|| anyhow!("neither XDG_CONFIG_HOME nor HOME is set: give --url and --key"))?;
    Ok(config.join("gridroll").join("profiles.toml"))
}

/// The profile named `name`.
pub fn load(name: &str) -> anyhow::Result<Profile> {
    find(name)?.ok_or_else(|| {
        anyhow!(
            "no server given: pass --url and --key (or GRIDROLL_URL and GRIDROLL_KEY), or save \
             them with `gridroll login`"
        )
    })
}

/// The profile named `name`, if the file of profiles holds one; a file without it is
/// an error naming it.
pub fn find(name: &str) -> anyhow::Result<Option<Profile>> {
    let file = path()?;
    let Some(mut profiles) = read(&file)? else {
        return Ok(None);
    };
    profiles.remove(name).map(Some).ok_or_else(|| {
        anyhow!(
            "{} has no profile {name:?}: save one with `gridroll login --profile {name}`",
            file.display()
        )
    })
}

/// Checks the file of profiles, if there is one: refused when others may read it or it
/// is not a profiles file.
pub fn check() -> anyhow::Result<()> {
    read(&path()?).map(drop)
}

/// Saves `profile` as `name`, keeping the file's other profiles.
pub fn save(name: &str, profile: Profile) -> anyhow::Result<PathBuf> {
    let file = path()?;
    let mut profiles = read(&file)?.unwrap_or_default();
    profiles.insert(name.to_owned(), profile);
    let text = toml::to_string(&profiles).context("writing the profiles")?;
    let dir = file.parent().expect("the file is inside a directory");
    create_private_dir(dir)?;
    // Written beside the file and renamed over it, so a reader never sees half a file;
    // created readable by its owner only, before the key is in it.
    let mut builder = tempfile::Builder::new();
    builder.prefix(".profiles");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
    let mut temporary = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    temporary.write_all(text.as_bytes())?;
    temporary.as_file().sync_all()?;
    temporary
        .persist(&file)
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(file)
}

/// Every profile of the file, if there is one; refused when others may read it.
fn read(file: &Path) -> anyhow::Result<Option<BTreeMap<String, Profile>>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    check_private(file)?;
    toml::from_str(&text)
        .map(Some)
        .map_err(|e| anyhow!("{} is not a profiles file: {}", file.display(), e.message()))
}

#[cfg(unix)]
fn check_private(file: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(file)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} can be read by others (mode {mode:04o}); it holds an API key: run `chmod 600 {}`",
            file.display(),
            file.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// Creates the directory of profiles readable by its owner only, and closes it to others
/// when it was already there (it is Gridroll's own).
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot make {} private", dir.display()))?;
        }
    }
    Ok(())
}
