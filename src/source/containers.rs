//! Container labels from a process's /proc/PID/cgroup: Docker, containerd
//! (and Kubernetes pods through CRI), CRI-O, Podman, and plain systemd
//! scopes or services. Pure text parsing; the caller reads the file.

/// What a cgroup path says of a Kubernetes pod and a container: the pod's
/// UID (with dashes) and the container's runtime and full 64-digit ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupIds {
    pub pod_uid: Option<String>,
    /// `("containerd" | "cri-o" | "docker" | "podman" | "", full id)`; the
    /// runtime is empty for a cgroupfs-driver path under a pod, which
    /// does not say it.
    pub container: Option<(&'static str, String)>,
    /// The last systemd unit on the path (`nginx.service`), if any.
    pub unit: Option<String>,
}

/// The pod, container and unit the most specific path of /proc/PID/cgroup
/// text names: kubepods slices (systemd driver) or `kubepods/<qos>/pod<uid>/<id>`
/// (cgroupfs driver), containerd, CRI-O, docker and podman scopes.
pub fn cgroup_ids(cgroup: &str) -> CgroupIds {
    // cgroup v2 has one line `0::/path`; v1 has one per hierarchy. The
    // longest path is the most specific.
    let Some(path) = cgroup
        .lines()
        .filter_map(|line| line.splitn(3, ':').nth(2))
        .max_by_key(|p| p.len())
    else {
        return CgroupIds::default();
    };
    let mut ids = CgroupIds::default();
    let mut previous = "";
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if let Some(uid) = pod_uid(part) {
            ids.pod_uid = Some(uid);
        } else if let Some(found) = runtime_container(part) {
            ids.container = Some(found);
        } else if part.ends_with(".service") || part.ends_with(".scope") {
            ids.unit = Some(part.to_string());
        } else if is_container_id(part) {
            // cgroupfs driver: /docker/<id>, /kubepods/<qos>/pod<uid>/<id>
            let runtime = if previous == "docker" { "docker" } else { "" };
            ids.container = Some((runtime, part.to_string()));
        }
        previous = part;
    }
    ids
}

/// The most specific label the cgroup paths give, e.g. `docker:3f4e5a6b7c8d`,
/// `pod:5d2c…/containerd:9a8b…`, `systemd:nginx.service`.
pub fn container_label(cgroup: &str) -> Option<String> {
    let ids = cgroup_ids(cgroup);
    let container = ids.container.as_ref().map(|(runtime, id)| match *runtime {
        "" => short(id).to_string(),
        runtime => format!("{runtime}:{}", short(id)),
    });
    match (ids.pod_uid, container, ids.unit) {
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
fn runtime_container(part: &str) -> Option<(&'static str, String)> {
    let body = part.strip_suffix(".scope")?;
    for (prefix, runtime) in [
        ("docker-", "docker"),
        ("cri-containerd-", "containerd"),
        ("crio-", "cri-o"),
        ("libpod-", "podman"),
    ] {
        if let Some(id) = body.strip_prefix(prefix) {
            if is_container_id(id) {
                return Some((runtime, id.to_string()));
            }
        }
    }
    None
}

pub fn is_container_id(text: &str) -> bool {
    text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// The 12-character form `docker ps` shows.
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
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

    const UID: &str = "5d2c9e1a-7b3f-4c2d-9e8f-0a1b2c3d4e5f";
    const ID: &str = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b";

    fn ids(cgroup: &str) -> (Option<String>, Option<(&'static str, String)>) {
        let ids = cgroup_ids(cgroup);
        (ids.pod_uid, ids.container)
    }

    #[test]
    fn kubepods_systemd_slices_give_the_pod_uid_and_containerd_id() {
        let (uid, container) = ids(&fixture("containerd-kubepods"));
        assert_eq!(uid.as_deref(), Some(UID));
        assert_eq!(container, Some(("containerd", ID.to_string())));
    }

    #[test]
    fn kubepods_cgroupfs_paths_give_the_pod_uid_and_bare_id() {
        let text = format!("0::/kubepods/burstable/pod{UID}/{ID}\n");
        assert_eq!(
            ids(&text),
            (Some(UID.to_string()), Some(("", ID.to_string())))
        );
        // Guaranteed pods sit right under kubepods.
        let text = format!("0::/kubepods/pod{UID}/{ID}\n");
        assert_eq!(
            ids(&text),
            (Some(UID.to_string()), Some(("", ID.to_string())))
        );
    }

    #[test]
    fn crio_scopes_give_the_cri_o_id() {
        let (uid, container) = ids(&fixture("crio-kubepods"));
        assert_eq!(uid.as_deref(), Some("11112222-3333-4444-5555-666677778888"));
        assert_eq!(container, Some(("cri-o", "abcdef".repeat(10) + "abcd")));
    }

    #[test]
    fn docker_scopes_under_kubepods_give_the_docker_id() {
        let uid_ = UID.replace('-', "_");
        let text = format!("0::/kubepods.slice/kubepods-pod{uid_}.slice/docker-{ID}.scope\n");
        assert_eq!(
            ids(&text),
            (Some(UID.to_string()), Some(("docker", ID.to_string())))
        );
        // Plain docker, no pod.
        let (uid, container) = ids(&fixture("docker-systemd"));
        assert_eq!(uid, None);
        assert_eq!(container.map(|c| c.0), Some("docker"));
    }

    #[test]
    fn a_test_owned_parent_above_kubepods_changes_nothing() {
        let uid_ = UID.replace('-', "_");
        let text = format!(
            "0::/tis-k8s-1/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(
            ids(&text),
            (Some(UID.to_string()), Some(("containerd", ID.to_string())))
        );
    }

    #[test]
    fn garbage_is_no_label() {
        assert_eq!(container_label(""), None);
        assert_eq!(container_label("no colons here"), None);
        assert_eq!(container_label("0::/"), None);
        assert_eq!(cgroup_ids("0::/pod/kubepods/"), CgroupIds::default());
    }

    #[test]
    fn this_machine_parses_without_panic() {
        if let Ok(text) = std::fs::read_to_string("/proc/self/cgroup") {
            let _ = container_label(&text);
        }
    }
}
