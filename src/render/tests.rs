use super::*;
use crate::config;
use serde_json::Value;
use std::path::PathBuf;

fn repo_env(name: &str) -> Environment {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("environments");
    config::load(&dir, name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const ENVIRONMENTS: [&str; 4] = ["local", "dev", "staging", "production"];

#[test]
fn rendering_is_deterministic_and_every_file_names_its_source() {
    for name in ENVIRONMENTS {
        let env = repo_env(name);
        let first = render(&env, &RenderOptions::default()).unwrap();
        let second = render(&env, &RenderOptions::default()).unwrap();
        assert_eq!(first.files, second.files, "{name}");
        for (path, text) in &first.files {
            assert!(
                text.contains(&format!("Rendered by wactl from {name}.yaml")),
                "{name}/{path} lacks its header"
            );
        }
        for expected in [
            "Dockerfile",
            "compose.yaml",
            "nginx/nginx.conf",
            "prometheus/rules.test.yml",
            "grafana/dashboards/address-service.json",
        ] {
            assert!(
                first.files.contains_key(expected),
                "{name}: {expected} missing"
            );
        }
    }
}

#[test]
fn manifests_come_in_apply_order() {
    let rendered = render(&repo_env("staging"), &RenderOptions::default()).unwrap();
    let kinds: Vec<&str> = rendered.manifests.iter().map(|m| m.kind.as_str()).collect();
    let position = |kind: &str| kinds.iter().position(|k| *k == kind).unwrap();
    assert_eq!(kinds[0], "Namespace");
    assert!(position("ServiceAccount") < position("ConfigMap"));
    assert!(position("ConfigMap") < position("Deployment"));
    assert!(position("StatefulSet") < position("Deployment"));
    assert!(position("Deployment") < position("HorizontalPodAutoscaler"));
    assert_eq!(kinds.last(), Some(&"Ingress"));
}

#[test]
fn autoscaled_deployments_leave_replicas_to_the_hpa() {
    let staging = render(&repo_env("staging"), &RenderOptions::default()).unwrap();
    let deployment = staging
        .manifests
        .iter()
        .find(|m| m.kind == "Deployment" && m.name == "address-service")
        .unwrap();
    assert!(deployment.object["spec"].get("replicas").is_none());
    let dev = render(&repo_env("dev"), &RenderOptions::default()).unwrap();
    let deployment = dev
        .manifests
        .iter()
        .find(|m| m.kind == "Deployment")
        .unwrap();
    assert_eq!(deployment.object["spec"]["replicas"], 3);
    assert!(
        !dev.manifests
            .iter()
            .any(|m| m.kind == "HorizontalPodAutoscaler")
    );
}

/// The fields the Pod Security `restricted` profile checks, for every workload.
#[test]
fn every_workload_meets_the_restricted_profile() {
    for name in ENVIRONMENTS {
        let rendered = render(&repo_env(name), &RenderOptions::default()).unwrap();
        let workloads = rendered
            .manifests
            .iter()
            .filter(|m| m.kind == "Deployment" || m.kind == "StatefulSet");
        for workload in workloads {
            let pod = &workload.object["spec"]["template"]["spec"];
            let at = format!("{name}: {} {}", workload.kind, workload.name);
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{at}");
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
                "{at}"
            );
            assert!(
                pod.get("hostNetwork").is_none() && pod.get("hostPID").is_none(),
                "{at}"
            );
            for container in pod["containers"].as_array().unwrap() {
                let sc = &container["securityContext"];
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{at}");
                assert_eq!(
                    sc["capabilities"]["drop"],
                    serde_json::json!(["ALL"]),
                    "{at}"
                );
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{at}");
            }
            for volume in pod["volumes"].as_array().into_iter().flatten() {
                assert!(volume.get("hostPath").is_none(), "{at}");
            }
        }
    }
}

#[test]
fn the_image_option_pins_the_deployed_image() {
    let digest = format!(
        "127.0.0.1:5000/world-address/address-service@sha256:{}",
        "0".repeat(64)
    );
    let rendered = render(
        &repo_env("dev"),
        &RenderOptions {
            image: Some(digest.clone()),
            templates: None,
        },
    )
    .unwrap();
    let deployment = rendered
        .manifests
        .iter()
        .find(|m| m.kind == "Deployment")
        .unwrap();
    assert_eq!(
        deployment.object["spec"]["template"]["spec"]["containers"][0]["image"],
        Value::from(digest)
    );
}

#[test]
fn the_dashboard_has_the_structure_grafana_expects() {
    let rendered = render(&repo_env("staging"), &RenderOptions::default()).unwrap();
    let dashboard: Value =
        serde_json::from_str(&rendered.files["grafana/dashboards/address-service.json"]).unwrap();
    assert!(
        dashboard["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty() && u.len() <= 40)
    );
    assert!(dashboard["title"].is_string());
    assert!(dashboard["schemaVersion"].as_u64().is_some());
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 5);
    let mut ids: Vec<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    for panel in panels {
        assert!(
            panel["gridPos"]["w"].as_u64().is_some() && panel["gridPos"]["h"].as_u64().is_some()
        );
        let target = &panel["targets"][0];
        assert_eq!(target["datasource"]["uid"], "prometheus");
        let expr = target["expr"].as_str().unwrap();
        assert!(
            [
                "http_requests_total",
                "http_request_duration_seconds",
                "address_validations_total",
                "process_"
            ]
            .iter()
            .any(|m| expr.contains(m)),
            "{expr}"
        );
    }
}

fn overrides(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// Renders `dev` with the overrides in `dir`, both ways: compiling the templates it renders
/// (deploy, diff, up) and from every built-in compiled beforehand (`wactl render`), which
/// must agree on the files or the error.
fn render_with(dir: &tempfile::TempDir) -> Result<Rendered, RenderError> {
    let env = repo_env("dev");
    let on_demand = render(
        &env,
        &RenderOptions {
            image: None,
            templates: Some(dir.path().to_owned()),
        },
    );
    let beforehand = BuiltInTemplates::compile()
        .and_then(|built_ins| Renderer::with_built_ins(&env, Some(dir.path()), built_ins))
        .and_then(|renderer| renderer.render(None));
    match (&on_demand, &beforehand) {
        (Ok(a), Ok(b)) => assert_eq!(a.files, b.files),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!("compiled on demand: {a:?}\ncompiled beforehand: {b:?}"),
    }
    on_demand
}

/// `wactl build` renders the Dockerfile alone; its content hash names the image, so it must
/// be the very file `wactl render` writes.
#[test]
fn the_dockerfile_alone_is_the_one_render_writes() {
    for name in ENVIRONMENTS {
        let env = repo_env(name);
        let all = render(&env, &RenderOptions::default()).unwrap();
        assert_eq!(
            dockerfile(&env, None).unwrap(),
            all.files["Dockerfile"],
            "{name}"
        );
    }
    let env = repo_env("dev");
    let overridden = overrides(&[("Dockerfile.tera", "FROM scratch\n# {{ env.name }}")]);
    let all = render_with(&overridden).unwrap();
    let alone = dockerfile(&env, Some(overridden.path())).unwrap();
    assert_eq!(alone, all.files["Dockerfile"]);
    assert!(alone.ends_with("FROM scratch\n# dev\n"), "{alone}");
    // A broken override is reported even when the Dockerfile does not need it.
    let broken = overrides(&[("k8s/service.yaml.tera", "{{ unclosed")]);
    let err = dockerfile(&env, Some(broken.path())).unwrap_err();
    assert!(matches!(err, RenderError::Template { .. }), "{err}");
}

#[test]
fn built_in_templates_compiled_beforehand_render_the_same() {
    for name in ENVIRONMENTS {
        let env = repo_env(name);
        let on_demand = render(&env, &RenderOptions::default()).unwrap();
        let built_ins = BuiltInTemplates::compile().unwrap();
        let beforehand = Renderer::with_built_ins(&env, None, built_ins)
            .and_then(|renderer| renderer.render(None))
            .unwrap();
        assert_eq!(on_demand.files, beforehand.files, "{name}");
    }
}

#[test]
fn an_override_replaces_the_template_of_the_same_path() {
    let dir = overrides(&[(
        "nginx/nginx.conf.tera",
        "events {}\nhttp {}\n# for {{ env.name }}\n",
    )]);
    let rendered = render_with(&dir).unwrap();
    assert!(rendered.files["nginx/nginx.conf"].ends_with("# for dev\n"));
}

#[test]
fn a_template_may_render_several_objects() {
    let many = overrides(&[(
        "k8s/configmap.yaml.tera",
        "{% for i in range(end=3) %}---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: extra-{{ i }}, namespace: {{ env.cluster.namespace }} }\ndata: { i: \"{{ i }}\" }\n{% endfor %}",
    )]);
    let rendered = render_with(&many).unwrap();
    let names: Vec<&str> = rendered
        .manifests
        .iter()
        .filter(|m| m.kind == "ConfigMap")
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["extra-0", "extra-1", "extra-2"]);
    assert!(rendered.files.contains_key("k8s/20-configmap-extra-1.yaml"));

    let twice = overrides(&[(
        "k8s/configmap.yaml.tera",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: same }\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: same }\n",
    )]);
    let err = render_with(&twice).unwrap_err().to_string();
    assert!(
        err.contains("k8s/configmap.yaml.tera") && err.contains("`same` is rendered twice"),
        "{err}"
    );

    let none = overrides(&[("k8s/configmap.yaml.tera", "# nothing\n---\n")]);
    let err = render_with(&none).unwrap_err().to_string();
    assert!(err.contains("rendered no object"), "{err}");
}

