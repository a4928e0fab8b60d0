//! Finding a pod's network namespace from the node: which host process is a container's init
//! process, found through its container ID in `/proc/*/cgroup`; and, as a fallback, which
//! network namespace's `eth0` holds the pod's IP.
//!
//! Everything here is pure (scripts as text, parsers of their output, decisions), so it is tested
//! on recorded real outputs; [`crate::kube::place`] runs the scripts in the node probe.

use crate::error::{Error, Result};
use std::net::Ipv4Addr;

/// The shell script that lists, for every process whose `/proc/<pid>/cgroup` names the container
/// ID given as `$1`, a block `PID <pid>`, its `Name`, `PPid` and `NSpid` status lines and its
/// cgroup lines (the format of `fixtures/recorded/node/proc-test-tools-processes.txt`). Run as
/// `sh -c SCRIPT sh <container-id>` in the node probe (hostPID, so `/proc` is the node's).
pub const FIND_CONTAINER_PROCESSES: &str = r#"id="$1"
for f in $(grep -l -F -e "$id" /proc/[0-9]*/cgroup 2>/dev/null); do
  d="${f%/cgroup}"
  echo "PID ${d#/proc/}"
  grep -E '^(Name|PPid|NSpid):' "$d/status" 2>/dev/null
  cat "$f" 2>/dev/null
done
exit 0
"#;

/// The shell script of the fallback: for every distinct network namespace on the node (one per
/// inode of `/proc/<pid>/ns/net`), a line `NETNS <pid> <inode>` followed by one line of
/// `ip -j -4 addr show dev eth0` run inside it (namespaces without `eth0` print `[]` or nothing).
pub const LIST_NETNS_ETH0: &str = r#"seen=" "
for p in /proc/[0-9]*; do
  ino=$(stat -L -c %i "$p/ns/net" 2>/dev/null) || continue
  case "$seen" in *" $ino "*) continue ;; esac
  seen="$seen$ino "
  echo "NETNS ${p#/proc/} $ino"
  nsenter --net="$p/ns/net" -- ip -j -4 addr show dev eth0 2>/dev/null | tr -d '\n'
  echo
done
exit 0
"#;

/// A container ID as the kubelet reports it (`status.containerStatuses[].containerID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerId {
    /// `containerd`, `cri-o`, `docker`.
    pub runtime: String,
    /// The hex ID.
    pub id: String,
}

impl ContainerId {
    /// Parses `containerd://<id>`, `cri-o://<id>`, `docker://<id>`. The ID must be hex (it is
    /// passed to a script and matched against cgroup paths).
    pub fn parse(s: &str) -> Result<ContainerId> {
        let (runtime, id) = s.split_once("://").ok_or_else(|| {
            Error::parse("containerID", format!("`{s}` is not `<runtime>://<id>`"))
        })?;
        if id.len() < 12 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::parse(
                "containerID",
                format!("`{s}`: the ID is not a hex container ID"),
            ));
        }
        Ok(ContainerId {
            runtime: runtime.to_string(),
            id: id.to_ascii_lowercase(),
        })
    }
}

/// One process listed by [`FIND_CONTAINER_PROCESSES`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessEntry {
    /// The PID on the node.
    pub pid: u32,
    /// `Name:` from `/proc/<pid>/status`.
    pub name: String,
    /// `PPid:`.
    pub ppid: Option<u32>,
    /// `NSpid:`: the PID in each nested PID namespace, outermost first.
    pub nspid: Vec<u32>,
    /// The cgroup lines (`9:name=systemd:/kubepods/...`, `0::/...`).
    pub cgroups: Vec<String>,
}

impl ProcessEntry {
    /// The cgroup paths (the part after the second `:` of each line).
    pub fn cgroup_paths(&self) -> impl Iterator<Item = &str> {
        self.cgroups.iter().filter_map(|l| l.splitn(3, ':').nth(2))
    }
}

/// Parses the output of [`FIND_CONTAINER_PROCESSES`].
pub fn parse_process_list(text: &str) -> Result<Vec<ProcessEntry>> {
    let mut out: Vec<ProcessEntry> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        if let Some(pid) = line.strip_prefix("PID ") {
            let pid = pid.trim().parse().map_err(|_| {
                Error::parse("container process list", format!("bad PID line `{line}`"))
            })?;
            out.push(ProcessEntry {
                pid,
                ..ProcessEntry::default()
            });
            continue;
        }
        let Some(cur) = out.last_mut() else {
            return Err(Error::parse(
                "container process list",
                format!("line `{line}` before any `PID` line"),
            ));
        };
        if let Some(v) = line.strip_prefix("Name:") {
            cur.name = v.trim().to_string();
        } else if let Some(v) = line.strip_prefix("PPid:") {
            cur.ppid = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("NSpid:") {
            cur.nspid = v
                .split_whitespace()
                .map(|n| n.parse::<u32>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| {
                    Error::parse("container process list", format!("bad NSpid line `{line}`"))
                })?;
        } else {
            cur.cgroups.push(line.to_string());
        }
    }
    Ok(out)
}

