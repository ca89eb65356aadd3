//! `cargo xtask gen-patch-schema`: the strategic-merge metadata of the built-in kinds, read from
//! the OpenAPI v2 document of our own local kube-apiserver and written to
//! `kustomize/src/patch/schema.json`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use e2e::control_plane::{ControlPlane, Options, Tier};
use ferroflux_kustomize::patch::PatchSchema;

/// Where the data is committed, relative to the repository root.
fn data_path() -> PathBuf {
    e2e::repo_root().join("kustomize/src/patch/schema.json")
}

/// Fetches `/openapi/v2` from a fresh API server started for this command, without any CRD
/// installed: only the built-in kinds may enter the data (kustomize merges custom resources
/// without a schema), and the result must not depend on what a shared cluster happens to serve.
async fn fetch_openapi() -> Result<serde_json::Value> {
    e2e::install_crypto_provider();
    let plane = ControlPlane::start(Options {
        tier: Tier::ApiServer,
        crds: Vec::new(),
        ..Options::default()
    })
    .await
    .context("cannot start a local API server")?;
    let client = plane.client().await?;
    let request = http::Request::get("/openapi/v2")
        .header("Accept", "application/json")
        .body(Vec::new())?;
    let text = client
        .request_text(request)
        .await
        .context("cannot read /openapi/v2 from the API server")?;
    serde_json::from_str(&text).context("the API server's /openapi/v2 is not JSON")
}

pub fn run(check: bool) -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let document = runtime.block_on(fetch_openapi())?;
    let schema = PatchSchema::from_openapi(&document)?;
    let wanted = schema.to_data()?;
    let path = data_path();
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current == wanted {
        eprintln!("{} is up to date", path.display());
        return Ok(());
    }
    if check {
        bail!(
            "{} is out of date; run `cargo xtask gen-patch-schema` and commit the result",
            path.display()
        );
    }
    std::fs::write(&path, &wanted).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "wrote {} ({} kinds, {} definitions, {} bytes)",
        path.display(),
        schema.kinds.len(),
        schema.definitions.len(),
        wanted.len()
    );
    Ok(())
}