#[test]
fn template_mistakes_name_the_template() {
    let typo = overrides(&[(
        "k8s/service.yaml.tera",
        "apiVersion: v1\nkind: Service\nmetadata: { name: s }\nspec: { tpye: ClusterIP }\n",
    )]);
    let err = render_with(&typo).unwrap_err().to_string();
    assert!(
        err.contains("k8s/service.yaml.tera") && err.contains("spec.tpye"),
        "{err}"
    );
}

/// A mistake in a template is placed: the override's file, line and column, the line quoted
/// with the mistake underlined.
#[test]
fn template_mistakes_are_placed_in_the_users_file() {
    let cases = [
        (
            "FROM {{ env.image.builder \n",
            ":1:26: Unexpected end of input",
            "1 | FROM {{ env.image.builder \n  |                          ^",
        ),
        (
            "# a comment\nFROM {{ env.image.nope }}\n",
            ":2:19: Field `nope` is not defined",
            "2 | FROM {{ env.image.nope }}\n  |                   ^^^^",
        ),
        (
            "{{ env.name | nope }}\n",
            ":1:15: Unknown filter `nope`",
            "1 | {{ env.name | nope }}\n  |               ^^^^",
        ),
        (
            "{{ env.nope | json_encode }}\n",
            ":1:4: Invalid type for the value, expected `a defined value (is the name misspelt?)` but got `undefined`",
            "1 | {{ env.nope | json_encode }}\n  |    ^^^",
        ),
        (
            "\n\n{{ get_env(name=\"HOME\") }}",
            ":3:4: get_env is disabled",
            "3 | {{ get_env(name=\"HOME\") }}\n  |    ^^^^^^^^^^^^^^^^^^^^",
        ),
    ];
    for (text, place, quoted) in cases {
        let dir = overrides(&[("Dockerfile.tera", text)]);
        let err = render_with(&dir).unwrap_err();
        assert!(matches!(err, RenderError::Template { .. }), "{err}");
        let err = err.to_string();
        let file = dir.path().join("Dockerfile.tera");
        assert!(
            err.starts_with(&format!("template {}{place}", file.display())),
            "{err}"
        );
        assert!(err.ends_with(quoted), "{err}");
    }
}