/// Whether a cgroup path names exactly this container: a path component equal to the ID
/// (cgroupfs driver: `/kubepods/besteffort/pod<uid>/<id>`) or a systemd scope of the container
/// (`cri-containerd-<id>.scope`, `crio-<id>.scope`, `docker-<id>.scope`). `crio-conmon-<id>.scope`
/// (CRI-O's monitor process) and other mentions of the ID do not count.
pub fn cgroup_path_names_container(path: &str, id: &str) -> bool {
    path.split('/').any(|component| {
        component == id
            || ["cri-containerd-", "crio-", "docker-"]
                .iter()
                .any(|prefix| {
                    component
                        .strip_prefix(prefix)
                        .and_then(|rest| rest.strip_suffix(".scope"))
                        == Some(id)
                })
    })
}

/// Chooses the container's init process among the listed processes: the one in the
/// container's cgroup whose `NSpid` ends in 1 (PID 1 of the container's own PID namespace).
/// When none does (a pod sharing its process namespace, where the pause process is PID 1), the
/// topmost process of the container: the one whose parent is not itself in the container,
/// lowest PID first. Short-lived children (`sleep`, an exec) are never chosen over the init.
pub fn choose_init_process(processes: &[ProcessEntry], id: &str) -> Option<u32> {
    let in_container: Vec<&ProcessEntry> = processes
        .iter()
        .filter(|p| p.cgroup_paths().any(|c| cgroup_path_names_container(c, id)))
        .collect();
    if let Some(init) = in_container
        .iter()
        .filter(|p| p.nspid.len() > 1 && p.nspid.last() == Some(&1))
        .min_by_key(|p| p.pid)
    {
        return Some(init.pid);
    }
    let pids: Vec<u32> = in_container.iter().map(|p| p.pid).collect();
    in_container
        .iter()
        .filter(|p| p.ppid.is_none_or(|pp| !pids.contains(&pp)))
        .map(|p| p.pid)
        .min()
}

/// One network namespace listed by [`LIST_NETNS_ETH0`]: a process in it and its `eth0`
/// IPv4 addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsEntry {
    /// A process in the namespace.
    pub pid: u32,
    /// The namespace inode.
    pub inode: u64,
    /// The IPv4 addresses on its `eth0`.
    pub eth0_addresses: Vec<Ipv4Addr>,
}

/// The IPv4 addresses in one `ip -j -4 addr` document (any interface it lists).
pub fn ipv4_addresses_in_ip_json(json: &str) -> Result<Vec<Ipv4Addr>> {
    let json = json.trim();
    if json.is_empty() {
        return Ok(Vec::new());
    }
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| Error::parse("ip -j -4 addr", format!("not JSON: {e}")))?;
    let mut out = Vec::new();
    for link in value.as_array().into_iter().flatten() {
        for a in link
            .get("addr_info")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
        {
            if a.get("family").and_then(|f| f.as_str()) != Some("inet") {
                continue;
            }
            if let Some(ip) = a
                .get("local")
                .and_then(|l| l.as_str())
                .and_then(|l| l.parse().ok())
            {
                out.push(ip);
            }
        }
    }
    Ok(out)
}

/// Parses the output of [`LIST_NETNS_ETH0`]. Unparseable `ip` output of one namespace leaves
/// that namespace without addresses rather than failing the whole scan.
pub fn parse_netns_list(text: &str) -> Result<Vec<NetnsEntry>> {
    let mut out: Vec<NetnsEntry> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("NETNS ") {
            let mut it = rest.split_whitespace();
            let (Some(pid), Some(inode)) = (
                it.next().and_then(|p| p.parse().ok()),
                it.next().and_then(|i| i.parse().ok()),
            ) else {
                return Err(Error::parse(
                    "network namespace list",
                    format!("bad line `{line}`"),
                ));
            };
            out.push(NetnsEntry {
                pid,
                inode,
                eth0_addresses: Vec::new(),
            });
        } else if let Some(cur) = out.last_mut() {
            cur.eth0_addresses
                .extend(ipv4_addresses_in_ip_json(line).unwrap_or_default());
        }
    }
    Ok(out)
}

