//! The pull-request comment of a preview environment: where it runs, until when, its state.

/// What a preview comment says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewState {
    /// Deployed (or redeployed after a push).
    Up,
    /// The deploy failed.
    Failed,
    /// Removed by `preview down` or `preview gc`.
    Removed,
}

/// The marker wactl finds its preview comment by (one per preview environment).
pub fn preview_marker(preview: &str) -> String {
    format!("<!-- wactl:preview:{preview} -->")
}

/// The comment body: state, namespace, URL, image and expiry.
pub fn preview_markdown(
    preview: &str,
    state: PreviewState,
    namespace: &str,
    url: Option<&str>,
    image: Option<&str>,
    expires_at: Option<&str>,
) -> String {
    let code = |t: &str| t.replace('`', "'");
    let mut md = format!("## wactl preview `{}`\n\n", code(preview));
    md.push_str(match state {
        PreviewState::Up => "State: **up**\n\n",
        PreviewState::Failed => "State: **failed** (see the workflow run)\n\n",
        PreviewState::Removed => "State: **removed** (namespace deleted)\n\n",
    });
    md.push_str(&format!("- Namespace: `{}`\n", code(namespace)));
    if state != PreviewState::Removed {
        match url {
            Some(url) => md.push_str(&format!("- URL: {url}\n")),
            None => md.push_str("- URL: none (the base environment has no Ingress host)\n"),
        }
        if let Some(image) = image {
            md.push_str(&format!("- Image: `{}`\n", code(image)));
        }
        if let Some(expires_at) = expires_at {
            md.push_str(&format!(
                "- Expires: {} (then `wactl preview gc` removes it)\n",
                code(expires_at)
            ));
        }
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_comment_names_state_url_and_expiry() {
        let up = preview_markdown(
            "staging-pr-7",
            PreviewState::Up,
            "world-address-staging-pr-7",
            Some("https://pr-7.staging.example.org/"),
            Some("r/a@sha256:abc"),
            Some("2026-12-03T12:00:00Z"),
        );
        assert!(up.contains("State: **up**"), "{up}");
        assert!(up.contains("https://pr-7.staging.example.org/"), "{up}");
        assert!(up.contains("2026-12-03T12:00:00Z"), "{up}");
        let removed = preview_markdown("s-pr-7", PreviewState::Removed, "ns", None, None, None);
        assert!(
            removed.contains("**removed**") && !removed.contains("URL"),
            "{removed}"
        );
        assert_eq!(preview_marker("s-pr-7"), "<!-- wactl:preview:s-pr-7 -->");
    }
}
