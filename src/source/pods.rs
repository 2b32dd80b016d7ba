//! Kubernetes pod and container names without an API server: a process's
//! cgroup gives its pod UID and container ID (see `containers`), and the
//! kubelet's log directories give their names. Reads only files a node has.
//!
//! - `/var/log/pods/<namespace>_<pod>_<uid>/`: pod UID → namespace, pod.
//! - `/var/log/containers/<pod>_<namespace>_<container>-<id>.log`: the
//!   symlink the kubelet makes for every container it starts, whatever the
//!   runtime: container ID → container name (and its pod, checked against
//!   the UID's). Where that directory has no entry, a pod with a single
//!   container directory under `/var/log/pods/…/` names it by that.
//!
//! Kubernetes names (DNS labels and subdomains) hold no `_`, so both
//! layouts split on it without ambiguity.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::containers::{cgroup_ids, container_label, is_container_id, short, CgroupIds};

/// Entries read from each directory at most; past it, entries are counted
/// in [`PodNames::skipped`] and go unnamed.
pub const MAX_ENTRIES: usize = 100_000;

/// How a group of `--index pod` is named: a pod's namespace, name and
/// container, or (namespace and pod empty) the label `--index container`
/// would give, `none` when there is none.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodLabel {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

impl PodLabel {
    /// A label for what no pod names.
    pub fn unnamed(container: impl Into<String>) -> PodLabel {
        PodLabel {
            namespace: String::new(),
            pod: String::new(),
            container: container.into(),
        }
    }