/// The process whose network namespace's `eth0` holds `pod_ip`. Fails when no namespace does, or
/// when more than one does (two namespaces with one IP: the answer would be a guess).
pub fn choose_netns_by_ip(entries: &[NetnsEntry], pod_ip: Ipv4Addr) -> Result<u32> {
    let matches: Vec<&NetnsEntry> = entries
        .iter()
        .filter(|e| e.eth0_addresses.contains(&pod_ip))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.pid),
        [] => Err(Error::NotFound(format!(
            "no network namespace on the node has {pod_ip} on eth0 ({} namespaces scanned)",
            entries.len()
        ))),
        many => Err(Error::NotFound(format!(
            "{} network namespaces have {pod_ip} on eth0 (inodes {:?}): refusing to guess",
            many.len(),
            many.iter().map(|e| e.inode).collect::<Vec<_>>()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_TOOLS_ID: &str = "b64902ad0df778a0a0916997b040c1b9e927013c743a0cc65805df0509bcc388";

    fn recorded(path: &str) -> String {
        crate::fixtures::read_text(&format!("recorded/{path}"))
    }

    #[test]
    fn container_ids_of_every_runtime_parse() {
        let c = ContainerId::parse(&format!("containerd://{TEST_TOOLS_ID}")).unwrap();
        assert_eq!(
            (c.runtime.as_str(), c.id.as_str()),
            ("containerd", TEST_TOOLS_ID)
        );
        assert_eq!(
            ContainerId::parse(&format!("cri-o://{TEST_TOOLS_ID}"))
                .unwrap()
                .runtime,
            "cri-o"
        );
        assert_eq!(
            ContainerId::parse(&format!("docker://{TEST_TOOLS_ID}"))
                .unwrap()
                .runtime,
            "docker"
        );
        assert!(ContainerId::parse(TEST_TOOLS_ID).is_err());
        assert!(ContainerId::parse("containerd://$(reboot)").is_err());
    }

    #[test]
    fn the_recorded_init_process_is_chosen_not_the_sleep() {
        let list = parse_process_list(&recorded("node/proc-test-tools-processes.txt")).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].name, "sh");
        assert_eq!(list[0].nspid, vec![25432, 1]);
        assert_eq!(list[1].name, "sleep");
        assert_eq!(list[1].ppid, Some(25432));
        assert_eq!(list[0].cgroups.len(), 10);
        assert_eq!(choose_init_process(&list, TEST_TOOLS_ID), Some(25432));
        // Order does not matter: the sleep listed first is still not chosen.
        let reversed: Vec<ProcessEntry> = list.iter().rev().cloned().collect();
        assert_eq!(choose_init_process(&reversed, TEST_TOOLS_ID), Some(25432));
    }

    #[test]
    fn the_recorded_grep_names_the_same_processes() {
        let files = recorded("node/grep-cgroup-test-tools.txt");
        let list = parse_process_list(&recorded("node/proc-test-tools-processes.txt")).unwrap();
        let pids: Vec<String> = list
            .iter()
            .map(|p| format!("/proc/{}/cgroup", p.pid))
            .collect();
        let grepped: Vec<&str> = files.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(grepped, pids);
    }

    fn synthetic(pid: u32, ppid: u32, nspid: &[u32], cgroups: &[String]) -> String {
        let nspid: Vec<String> = nspid.iter().map(|n| n.to_string()).collect();
        format!(
            "PID {pid}\nName:\tx\nPPid:\t{ppid}\nNSpid:\t{}\n{}\n",
            nspid.join("\t"),
            cgroups.join("\n")
        )
    }

    #[test]
    fn systemd_cgroup_v2_paths_of_each_runtime_are_recognised() {
        let id = TEST_TOOLS_ID;
        for scope in [
            format!(
                "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-poda83f6bec_52ca.slice/cri-containerd-{id}.scope"
            ),
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-poda83f6bec_52ca.slice/crio-{id}.scope"
            ),
            format!("0::/system.slice/docker-{id}.scope"),
            format!(
                "0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-podx.slice/cri-containerd-{id}.scope"
            ),
        ] {
            let text = synthetic(400, 300, &[400, 1], std::slice::from_ref(&scope))
                + &synthetic(401, 400, &[401, 5], std::slice::from_ref(&scope));
            let list = parse_process_list(&text).unwrap();
            assert_eq!(choose_init_process(&list, id), Some(400), "{scope}");
        }
    }

    #[test]
    fn crio_conmon_and_other_mentions_are_not_the_container() {
        let id = TEST_TOOLS_ID;
        let conmon = format!("0::/kubepods.slice/kubepods-podx.slice/crio-conmon-{id}.scope");
        let init = format!("0::/kubepods.slice/kubepods-podx.slice/crio-{id}.scope");
        // conmon is listed first, has a lower PID and (no PID namespace) a one-field NSpid.
        let text = synthetic(100, 1, &[100], std::slice::from_ref(&conmon))
            + &synthetic(120, 100, &[120, 1], std::slice::from_ref(&init));
        let list = parse_process_list(&text).unwrap();
        assert_eq!(choose_init_process(&list, id), Some(120));
        assert!(!cgroup_path_names_container(&conmon, id));
        assert!(!cgroup_path_names_container(
            &format!("/kubepods/pod1/{id}-extra"),
            id
        ));
    }

    #[test]
    fn cgroup_v1_cgroupfs_without_cgroup_root_is_recognised() {
        let id = TEST_TOOLS_ID;
        let lines = vec![
            format!("12:memory:/kubepods/besteffort/poda83f6bec-52ca-4c56-8cfe-563dfdc3623b/{id}"),
            format!(
                "1:name=systemd:/kubepods/besteffort/poda83f6bec-52ca-4c56-8cfe-563dfdc3623b/{id}"
            ),
        ];
        let list = parse_process_list(&synthetic(77, 50, &[77, 1], &lines)).unwrap();
        assert_eq!(choose_init_process(&list, id), Some(77));
    }

    #[test]
    fn without_an_nspid_one_the_topmost_process_is_chosen() {
        // shareProcessNamespace: the pause process is PID 1; the container's init is PID 7 there.
        let id = TEST_TOOLS_ID;
        let cg = vec![format!("0::/kubepods/besteffort/podu/{id}")];
        let text = synthetic(900, 800, &[900, 7], &cg) + &synthetic(950, 900, &[950, 9], &cg);
        let list = parse_process_list(&text).unwrap();
        assert_eq!(choose_init_process(&list, id), Some(900));
        assert_eq!(choose_init_process(&list, "0123456789ab"), None);
    }

    #[test]
    fn the_netns_holding_the_pod_ip_is_found() {
        let pod_addr = recorded("pod/test-tools-ip-j-addr.json");
        let node_addr = recorded("node/ip-j-addr.json");
        let one_line = |s: &str| s.replace('\n', "");
        let text = format!(
            "NETNS 1 4026531840\n{}\nNETNS 25432 4026532400\n{}\nNETNS 999 4026532500\n\n",
            one_line(&node_addr),
            one_line(&pod_addr)
        );
        let list = parse_netns_list(&text).unwrap();
        assert_eq!(list.len(), 3);
        assert!(
            list[1]
                .eth0_addresses
                .contains(&Ipv4Addr::new(192, 168, 1, 1))
        );
        assert_eq!(
            choose_netns_by_ip(&list, Ipv4Addr::new(192, 168, 1, 1)).unwrap(),
            25432
        );
        let missing = choose_netns_by_ip(&list, Ipv4Addr::new(192, 168, 9, 9)).unwrap_err();
        assert!(missing.to_string().contains("192.168.9.9"), "{missing}");
    }

    /// Runs both scripts for real under this machine's `sh` (no cluster: our own cgroup stands in
    /// for a container's) and parses what they print.
    #[test]
    fn the_scripts_run_under_sh_and_their_output_parses() {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let Some(component) = own
            .lines()
            .filter_map(|l| l.splitn(3, ':').nth(2))
            .filter_map(|p| p.rsplit('/').next())
            .find(|c| !c.is_empty())
            .map(str::to_string)
        else {
            eprintln!("skipped: this process sits in the root cgroup everywhere");
            return;
        };
        let out = std::process::Command::new("sh")
            .args(["-c", FIND_CONTAINER_PROCESSES, "sh", &component])
            .output()
            .unwrap();
        assert!(out.status.success());
        let list = parse_process_list(&String::from_utf8_lossy(&out.stdout)).unwrap();
        let me = std::process::id();
        assert!(list.iter().any(|p| p.pid == me), "{list:?}");
        assert!(choose_init_process(&list, &component).is_some());

        let out = std::process::Command::new("sh")
            .args(["-c", LIST_NETNS_ETH0])
            .output()
            .unwrap();
        assert!(out.status.success());
        let namespaces = parse_netns_list(&String::from_utf8_lossy(&out.stdout)).unwrap();
        assert!(!namespaces.is_empty());
        let mut inodes: Vec<u64> = namespaces.iter().map(|n| n.inode).collect();
        inodes.dedup();
        assert_eq!(inodes.len(), namespaces.len(), "one entry per namespace");
    }
}
