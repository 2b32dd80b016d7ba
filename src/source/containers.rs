//! Container labels from a process's /proc/PID/cgroup: Docker, containerd
//! (and Kubernetes pods through CRI), CRI-O, Podman, and plain systemd
//! scopes or services. Pure text parsing; the caller reads the file.

/// The most specific label the cgroup paths give, e.g. `docker:3f4e5a6b7c8d`,
/// `pod:5d2c…/containerd:9a8b…`, `systemd:nginx.service`.
pub fn container_label(cgroup: &str) -> Option<String> {
    // cgroup v2 has one line `0::/path`; v1 has one per hierarchy. The
    // longest path is the most specific.
    let path = cgroup
        .lines()
        .filter_map(|line| line.splitn(3, ':').nth(2))
        .max_by_key(|p| p.len())?;
    let mut pod = None;
    let mut container = None;
    let mut unit = None;
    let mut previous = "";
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if let Some(uid) = pod_uid(part) {
            pod = Some(uid);
        } else if let Some(label) = runtime_container(part) {
            container = Some(label);
        } else if part.ends_with(".service") || part.ends_with(".scope") {
            unit = Some(part.to_string());
        } else if is_container_id(part) {
            // cgroupfs driver: /docker/<id>, /kubepods/<qos>/pod<uid>/<id>
            container = Some(match previous {
                "docker" => format!("docker:{}", short(part)),
                _ => short(part).to_string(),
            });
        }
        previous = part;
    }
    match (pod, container, unit) {
        (Some(pod), Some(c), _) => Some(format!("pod:{pod}/{c}")),
        (Some(pod), None, _) => Some(format!("pod:{pod}")),
        (None, Some(c), _) => Some(c),
        (None, None, Some(unit)) if unit != "init.scope" => Some(format!("systemd:{unit}")),
        _ => None,
    }
}

/// `kubepods-burstable-pod<uid>.slice` (systemd driver) or `pod<uid>`
/// (cgroupfs driver); systemd writes the uid's dashes as underscores.
fn pod_uid(part: &str) -> Option<String> {
    let body = part.strip_suffix(".slice").unwrap_or(part);
    let at = body.rfind("pod")?;
    let uid = &body[at + 3..];
    let looks_like_uid = uid.len() >= 32
        && uid
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == '-' || c == '_');
    (looks_like_uid && (at == 0 || body.starts_with("kubepods"))).then(|| uid.replace('_', "-"))
}

/// `<runtime>-<id>.scope` as the runtimes' systemd drivers name them.
fn runtime_container(part: &str) -> Option<String> {
    let body = part.strip_suffix(".scope")?;
    for (prefix, runtime) in [
        ("docker-", "docker"),
        ("cri-containerd-", "containerd"),
        ("crio-", "cri-o"),
        ("libpod-", "podman"),
    ] {
        if let Some(id) = body.strip_prefix(prefix) {
            if is_container_id(id) {
                return Some(format!("{runtime}:{}", short(id)));
            }
        }
    }
    None
}

fn is_container_id(text: &str) -> bool {
    text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// The 12-character form `docker ps` shows.
fn short(id: &str) -> &str {
    &id[..12]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("testdata/cgroup/{name}")).unwrap()
    }

    #[test]
    fn runtimes_and_pods() {
        for (file, want) in [
            ("docker-systemd", Some("docker:3f4e5a6b7c8d")),
            ("docker-cgroupfs-v1", Some("docker:3f4e5a6b7c8d")),
            (
                "containerd-kubepods",
                Some("pod:5d2c9e1a-7b3f-4c2d-9e8f-0a1b2c3d4e5f/containerd:9a8b7c6d5e4f"),
            ),
            (
                "crio-kubepods",
                Some("pod:11112222-3333-4444-5555-666677778888/cri-o:abcdefabcdef"),
            ),
            ("podman", Some("podman:0123456789ab")),
            ("systemd-service", Some("systemd:nginx.service")),
            ("host-init", None),
        ] {
            assert_eq!(container_label(&fixture(file)).as_deref(), want, "{file}");
        }
    }

    #[test]
    fn garbage_is_no_label() {
        assert_eq!(container_label(""), None);
        assert_eq!(container_label("no colons here"), None);
        assert_eq!(container_label("0::/"), None);
    }

    #[test]
    fn this_machine_parses_without_panic() {
        if let Ok(text) = std::fs::read_to_string("/proc/self/cgroup") {
            let _ = container_label(&text);
        }
    }
}