    pub fn is_named(&self) -> bool {
        !self.pod.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pod {
    namespace: String,
    name: String,
    /// The container directories under its log directory.
    containers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Container {
    namespace: String,
    pod: String,
    name: String,
}

/// Names read from the kubelet's log directories under a root (`/` on a
/// node; a test's directory in unit tests).
#[derive(Debug, Default)]
pub struct PodNames {
    root: PathBuf,
    pods: HashMap<String, Pod>,
    containers: HashMap<String, Container>,
    /// The directories' modification times when last read: entries are
    /// re-read only when one changed.
    read_at: Option<(Option<SystemTime>, Option<SystemTime>)>,
    skipped: u64,
}

impl PodNames {
    pub fn new(root: impl Into<PathBuf>) -> PodNames {
        PodNames {
            root: root.into(),
            ..PodNames::default()
        }
    }

    fn pods_dir(&self) -> PathBuf {
        self.root.join("var/log/pods")
    }

    fn containers_dir(&self) -> PathBuf {
        self.root.join("var/log/containers")
    }

    /// Entries past [`MAX_ENTRIES`] left unread, over every read.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Re-reads both directories if either changed since the last read
    /// (a pod or container came or went).
    pub fn refresh(&mut self) {
        let modified = |dir: &Path| std::fs::metadata(dir).and_then(|m| m.modified()).ok();
        let stamp = (modified(&self.pods_dir()), modified(&self.containers_dir()));
        if self.read_at == Some(stamp) {
            return;
        }
        self.read_at = Some(stamp);
        self.pods.clear();
        self.containers.clear();
        let pods_dir = self.pods_dir();
        for name in self.entries(&pods_dir) {
            if let Some((uid, mut pod)) = parse_pod_dir(&name) {
                pod.containers = self.entries(&pods_dir.join(&name));
                self.pods.insert(uid, pod);
            }
        }
        for name in self.entries(&self.containers_dir()) {
            if let Some((id, container)) = parse_container_link(&name) {
                self.containers.insert(id, container);
            }
        }
    }

    /// Names in `dir`, [`MAX_ENTRIES`] at most; none if it cannot be read.
    fn entries(&mut self, dir: &Path) -> Vec<String> {
        let Ok(read) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for entry in read.flatten() {
            if names.len() == MAX_ENTRIES {
                self.skipped += 1;
                continue;
            }
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names
    }

    /// The label of a process whose /proc/PID/cgroup reads `cgroup`.
    pub fn label_of_cgroup(&self, cgroup: &str) -> PodLabel {
        let ids = cgroup_ids(cgroup);
        self.label_of_ids(&ids).unwrap_or_else(|| {
            PodLabel::unnamed(container_label(cgroup).unwrap_or_else(|| NONE.into()))
        })
    }

    fn label_of_ids(&self, ids: &CgroupIds) -> Option<PodLabel> {
        let by_id = ids
            .container
            .as_ref()
            .and_then(|(_, id)| self.containers.get(id));
        let Some(uid) = &ids.pod_uid else {
            // A container the kubelet started, seen without its pod's
            // slice (a cgroup namespace, or the docker driver's path).
            let c = by_id?;
            return Some(PodLabel {
                namespace: c.namespace.clone(),
                pod: c.pod.clone(),
                container: c.name.clone(),
            });
        };
        let pod = self.pods.get(uid)?;
        let container = match by_id {
            Some(c) if c.namespace == pod.namespace && c.pod == pod.name => c.name.clone(),
            // Not (yet) linked: a pod of one container can only be that.
            _ if pod.containers.len() == 1 && ids.container.is_some() => pod.containers[0].clone(),
            _ => ids
                .container
                .as_ref()
                .map(|(runtime, id)| match *runtime {
                    "" => short(id).to_string(),
                    runtime => format!("{runtime}:{}", short(id)),
                })
                .unwrap_or_default(),
        };
        Some(PodLabel {
            namespace: pod.namespace.clone(),
            pod: pod.name.clone(),
            container,
        })
    }

    /// The label of a process, from /proc/PID/cgroup; `none` when that
    /// cannot be read.
    pub fn label_of_pid(&self, pid: u32) -> PodLabel {
        match std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
            Ok(text) => self.label_of_cgroup(&text),
            Err(_) => PodLabel::unnamed(NONE),
        }
    }

    /// The label of sockets no process holds, from their namespace's
    /// container label (`pod:<uid>/…` names the pod, with no container).
    pub fn label_of_namespace(&self, container: Option<&str>) -> PodLabel {
        let Some(label) = container else {
            return PodLabel::unnamed(NONE);
        };
        let uid = label
            .strip_prefix("pod:")
            .map(|rest| rest.split('/').next().unwrap_or(rest));
        match uid.and_then(|uid| self.pods.get(uid)) {
            Some(pod) => PodLabel {
                namespace: pod.namespace.clone(),
                pod: pod.name.clone(),
                container: String::new(),
            },
            None => PodLabel::unnamed(label),
        }
    }
}

/// The container label of what no cgroup names.
pub const NONE: &str = "none";

/// `<namespace>_<pod>_<uid>` → (uid, pod).
fn parse_pod_dir(name: &str) -> Option<(String, Pod)> {
    let mut parts = name.splitn(3, '_');
    let (namespace, pod, uid) = (parts.next()?, parts.next()?, parts.next()?);
    let uid_like = uid.len() >= 32 && uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    (!namespace.is_empty() && !pod.is_empty() && uid_like).then(|| {
        (
            uid.to_string(),
            Pod {
                namespace: namespace.to_string(),
                name: pod.to_string(),
                containers: Vec::new(),
            },
        )
    })
}

/// `<pod>_<namespace>_<container>-<64 hex>.log` → (id, container).
fn parse_container_link(name: &str) -> Option<(String, Container)> {
    let (rest, id) = name.strip_suffix(".log")?.rsplit_once('-')?;
    if !is_container_id(id) {
        return None;
    }
    let mut parts = rest.splitn(3, '_');
    let (pod, namespace, container) = (parts.next()?, parts.next()?, parts.next()?);
    if [pod, namespace, container].iter().any(|p| p.is_empty()) || container.contains('_') {
        return None;
    }
    Some((
        id.to_string(),
        Container {
            namespace: namespace.to_string(),
            pod: pod.to_string(),
            name: container.to_string(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "5d2c9e1a-7b3f-4c2d-9e8f-0a1b2c3d4e5f";
    const ID: &str = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b";

    fn containerd_cgroup(uid: &str, id: &str) -> String {
        format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{id}.scope\n",
            uid.replace('-', "_")
        )
    }

    /// A kubelet-like layout under a fresh directory: pod `shop/web-0`
    /// with containers `nginx` (linked to ID) and `sidecar`.
    fn layout(link: bool, containers: &[&str]) -> (TestDir, PodNames) {
        let dir = TestDir::new();
        let pod_dir = dir.path().join(format!("var/log/pods/shop_web-0_{UID}"));
        for c in containers {
            std::fs::create_dir_all(pod_dir.join(c)).unwrap();
            std::fs::write(pod_dir.join(c).join("0.log"), "").unwrap();
        }
        let links = dir.path().join("var/log/containers");
        std::fs::create_dir_all(&links).unwrap();
        if link {
            std::os::unix::fs::symlink(
                pod_dir.join("nginx/0.log"),
                links.join(format!("web-0_shop_nginx-{ID}.log")),
            )
            .unwrap();
        }
        let mut names = PodNames::new(dir.path());
        names.refresh();
        (dir, names)
    }

    /// A directory of its own under the temporary one, removed on drop.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new() -> TestDir {
            static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("tcpipstat-pods-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TestDir(dir)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn named(namespace: &str, pod: &str, container: &str) -> PodLabel {
        PodLabel {
            namespace: namespace.into(),
            pod: pod.into(),
            container: container.into(),
        }
    }

    #[test]
    fn pod_directories_split_into_namespace_pod_and_uid() {
        let (uid, pod) =
            parse_pod_dir(&format!("kube-system_coredns-5d78c9869d-abcde_{UID}")).unwrap();
        assert_eq!(uid, UID);
        assert_eq!(
            (pod.namespace.as_str(), pod.name.as_str()),
            ("kube-system", "coredns-5d78c9869d-abcde")
        );
        assert_eq!(parse_pod_dir("default_web"), None);
        assert_eq!(parse_pod_dir("default_web_notauid"), None);
    }

    #[test]
    fn container_links_split_into_pod_namespace_container_and_id() {
        let (id, c) = parse_container_link(&format!("web-0_shop_my-app-{ID}.log")).unwrap();
        assert_eq!(id, ID);
        assert_eq!(
            c,
            Container {
                namespace: "shop".into(),
                pod: "web-0".into(),
                name: "my-app".into()
            }
        );
        assert_eq!(
            parse_container_link(&format!("web-0_shop_app-{ID}.txt")),
            None
        );
        assert_eq!(parse_container_link("web-0_shop_app-1234.log"), None);
        assert_eq!(parse_container_link(&format!("web-0_app-{ID}.log")), None);
    }

    #[test]
    fn a_linked_container_is_named_by_its_link() {
        let (_dir, names) = layout(true, &["nginx", "sidecar"]);
        assert_eq!(
            names.label_of_cgroup(&containerd_cgroup(UID, ID)),
            named("shop", "web-0", "nginx")
        );
    }

    #[test]
    fn an_unlinked_container_of_a_pod_keeps_its_short_id() {
        let (_dir, names) = layout(false, &["nginx", "sidecar"]);
        assert_eq!(
            names.label_of_cgroup(&containerd_cgroup(UID, ID)),
            named("shop", "web-0", "containerd:9a8b7c6d5e4f")
        );
    }

    #[test]
    fn an_unlinked_container_of_a_one_container_pod_is_that_container() {
        let (_dir, names) = layout(false, &["nginx"]);
        assert_eq!(
            names.label_of_cgroup(&containerd_cgroup(UID, ID)),
            named("shop", "web-0", "nginx")
        );
    }

    #[test]
    fn a_pod_the_logs_do_not_know_keeps_the_container_label() {
        let (_dir, names) = layout(true, &["nginx"]);
        let other = "11112222-3333-4444-5555-666677778888";
        assert_eq!(
            names.label_of_cgroup(&containerd_cgroup(other, ID)),
            PodLabel::unnamed(format!("pod:{other}/containerd:9a8b7c6d5e4f"))
        );
        assert_eq!(
            names.label_of_cgroup("0::/user.slice/sshd.service\n"),
            PodLabel::unnamed("systemd:sshd.service")
        );
        assert_eq!(names.label_of_cgroup("0::/\n"), PodLabel::unnamed(NONE));
    }

    #[test]
    fn a_linked_container_without_its_pod_slice_is_named_by_its_link() {
        let (_dir, names) = layout(true, &["nginx"]);
        let cgroup = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(
            names.label_of_cgroup(&cgroup),
            named("shop", "web-0", "nginx")
        );
    }

    #[test]
    fn namespaces_of_a_known_pod_are_named_without_a_container() {
        let (_dir, names) = layout(true, &["nginx"]);
        let sandbox = format!("pod:{UID}/containerd:0123456789ab");
        assert_eq!(
            names.label_of_namespace(Some(&sandbox)),
            named("shop", "web-0", "")
        );
        assert_eq!(
            names.label_of_namespace(Some("docker:0123456789ab")),
            PodLabel::unnamed("docker:0123456789ab")
        );
        assert_eq!(names.label_of_namespace(None), PodLabel::unnamed(NONE));
    }

    #[test]
    fn new_pods_are_read_when_the_directory_changes() {
        let (dir, mut names) = layout(true, &["nginx"]);
        let uid = "11112222-3333-4444-5555-666677778888";
        let cgroup = containerd_cgroup(uid, ID);
        assert!(!names.label_of_cgroup(&cgroup).is_named());
        // mtime granularity: make sure the directory's time moves.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::create_dir_all(
            dir.path()
                .join(format!("var/log/pods/db_pg-0_{uid}/postgres")),
        )
        .unwrap();
        names.refresh();
        assert_eq!(names.label_of_cgroup(&cgroup).pod, "pg-0");
    }

    #[test]
    fn missing_directories_name_nothing() {
        let mut names = PodNames::new("/nonexistent-root-for-tcpipstat");
        names.refresh();
        assert!(!names
            .label_of_cgroup(&containerd_cgroup(UID, ID))
            .is_named());
        assert_eq!(names.skipped(), 0);
    }
}