/// A built-in template is named by its path in `templates/`.
#[test]
fn a_mistake_in_a_built_in_template_names_it() {
    let engine = super::templates::Engine::new(&["Dockerfile.tera"], None).unwrap();
    let err = engine
        .render("Dockerfile.tera", &tera::Context::new())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("template Dockerfile.tera:"), "{err}");
    assert!(err.contains("not defined"), "{err}");
}

/// tera 1's `json_encode`, which the templates use everywhere: compact, keys in the order
/// they were built, `pretty=true` indented.
#[test]
fn json_encode_writes_what_tera_1_wrote() {
    let dir = overrides(&[(
        "Dockerfile.tera",
        "{{ labels | json_encode() }}\n{{ alert | json_encode(pretty=true) }}\n{{ env.app.port | json_encode }} {{ image | json_encode }} {{ alert.p95_seconds | json_encode }}\n",
    )]);
    let rendered = render_with(&dir).unwrap();
    let dockerfile = &rendered.files["Dockerfile"];
    let body: Vec<&str> = dockerfile.lines().skip(1).collect();
    assert_eq!(
        body[0],
        r#"{"app.kubernetes.io/name":"address-service","app.kubernetes.io/instance":"dev","app.kubernetes.io/part-of":"world-address","app.kubernetes.io/managed-by":"wactl"}"#
    );
    assert_eq!(body[1], "{");
    assert_eq!(body[2], r#"  "error_ratio": 0.05,"#);
    let last = body.last().unwrap();
    assert!(last.starts_with("8080 \""), "{last}");
    assert!(last.ends_with("\" 0.25"), "{last}");
}

#[test]
fn overrides_cannot_reach_outside_the_definition() {
    let unknown = overrides(&[("k8s/servce.yaml.tera", "x")]);
    let err = render_with(&unknown).unwrap_err().to_string();
    assert!(
        err.contains("does not override any template") && err.contains("k8s/service.yaml.tera"),
        "{err}"
    );

    let reads_env = overrides(&[("Dockerfile.tera", "{{ get_env(name=\"HOME\") }}")]);
    let err = render_with(&reads_env).unwrap_err().to_string();
    assert!(err.contains("get_env is disabled"), "{err}");

    let mut refused = 0;
    for (text, tag) in [
        ("{% include \"/etc/passwd\" %}", "include"),
        ("{% extends \"Dockerfile.tera\" %}", "extends"),
        ("{%- block b %}{% endblock %}", "block"),
        (
            "{% component C() %}{{ <C/> }}{% endcomponent %}",
            "component",
        ),
        ("{% import \"m\" as m %}", "import"),
        ("{% macro m(n) %}{{ self::m(n=n) }}{% endmacro %}", "macro"),
    ] {
        let dir = overrides(&[("Dockerfile.tera", text)]);
        let err = render_with(&dir).unwrap_err().to_string();
        assert!(
            err.contains(&format!("`{{% {tag} %}}` is not allowed in an override")),
            "{err}"
        );
        refused += 1;
    }
    assert_eq!(refused, 6);

    let linked = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc/passwd", linked.path().join("Dockerfile.tera")).unwrap();
    let err = render(
        &repo_env("dev"),
        &RenderOptions {
            image: None,
            templates: Some(linked.path().to_owned()),
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("symbolic link"), "{err}");
}

#[test]
fn a_failed_render_keeps_the_previous_output() {
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("dev");
    render(&repo_env("dev"), &RenderOptions::default())
        .unwrap()
        .write(&target)
        .unwrap();
    let before = std::fs::read_to_string(target.join("Dockerfile")).unwrap();
    let broken = overrides(&[("Dockerfile.tera", "{{ nope }}")]);
    assert!(render_with(&broken).is_err());
    assert_eq!(
        std::fs::read_to_string(target.join("Dockerfile")).unwrap(),
        before
    );
    // A second write replaces what the first wrote and leaves anything else alone.
    std::fs::write(target.join("notes.txt"), "x").unwrap();
    render(&repo_env("dev"), &RenderOptions::default())
        .unwrap()
        .write(&target)
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(target.join("notes.txt")).unwrap(),
        "x"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("Dockerfile")).unwrap(),
        before
    );
}

/// An environment compiles only the templates it renders; every built-in compiles.
#[test]
fn every_built_in_template_compiles() {
    let names: Vec<&str> = TEMPLATE_NAMES.iter().map(String::as_str).collect();
    assert!(names.len() > 40, "{names:?}");
    templates::Engine::new(&names, None).unwrap_or_else(|e| panic!("{e}"));
}

/// A broken override is reported even by an environment that does not render it.
#[test]
fn a_broken_override_of_an_unused_template_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("k8s")).unwrap();
    std::fs::write(dir.path().join("k8s/hpa.yaml.tera"), "{{ unclosed").unwrap();
    let env = repo_env("local");
    assert!(
        env.autoscaling.is_none(),
        "local renders no HorizontalPodAutoscaler"
    );
    let err = Renderer::new(&env, Some(dir.path()))
        .err()
        .expect("refused");
    assert!(matches!(err, RenderError::Template { .. }), "{err}");
}
