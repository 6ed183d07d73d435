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

/// A registry host with an optional port: `ghcr.io`, `127.0.0.1:5000`.
pub fn check_registry(registry: &str) -> Result<(), String> {
    let (host, port) = registry
        .rsplit_once(':')
        .map_or((registry, None), |(h, p)| (h, Some(p)));
    let host_ok = !host.is_empty()
        && host
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    if host_ok && port_ok {
        Ok(())
    } else {
        Err(format!(
            "`{registry}` is not a registry host (for example ghcr.io or 127.0.0.1:5000)"
        ))
    }
}

/// A repository path inside a registry: `world-address/address-service`.
pub fn check_repository(path: &str) -> Result<(), String> {
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
    };
    if path.split('/').all(component_ok) {
        Ok(())
    } else {
        Err(format!(
            "`{path}` is not a repository path (lower-case components separated by `/`)"
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
    let mut parts = name.splitn(2, '/');
    let first = parts.next().unwrap_or_default();
    let repository = match parts.next() {
        Some(rest) if first.contains(['.', ':']) || first == "localhost" => {
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
        for ok in [
            "nginx",
            "docker.io/library/rust:1.95-bookworm",
            "127.0.0.1:5000/world-address/address-service:abc123",
            "gcr.io/distroless/cc-debian12:nonroot",
            "wactl.local/runtime:bookworm",
            &format!("ghcr.io/a/b@sha256:{}", "a".repeat(64)),
        ] {
            assert!(check_image_reference(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "UPPER/case",
            "a:b:c",
            "repo@sha256:short",
            "host:99999/x",
            "a//b",
            "x:",
        ] {
            assert!(check_image_reference(bad).is_err(), "{bad}");
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
