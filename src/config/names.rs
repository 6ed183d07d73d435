//! Checks for the names a definition carries: DNS labels, hosts, image references.

/// A DNS-1123 label: what Kubernetes requires of namespaces and most object names.
pub fn check_dns_label(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a DNS-1123 label (lower-case letters, digits and `-`, at most 63, starting and ending alphanumeric)"
        ))
    }
}

/// A DNS-1123 subdomain: Secret names, host names.
pub fn check_dns_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 253
        || name.split('.').any(|label| check_dns_label(label).is_err())
    {
        return Err(format!(
            "`{name}` is not a valid DNS name (dot-separated DNS-1123 labels, at most 253 characters)"
        ));
    }
    Ok(())
}

/// A label (or taint) key: an optional DNS-subdomain prefix and `/`, then a name of at most
/// 63 alphanumerics, `-`, `_` and `.`, starting and ending alphanumeric.
pub fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if name_ok && prefix.is_none_or(|p| check_dns_subdomain(p).is_ok()) {
        Ok(())
    } else {
        Err(format!(
            "`{key}` is not a valid label key (an optional DNS prefix and `/`, then at most 63 letters, digits, `-`, `_` or `.`)"
        ))
    }
}

/// A label value: empty, or at most 63 alphanumerics, `-`, `_` and `.`, starting and
/// ending alphanumeric.
pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || check_label_key(value).is_ok() && !value.contains('/') {
        Ok(())
    } else {
        Err(format!(
            "`{value}` is not a valid label value (at most 63 letters, digits, `-`, `_` or `.`)"
        ))
    }
}

/// A host name for an Ingress: a DNS name, optionally with a leading `*.` wildcard.
pub fn check_host(host: &str) -> Result<(), String> {
    check_dns_subdomain(host.strip_prefix("*.").unwrap_or(host))
        .map_err(|_| format!("`{host}` is not a valid host name (for example address.example.com)"))
}

/// An environment variable name.
pub fn check_env_var(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
        ))
    }
}

/// A domain component of the distribution reference grammar: alphanumerics and `-`,
/// starting and ending alphanumeric (upper case allowed: host names are case-blind).
fn is_domain_component(label: &str) -> bool {
    !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// A registry host with an optional port, per the distribution reference grammar:
/// `ghcr.io`, `127.0.0.1:5000`, `localhost:5000`, `[::1]:5000`.
pub fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = match registry.strip_prefix('[') {
        // An IPv6 address: `[` hex and `:` `]`, then an optional `:port`.
        Some(rest) => match rest.split_once(']') {
            Some((address, after)) => {
                let address_ok = !address.is_empty()
                    && address.contains(':')
                    && address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
                match (address_ok, after) {
                    (true, "") => (None, None),
                    (true, after) => (None, Some(after.strip_prefix(':').unwrap_or(after))),
                    (false, _) => (Some(""), None),
                }
            }
            None => (Some(""), None),
        },
        None => match registry.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(registry), None),
        },
    };
    let host_ok = host.is_none_or(|h| h.split('.').all(is_domain_component));
    let port_ok = port.is_none_or(|p| {
        p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(format!(
            "`{registry}` is not a registry host (for example ghcr.io or 127.0.0.1:5000)"
        ))
    }
}

/// A repository path inside a registry, per the distribution reference grammar:
/// `/`-separated components, each lower-case alphanumeric runs joined by exactly one
/// separator (`.`, `_`, `__`, or one or more `-`): `world-address/address-service`.
pub fn check_repository(path: &str) -> Result<(), String> {
    fn component_ok(component: &str) -> bool {
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let mut i = 0;
        loop {
            // An alphanumeric run…
            let run = bytes[i..].iter().take_while(|&&b| alnum(b)).count();
            if run == 0 {
                return false;
            }
            i += run;
            if i == bytes.len() {
                return true;
            }
            // …then one separator before the next run.
            let dashes = bytes[i..].iter().take_while(|&&b| b == b'-').count();
            i += match (dashes, bytes[i], bytes.get(i + 1)) {
                (0, b'_', Some(b'_')) => 2,
                (0, b'.' | b'_', _) => 1,
                (0, _, _) => return false,
                (n, _, _) => n,
            };
        }
    }
    if path.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(format!(
            "`{path}` is not a repository path (lower-case letters and digits in `/`-separated components, joined inside a component by one `.`, `_`, `__` or a run of `-`)"
        ))
    }
}

