//! Checks `data/*.yaml` against the World Address schema and embeds it as one JSON map
//! (`$OUT_DIR/world-address.json`), so start-up parses compact JSON instead of YAML.

#[allow(dead_code)]
#[path = "src/schema.rs"]
mod schema;

use std::collections::BTreeMap;
use std::path::Path;

fn main() {
    println!("cargo::rerun-if-changed=data");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let mut files = BTreeMap::new();
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
            .path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_none_or(|e| e != "yaml") || stem == "SOURCE" {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let country: schema::CountryFile =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        files.insert(stem.to_owned(), country);
    }
    let json =
        serde_json::to_string(&files).unwrap_or_else(|e| panic!("serialising the data: {e}"));
    let out = Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|e| panic!("OUT_DIR: {e}")))
        .join("world-address.json");
    std::fs::write(&out, json).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}
