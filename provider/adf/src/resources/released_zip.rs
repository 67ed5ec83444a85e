//! The stream Lambda released with the provider: `adf-stream-lambda.zip`, shipped in the
//! provider's release archive beside its binary (Terraform unpacks the whole archive into the
//! plugin directory), so a user needs no Rust toolchain.

use std::path::{Path, PathBuf};

/// The zip's file name beside the provider binary.
pub const ZIP_NAME: &str = "adf-stream-lambda.zip";
/// Overrides where the zip is looked for (a path to the zip itself).
pub const ENV_OVERRIDE: &str = "ADF_STREAM_LAMBDA_ZIP";

/// Where the released zip is: `ADF_STREAM_LAMBDA_ZIP`, else beside the running provider.
pub fn locate() -> Result<PathBuf, String> {
    locate_from(std::env::var_os(ENV_OVERRIDE).map(PathBuf::from), std::env::current_exe().ok())
}

fn locate_from(over: Option<PathBuf>, exe: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(p) = over {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{ENV_OVERRIDE} is {}, which is not a file", p.display()))
        };
    }
    let dir = exe.as_deref().and_then(Path::parent).ok_or("cannot locate the provider binary")?;
    let zip = dir.join(ZIP_NAME);
    if zip.is_file() {
        Ok(zip)
    } else {
        Err(format!(
            "{} is missing: the provider's release archive ships it beside the binary. Reinstall the provider, \
             set {ENV_OVERRIDE}, or set lambda_zip to a package of your own",
            zip.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_wins_and_must_exist() {
        let dir = tempfile::tempdir().expect("tempdir");
        let zip = dir.path().join("mine.zip");
        std::fs::write(&zip, b"zip").expect("write");
        assert_eq!(locate_from(Some(zip.clone()), None), Ok(zip));
        let missing = locate_from(Some(dir.path().join("nope.zip")), None).expect_err("missing");
        assert!(missing.contains(ENV_OVERRIDE), "{missing}");
    }

    #[test]
    fn otherwise_it_sits_beside_the_binary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = dir.path().join("terraform-provider-adf");
        let err = locate_from(None, Some(exe.clone())).expect_err("absent");
        assert!(err.contains("adf-stream-lambda.zip is missing"), "{err}");
        std::fs::write(dir.path().join(ZIP_NAME), b"zip").expect("write");
        assert_eq!(locate_from(None, Some(exe)), Ok(dir.path().join(ZIP_NAME)));
    }
}
