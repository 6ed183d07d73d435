//! Kubernetes resource quantities (`250m`, `1.5`, `128Mi`, `1e3`), parsed to compare them.

/// A parsed quantity: what was written, and its value in base units.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantity {
    pub text: String,
    pub value: f64,
}

/// The largest accepted value in base units (2^53: exact in an f64).
const MAX_VALUE: f64 = 9_007_199_254_740_992.0;

impl Quantity {
    /// Parses the Kubernetes quantity grammar: a signed decimal number and an optional
    /// binary (`Ki`…`Ei`), decimal (`n`, `u`, `m`, `k`, `M`…`E`) or exponent suffix.
    pub fn parse(text: &str) -> Result<Self, String> {
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(split);
        let digits = number.trim_start_matches(['+', '-']);
        let valid_number = !digits.is_empty()
            && digits != "."
            && digits.chars().filter(|c| *c == '.').count() <= 1
            && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
            && number.len() - digits.len() <= 1;
        if !valid_number {
            return Err(format!(
                "`{text}` is not a Kubernetes quantity (examples: 250m, 0.5, 128Mi, 2Gi)"
            ));
        }
        let base: f64 = number
            .parse()
            .map_err(|_| format!("`{text}` is not a Kubernetes quantity"))?;
        let multiplier = match suffix {
            "" => 1.0,
            "n" => 1e-9,
            "u" => 1e-6,
            "m" => 1e-3,
            "k" => 1e3,
            "M" => 1e6,
            "G" => 1e9,
            "T" => 1e12,
            "P" => 1e15,
            "E" => 1e18,
            "Ki" => 1024.0,
            "Mi" => 1024f64.powi(2),
            "Gi" => 1024f64.powi(3),
            "Ti" => 1024f64.powi(4),
            "Pi" => 1024f64.powi(5),
            "Ei" => 1024f64.powi(6),
            exp if exp.starts_with(['e', 'E']) => {
                let power: i32 = exp[1..]
                    .parse()
                    .map_err(|_| format!("`{text}` has an invalid exponent `{exp}`"))?;
                10f64.powi(power)
            }
            other => {
                return Err(format!(
                    "`{text}` has an unknown suffix `{other}` (use one of Ki Mi Gi Ti Pi Ei, n u m k M G T P E)"
                ));
            }
        };
        let value = base * multiplier;
        // Kubernetes keeps quantities as 64-bit integers of milli-units; beyond 2^53 base
        // units (8 PiB of memory, 9·10^15 CPUs) a value is a mistake, not a size.
        if !value.is_finite() || value.abs() > MAX_VALUE {
            return Err(format!(
                "`{text}` is larger than any resource Kubernetes can hold (at most 8Pi, or 9e15 CPUs)"
            ));
        }
        Ok(Self {
            text: text.to_owned(),
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Quantity;

    #[test]
    fn refuses_values_no_resource_has() {
        for text in ["1e400", "99999999999999999999999999999Ei", "16Pi", "1e16"] {
            let error = Quantity::parse(text).expect_err(text);
            assert!(
                error.contains("larger than any resource"),
                "{text}: {error}"
            );
        }
        assert_eq!(
            Quantity::parse("8Pi").map(|q| q.value),
            Ok(9_007_199_254_740_992.0)
        );
    }

    #[test]
    fn parses_the_kubernetes_grammar() {
        for (text, value) in [
            ("250m", 0.25),
            ("1", 1.0),
            ("1.5", 1.5),
            ("128Mi", 134_217_728.0),
            ("1e3", 1000.0),
            ("2k", 2000.0),
            (".5", 0.5),
        ] {
            let q = Quantity::parse(text).unwrap();
            assert!((q.value - value).abs() < 1e-9, "{text}: {}", q.value);
        }
    }

    #[test]
    fn rejects_nonsense() {
        for text in ["", "Mi", "12Mb", "1.2.3", "ten", "1Gi ", "--1", "."] {
            assert!(Quantity::parse(text).is_err(), "{text} parsed");
        }
    }
}