/// An image tag.
pub fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("`{tag}` is not a valid image tag"))
    }
}

/// A full image reference: `[registry/]repository[:tag][@sha256:<64 hex>]`.
pub fn check_image_reference(reference: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "`{reference}` is not an image reference (for example docker.io/library/nginx:1.27 or repo@sha256:…)"
        )
    };
    let (name, digest) = reference
        .split_once('@')
        .map_or((reference, None), |(n, d)| (n, Some(d)));
    if let Some(digest) = digest {
        let hex = digest.strip_prefix("sha256:").ok_or_else(bad)?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return Err(bad());
        }
    }
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if let Some(tag) = tag {
        check_tag(tag).map_err(|_| bad())?;
    }
    if name.len() > 255 {
        return Err(format!(
            "`{reference}` is not an image reference: the name is longer than 255 characters"
        ));
    }
    // Docker's rule for whether the first component is a registry: it has a `.` or `:`,
    // is `localhost`, or has upper case (which a repository path never does).
    let mut parts = name.splitn(2, '/');
    let first = parts.next().unwrap_or_default();
    let repository = match parts.next() {
        Some(rest)
            if first.contains(['.', ':', '['])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            check_registry(first).map_err(|_| bad())?;
            rest
        }
        _ => name,
    };
    check_repository(repository).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        let good = [
            "nginx",
            "docker.io/library/rust:1.95-bookworm",
            "127.0.0.1:5000/world-address/address-service:abc123",
            "gcr.io/distroless/cc-debian12:nonroot",
            "wactl.local/runtime:bookworm",
            "localhost:5000/a__b/c---d/e.f/g_h",
            "[::1]:5000/world-address/address-service:v1",
            "Registry.Example.com/team/app",
            &format!("ghcr.io/a/b@sha256:{}", "a".repeat(64)),
        ];
        for ok in good {
            assert!(check_image_reference(ok).is_ok(), "{ok}");
        }
        let bad = [
            "",
            "upper/Case",
            "a:b:c",
            "repo@sha256:short",
            "host:99999/x",
            "a//b",
            "x:",
            "a..b",
            "registry.io/a..b:1",
            "a._b",
            "a___b",
            "a_-b",
            "-a/b",
            "a-/b",
            "a.b/c.",
            "-registry.io/x",
            "registry-.io/x",
            "registry.io:/x",
            "[::1/x",
            "[zz]:5000/x",
            &format!("registry.io/{}", "a".repeat(250)),
        ];
        for bad in bad {
            assert!(check_image_reference(bad).is_err(), "{bad}");
        }
        assert_eq!(good.len() + bad.len(), 30, "every case was tried");
    }

    #[test]
    fn repository_components_follow_the_reference_grammar() {
        for ok in [
            "a",
            "a.b",
            "a_b",
            "a__b",
            "a-b",
            "a---b",
            "a.b-c_d__e",
            "0/1/2",
        ] {
            assert_eq!(check_repository(ok), Ok(()), "{ok}");
        }
        for bad in [
            "a..b", "a._b", "a___b", "a_-b", "a-.b", ".a", "a.", "a-", "A", "a/", "/a",
        ] {
            let error = check_repository(bad).expect_err(bad);
            assert!(
                error.starts_with(&format!("`{bad}` is not a repository path")),
                "{error}"
            );
        }
        assert_eq!(check_registry("127.0.0.1:5000"), Ok(()));
        assert_eq!(check_registry("[::1]"), Ok(()));
        for bad in ["a..b", "-a.io", "a.io:0", "a.io:+80", "[::1]x", ""] {
            assert!(check_registry(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dns_names() {
        assert!(check_dns_label("world-address").is_ok());
        for bad in ["World", "-a", "a-", "a_b", "", &"a".repeat(64)] {
            assert!(check_dns_label(bad).is_err(), "{bad}");
        }
        assert!(check_host("*.example.com").is_ok());
        assert!(check_host("exa mple.com").is_err());
    }
}
