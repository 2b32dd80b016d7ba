//! deploy/daemonset.yaml: valid against Kubernetes' schema (with
//! `kubernetes-validate` from PyPI, where installed), holding what a node
//! agent needs (host network and PIDs, a read-only root, limits, the
//! kubelet's log directories, cgroups and /run/netns mounted read-only),
//! the capability each of its options needs, and options this binary
//! accepts. Parsing the YAML needs python3 with PyYAML; without it, SKIP.

mod common;

use std::process::Command;

use serde_json::Value;

const MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/daemonset.yaml");

/// The manifest as JSON, through PyYAML; None (SKIP) without it.
fn manifest() -> Option<Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
            MANIFEST,
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "SKIP {}: python3 with PyYAML: {}",
            module_path!(),
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    Some(serde_json::from_slice(&out.stdout).expect("JSON from PyYAML"))
}

fn container(daemonset: &Value) -> &Value {
    &daemonset["spec"]["template"]["spec"]["containers"][0]
}

fn args(daemonset: &Value) -> Vec<String> {
    container(daemonset)["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string args").to_string())
        .collect()
}

#[test]
fn the_daemonset_is_a_read_only_host_agent_with_limits_and_the_nodes_files() {
    let Some(daemonset) = manifest() else {
        return;
    };
    assert_eq!(daemonset["kind"], "DaemonSet");
    let pod = &daemonset["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["hostPID"], true);
    assert_eq!(pod["automountServiceAccountToken"], false);
    let c = container(&daemonset);
    let security = &c["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["privileged"], false);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
    for resource in ["cpu", "memory"] {
        assert!(
            c["resources"]["limits"][resource].is_string(),
            "{resource} limit"
        );
        assert!(
            c["resources"]["requests"][resource].is_string(),
            "{resource} request"
        );
    }
    // Every host path the agent reads, mounted read-only where it looks.
    let mounts = c["volumeMounts"].as_array().expect("mounts");
    let volumes = pod["volumes"].as_array().expect("volumes");
    for path in [
        "/var/log/pods",
        "/var/log/containers",
        "/sys/fs/cgroup",
        "/run/netns",
    ] {
        let mount = mounts
            .iter()
            .find(|m| m["mountPath"] == path)
            .unwrap_or_else(|| panic!("no mount at {path}"));
        assert_eq!(mount["readOnly"], true, "{path}");
        let volume = volumes
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("no volume for {path}"));
        assert_eq!(volume["hostPath"]["path"], path);
    }
    let port = c["ports"][0]["containerPort"].as_u64().expect("a port");
    let args = args(&daemonset);
    let listen = args
        .iter()
        .position(|a| a == "--listen")
        .and_then(|at| args.get(at + 1))
        .expect("--listen");
    assert!(
        listen.ends_with(&format!(":{port}")),
        "{listen} against port {port}"
    );
}

#[test]
fn the_daemonset_adds_the_capability_each_of_its_options_needs() {
    let Some(daemonset) = manifest() else {
        return;
    };
    let added: Vec<&str> = container(&daemonset)["securityContext"]["capabilities"]["add"]
        .as_array()
        .expect("capabilities")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let args = args(&daemonset);
    let has = |option: &str| args.iter().any(|a| a == option);
    let index = args
        .iter()
        .position(|a| a == "--index")
        .and_then(|at| args.get(at + 1))
        .map(String::as_str);
    let mut needed = Vec::new();
    if matches!(index, Some("pod" | "process")) || has("-p") || has("--processes") {
        needed.extend(["SYS_PTRACE", "DAC_READ_SEARCH"]);
    }
    if has("--all-netns") || has("--netns") {
        needed.extend(["SYS_ADMIN", "SYS_PTRACE"]);
    }
    if has("--precision") {
        needed.push("PERFMON");
    }
    for capability in needed {
        assert!(
            added.contains(&capability),
            "{capability} for {args:?}: {added:?}"
        );
    }
}

#[test]
fn the_daemonsets_options_are_accepted_by_this_binary() {
    skip_unless_root!();
    let Some(daemonset) = manifest() else {
        return;
    };
    // Its options for a second's run, printing instead of serving.
    let mut args = args(&daemonset);
    if let Some(at) = args.iter().position(|a| a == "--listen") {
        args.drain(at..(at + 2).min(args.len()));
    }
    if let Some(at) = args.iter().position(|a| a == "--poll") {
        args[at + 1] = "500ms".to_string();
    }
    let out = Command::new(common::BIN)
        .args(&args)
        .args(["--timeout", "1s", "--format", "json"])
        .output()
        .expect("run tcpipstat");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_daemonset_passes_the_kubernetes_schema() {
    let tool = std::env::var("KUBERNETES_VALIDATE").unwrap_or("kubernetes-validate".into());
    let Ok(out) = Command::new(&tool)
        .args(["--strict", "--quiet", MANIFEST])
        .output()
    else {
        eprintln!(
            "SKIP {}: no {tool} (pip install kubernetes-validate; .ci/run does)",
            module_path!()
        );
        return;
    };
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
